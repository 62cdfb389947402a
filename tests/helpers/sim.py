"""pytest fixtures for the Koji/Bodhi simulator.

Use from a test module with ``pytest_plugins = ["tests.helpers.sim"]`` (or
import the fixtures). Each test gets a fresh world on a free port:

    def test_x(sim, koji_adapter):
        sim.set_outcomes("bash", ["FAILED", "CLOSED"])
        ...
        sim.sink.bodies("buildsys.tag")   # messages, in order (a ListSink)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ebs.koji.adapter import KojiAdapter
from ebs.simulator import ListSink, Simulator


class SimWithSink(Simulator):
    """A Simulator whose sink is a ListSink (typed for tests)."""

    sink: ListSink


@pytest.fixture
def sim() -> Iterator[SimWithSink]:
    s = SimWithSink(seed=1, sink=ListSink())
    s.start("127.0.0.1", 0)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def koji_adapter(sim: Simulator) -> Iterator[KojiAdapter]:
    adapter = KojiAdapter(sim.koji_config(), timeout=30, tag_wait=10)
    try:
        yield adapter
    finally:
        adapter.close()
