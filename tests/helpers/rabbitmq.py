"""The session's private RabbitMQ node (ebs.devstack.rabbitmq, as `ebs dev` uses).

Own node name, AMQP port, distribution port, data and log directories, no
plugins, loopback only; about 5 s to start. Use the session fixture `rabbitmq`
(import it into a test module, or list this module in `pytest_plugins`): every
importer shares one node per process. `rabbitmq.restart()` stops and starts
the same node (durable queues and persistent messages survive);
`rabbitmq.amqp_url` is the broker URL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ebs.devstack.processes import free_port
from ebs.devstack.rabbitmq import RabbitMQ

__all__ = ["RabbitMQ", "free_port", "rabbitmq"]

_shared: RabbitMQ | None = None


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """A running private broker, shared by the whole test session; skips the
    test only when rabbitmq-server is not installed."""
    global _shared
    if _shared is None:
        try:
            broker = RabbitMQ()
        except FileNotFoundError as err:
            pytest.skip(f"{err}")
        broker.start()
        _shared = broker
    else:
        _shared.start()  # a test may have left it stopped
    yield _shared
    if _shared is not None:
        _shared.cleanup()
        _shared = None
