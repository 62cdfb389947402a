"""The email activity: compose with ebs.mail and send, retrying without sending twice.

A transient SMTP failure raises, so Temporal retries the activity (presets.MAIL);
a configuration or login error, or a permanent refusal, raises a non-retryable
ApplicationError. The batch workflow catches what is left: a mail never fails
a batch.

Not sending twice. Each message of a request gets a Message-ID derived from the
workflow run, the activity id and its position, so every attempt sends the
same message under the same id. What an attempt sent is remembered for the
attempts after it, in the activity's heartbeat details (kept by the Temporal
server across attempts, also on another worker) and in this process (for a
server that drops heartbeat details of a failed attempt); a retry skips it.
The one case left is a connection lost after the server took the message but
before its "250 OK" arrived: the retry sends it again with the same
Message-ID, which mail systems use to drop the duplicate.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from email.message import EmailMessage

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ebs import mail
from ebs.config.model import EmailConfig
from ebs.contracts.mail import EmailRequest, EmailResult, MailKind

# Message-IDs sent per activity (workflow run + activity id), across its attempts.
_SENT: dict[str, set[str]] = {}
_SENT_LOCK = threading.Lock()


def compose(req: EmailRequest) -> list[EmailMessage]:
    kind = MailKind(req.kind)
    if kind is MailKind.BUILD_FAILURES:
        return mail.compose_build_failures(req.result, req.settings)
    if kind is MailKind.STABLE_WARNING:
        return mail.compose_stable_warning(req.result, req.settings)
    if kind is MailKind.STABLE_FAILURE:
        return mail.compose_stable_failure(req.result, req.settings)
    return [
        mail.compose_permanent_failure(
            req.result.batch_id,
            req.reason,
            components=[p.component for p in req.result.packages],
            settings=req.settings,
        )
    ]


def message_id(chain: str, kind: str, n: int, domain: str) -> str:
    """The same Message-ID for message `n` of an activity in every attempt."""
    digest = hashlib.sha256(chain.encode()).hexdigest()[:24]
    return f"<ebs.{re.sub(r'[^A-Za-z0-9_-]', '-', kind)}.{digest}.{n}@{domain}>"


class MailActivities:
    def __init__(self, email_config: Callable[[], EmailConfig | None]) -> None:
        self._email_config = email_config

    @activity.defn(name="send_email")
    def send_email(self, req: EmailRequest) -> EmailResult:
        cfg = self._email_config()
        if cfg is None:
            activity.logger.info("email disabled; not sending %s", req.kind)
            return EmailResult()
        messages = compose(req)
        info = activity.info()
        chain = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        with _SENT_LOCK:
            sent = set(_SENT.get(chain, ()))
        if info.heartbeat_details:
            sent.update(str(i) for i in info.heartbeat_details[0] or ())
        result = EmailResult()
        for n, msg in enumerate(messages):
            msg_id = message_id(chain, req.kind, n, mail.mail_domain(cfg))
            if msg_id not in sent:
                try:
                    mail.send(msg, cfg, message_id=msg_id, kind=req.kind)
                except mail.MailConfigError as err:
                    raise ApplicationError(
                        str(err), type="MailConfigError", non_retryable=True
                    ) from err
                sent.add(msg_id)
                with _SENT_LOCK:
                    _SENT[chain] = set(sent)
                activity.heartbeat(sorted(sent))
            result.sent += 1
        with _SENT_LOCK:
            _SENT.pop(chain, None)
        return result

    def all(self) -> list:
        return [self.send_email]
