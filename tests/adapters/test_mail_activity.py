"""A failing SMTP server never fails a batch: the send_email activity raises
(retried when worth it), the batch catches what is left, and the batch's result
is what it would have been. A retry never sends a message twice."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from prometheus_client import REGISTRY
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from ebs import mail
from ebs.activities import mail as mail_activity
from ebs.activities.presets import MAIL
from ebs.config.model import EmailConfig
from ebs.contracts.batch import BatchResult, BatchSettings
from ebs.contracts.mail import EmailRequest, MailKind
from ebs.devstack.processes import free_port
from tests.helpers.engine import Engine
from tests.helpers.smtp import smtp_running

MAIL_ATTEMPTS = MAIL["retry_policy"].maximum_attempts


def failed_emails(kind: str) -> float:
    return REGISTRY.get_sample_value("ebs_emails_failed_total", {"kind": kind}) or 0.0


class Refuser:
    """An SMTP server that turns every message down."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "554 5.7.1 Message rejected"


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    with smtp_running(Refuser()) as ctl:
        yield ctl.port


async def test_dead_smtp_server_leaves_the_batch_result_alone(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    engine.mail_to(port)
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    before = failed_emails("build_failures")
    result = await engine.run_batch(["bash", "glibc"])
    assert result.outcome == "partial" and result.error == ""
    assert {p.component: p.state for p in result.packages} == {
        "bash": "stable", "glibc": "failed",
    }
    # a refused connection is transient: every attempt of the retry policy tried
    assert failed_emails("build_failures") == before + MAIL_ATTEMPTS
    assert f"127.0.0.1:{port} failed: ConnectionRefusedError" in caplog.text


async def test_refusing_smtp_server_during_the_stable_wait(
    engine: Engine, refusing_smtp: int
) -> None:
    engine.mail_to(refusing_smtp, bodhi={"warn_timeout": 60, "stable_timeout": 7200})
    engine.sim.bodhi_app.stable_after = None  # never pushed: a warning, then a failure mail
    warnings, failures = failed_emails("stable_warning"), failed_emails("stable_failure")
    result = await engine.run_batch(["bash"])
    assert result.outcome == "unstable" and result.errata_tags
    # a 554 refusal is permanent: one attempt each, no retry
    assert failed_emails("stable_warning") == warnings + 1
    assert failed_emails("stable_failure") == failures + 1


def _request() -> EmailRequest:
    return EmailRequest(
        MailKind.PERMANENT_FAILURE,
        BatchResult("batch-7", "error"),
        BatchSettings(build_target="eln", stable_tag="eln"),
        reason="unknown build target",
    )


def test_a_retry_sends_only_what_the_failed_attempt_did_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two messages: the first attempt sends one and fails on the other; the
    retry (same workflow run and activity id) sends only the other, under the
    Message-ID the first attempt used for it."""
    first, second = EmailMessage(), EmailMessage()
    first["Subject"], second["Subject"] = "one", "two"
    monkeypatch.setattr(mail_activity, "compose", lambda req: [first, second])
    calls: list[tuple[str, str]] = []

    def send(msg: EmailMessage, cfg: EmailConfig, **kw: Any) -> None:
        calls.append((msg["Subject"], kw["message_id"]))
        if len(calls) == 2:
            raise mail.MailError("connection lost")

    monkeypatch.setattr(mail, "send", send)
    cfg = EmailConfig.model_validate(
        {"smtp_host": "127.0.0.1", "from": "ebs@example.org", "recipients": ["a@example.org"]}
    )
    activities = mail_activity.MailActivities(lambda: cfg)
    env = ActivityEnvironment()
    with pytest.raises(mail.MailError):
        env.run(activities.send_email, _request())
    result = env.run(activities.send_email, _request())
    assert result.sent == 2
    assert [subject for subject, _ in calls] == ["one", "two", "two"]
    assert calls[1][1] == calls[2][1] and calls[0][1] != calls[1][1]
    assert calls[0][1].endswith("@example.org>")


def test_configuration_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def send(msg: EmailMessage, cfg: EmailConfig, **kw: Any) -> None:
        raise mail.MailConfigError("login as 'ebs' rejected (535)")

    monkeypatch.setattr(mail, "send", send)
    cfg = EmailConfig.model_validate(
        {"smtp_host": "127.0.0.1", "from": "ebs@example.org", "recipients": ["a@example.org"]}
    )
    with pytest.raises(ApplicationError) as err:
        ActivityEnvironment().run(mail_activity.MailActivities(lambda: cfg).send_email, _request())
    assert err.value.non_retryable and "rejected" in str(err.value)
