"""A failing SMTP server never fails a batch: the send_email activity logs and
counts the failure, and the batch's result is what it would have been."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.helpers.engine import Engine
from tests.helpers.smtp import LoopbackController


def failed_emails(kind: str) -> float:
    return REGISTRY.get_sample_value("ebs_emails_failed_total", {"kind": kind}) or 0.0


def dead_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Refuser:
    """An SMTP server that turns every message down."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "554 5.7.1 Message rejected"


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    ctl = LoopbackController(Refuser(), hostname="127.0.0.1", port=0)
    ctl.start()
    try:
        yield ctl.port
    finally:
        ctl.stop()


async def test_dead_smtp_server_leaves_the_batch_result_alone(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    port = dead_port()
    engine.mail_to(port)
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    before = failed_emails("build_failures")
    result = await engine.run_batch(["bash", "glibc"])
    assert result.outcome == "partial" and result.error == ""
    assert {p.component: p.state for p in result.packages} == {
        "bash": "stable", "glibc": "failed",
    }
    assert failed_emails("build_failures") == before + 1
    assert f"127.0.0.1:{port} failed: ConnectionRefusedError" in caplog.text


async def test_refusing_smtp_server_during_the_stable_wait(
    engine: Engine, refusing_smtp: int
) -> None:
    engine.mail_to(refusing_smtp, bodhi={"warn_timeout": 60, "stable_timeout": 7200})
    engine.sim.bodhi_app.stable_after = None  # never pushed: a warning, then a failure mail
    warnings, failures = failed_emails("stable_warning"), failed_emails("stable_failure")
    result = await engine.run_batch(["bash"])
    assert result.outcome == "unstable" and result.errata_tags
    assert failed_emails("stable_warning") == warnings + 1
    assert failed_emails("stable_failure") == failures + 1
