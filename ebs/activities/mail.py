"""The email activity: compose with ebs.mail, send, never fail a batch."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from temporalio import activity

from ebs import mail
from ebs.config.model import EmailConfig
from ebs.contracts.mail import EmailRequest, EmailResult


class MailActivities:
    def __init__(self, email_config: Callable[[], EmailConfig | None]) -> None:
        self._email_config = email_config

    @activity.defn(name="send_email")
    def send_email(self, req: EmailRequest) -> EmailResult:
        cfg = self._email_config()
        if cfg is None:
            activity.logger.info("email disabled; not sending %s", req.kind)
            return EmailResult()
        messages: list[EmailMessage]
        if req.kind == "build_failures":
            messages = mail.compose_build_failures(req.result, req.settings)
        elif req.kind == "stable_warning":
            messages = mail.compose_stable_warning(req.result, req.settings)
        elif req.kind == "stable_failure":
            messages = mail.compose_stable_failure(req.result, req.settings)
        elif req.kind == "permanent_failure":
            messages = [
                mail.compose_permanent_failure(
                    req.result.batch_id,
                    req.reason,
                    components=[p.component for p in req.result.packages],
                    settings=req.settings,
                )
            ]
        else:
            raise ValueError(f"unknown email kind {req.kind!r}")
        result = EmailResult()
        for msg in messages:
            if mail.send_quietly(msg, cfg, kind=req.kind):
                result.sent += 1
            else:
                result.failed += 1
        return result

    def all(self) -> list:
        return [self.send_email]
