"""Email notifications: the one module through which ebs talks SMTP.

What is sent follows the original ELNBuildSync (subjects and the filterable
``elnbuildsync-*`` headers), with ebs's additions marked below:

=======================  ===============================  ==================================
kind                     Subject                          headers
=======================  ===============================  ==================================
build_failures           ELNBuildSync build failures      elnbuildsync-packages (original)
stable_failure           ELNBuildSync update failure      elnbuildsync-updates (original)
stable_warning (ebs)     ELNBuildSync update warning      elnbuildsync-updates
permanent_failure (ebs)  ELNBuildSync batch failure       elnbuildsync-batch
=======================  ===============================  ==================================

Every message also carries ``elnbuildsync-batch`` (the batch id) and
``elnbuildsync-kind`` (the kind above, also the metrics label), and the update
and batch mails carry ``elnbuildsync-packages`` too, so one mail filter on package names catches
every mail about a package. Header values are comma-separated lists
("bash, zsh"). Like the original, one summary message per batch is sent, not
one per package.

Composing is pure (ebs types in, :class:`~email.message.EmailMessage` out);
:func:`send` adds From/To/Date/Message-ID, talks SMTP and raises on failure
(:class:`MailConfigError` when a retry cannot help). The send_email activity
(ebs.activities.mail) retries without sending twice, and the batch workflow
catches a mail that failed for good: a mail can never fail a batch.
"""

from __future__ import annotations

import copy
import logging
import smtplib
import ssl
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from ebs import metrics
from ebs.config.model import EmailConfig
from ebs.contracts.batch import BatchResult, BatchSettings, PackageResult, PackageState
from ebs.contracts.mail import MailKind

logger = logging.getLogger(__name__)

SUBJECT_BUILD_FAILURES = "ELNBuildSync build failures"
SUBJECT_UPDATE_FAILURE = "ELNBuildSync update failure"
SUBJECT_UPDATE_WARNING = "ELNBuildSync update warning"
SUBJECT_BATCH_FAILURE = "ELNBuildSync batch failure"

HEADER_PACKAGES = "elnbuildsync-packages"
HEADER_UPDATES = "elnbuildsync-updates"
HEADER_BATCH = "elnbuildsync-batch"
HEADER_KIND = "elnbuildsync-kind"

DEFAULT_TIMEOUT = 30.0


class MailError(Exception):
    """A message could not be sent; the text says what and why (never a password).
    Worth retrying later (the server was unreachable, busy, timed out)."""


class MailConfigError(MailError):
    """A message cannot be sent until a human acts: configuration, login rejected,
    or the server refused the message for good (5xx)."""


# --------------------------------------------------------------------------- composing


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _header_list(items: Iterable[str]) -> str:
    """A comma-separated header value; line breaks (never in real package names)
    would make the header invalid, so they become spaces."""
    return ", ".join(" ".join(i.split()) for i in _unique(items))


def _human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def task_links(pkg: PackageResult, koji_weburl: str = "") -> list[str]:
    """The Koji task pages of a package: its recorded URLs, else built from the ids."""
    if pkg.task_urls:
        return list(pkg.task_urls)
    if koji_weburl:
        base = koji_weburl.rstrip("/")
        return [f"{base}/taskinfo?taskID={task_id}" for task_id in pkg.task_ids]
    return [f"Koji task {task_id}" for task_id in pkg.task_ids]


def _message(subject: str, kind: str, batch_id: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg[HEADER_KIND] = kind
    if batch_id:
        msg[HEADER_BATCH] = _header_list([batch_id])
    msg.set_content(body)
    return msg


def _footer(batch_id: str, settings: BatchSettings | None, extra: Iterable[str] = ()) -> str:
    lines = [f"Batch: {batch_id}"]
    lines.extend(extra)
    if settings is not None:
        if settings.build_target:
            lines.append(f"Build target: {settings.build_target}")
        if settings.config_version:
            lines.append(f"Config version: {settings.config_version}")
        if settings.temporal_ui_url:
            lines.append(f"Temporal UI (search for the batch id): {settings.temporal_ui_url}")
    return "\n".join(lines)


def compose_build_failures(result: BatchResult, settings: BatchSettings) -> list[EmailMessage]:
    """One summary message for the packages of a batch whose rebuild failed
    (none when nothing failed), as the original sends once the slices are done:
    its subject, its ``elnbuildsync-packages`` header and its first line (the
    failed SCM URLs) unchanged, ebs's details below."""
    failed = [p for p in result.packages if p.state == PackageState.FAILED.value]
    if not failed:
        return []
    blocks = []
    for pkg in failed:
        head = f"* {pkg.component}"
        if pkg.rawhide_nvr:
            head += f" (from {pkg.rawhide_nvr})"
        if pkg.attempts:
            head += f", {pkg.attempts} attempt{'s' if pkg.attempts != 1 else ''}"
        reason = (pkg.reason or "not recorded; see the Koji task").strip().replace("\n", "\n    ")
        lines = [head, f"  reason: {reason}"]
        links = task_links(pkg, settings.koji_weburl)
        lines.extend(f"  {link}" for link in links)
        if not links:
            lines.append("  no Koji task was created")
        blocks.append("\n".join(lines))
    side_tags = [f"Side tags: {', '.join(result.side_tags)}"] if result.side_tags else []
    # The original's body ("...requests: " and the SCM URLs, one a line) comes
    # first, unchanged; ebs's details follow.
    requests = "\n".join(p.scm_url or p.rawhide_nvr or p.component for p in failed)
    body = (
        f"The ELNBuildSync build failed for the following requests: {requests}\n\n"
        + "\n\n".join(blocks)
        + "\n\n"
        + _footer(result.batch_id, settings, side_tags)
        + "\n"
    )
    msg = _message(SUBJECT_BUILD_FAILURES, MailKind.BUILD_FAILURES, result.batch_id, body)
    msg[HEADER_PACKAGES] = _header_list(p.component for p in failed)
    return [msg]


def not_yet_stable(result: BatchResult) -> list[PackageResult]:
    """Packages filed in a Bodhi update whose build is not (yet) in the stable tag:
    built and filed (``succeeded`` with an update alias), not marked ``stable``."""
    return [
        p for p in result.packages if p.state == PackageState.SUCCEEDED.value and p.update_alias
    ]


def _compose_stable(
    subject: str, kind: str, intro: str, result: BatchResult, settings: BatchSettings
) -> list[EmailMessage]:
    pending = not_yet_stable(result)
    if not pending:
        return []
    nvrs = _unique(p.nvr or p.rawhide_nvr for p in pending)
    by_update: dict[str, list[PackageResult]] = {}
    for pkg in pending:
        by_update.setdefault(pkg.update_alias, []).append(pkg)
    blocks = []
    for alias, pkgs in by_update.items():
        url = next((p.update_url for p in pkgs if p.update_url), "")
        title = f"Bodhi update {alias}" + (f" ({url})" if url else "")
        blocks.append("\n".join([title] + [f"  {p.nvr or p.rawhide_nvr}" for p in pkgs]))
    body = (
        f"{intro}\n"
        + "\n".join(nvrs)
        + "\n\n"
        + "\n\n".join(blocks)
        + "\n\n"
        + _footer(result.batch_id, settings, [f"Stable tag: {settings.stable_tag}"])
        + "\n"
    )
    msg = _message(subject, kind, result.batch_id, body)
    msg[HEADER_UPDATES] = _header_list(nvrs)
    msg[HEADER_PACKAGES] = _header_list(p.component for p in pending)
    return [msg]


def compose_stable_warning(result: BatchResult, settings: BatchSettings) -> list[EmailMessage]:
    """The builds of :func:`not_yet_stable` after ``bodhi.warn_timeout`` (ebs
    addition; ebs keeps waiting until ``bodhi.stable_timeout``). One message,
    or none when every build is stable."""
    intro = (
        f"The ELNBuildSync Bodhi update has not reached {settings.stable_tag} after "
        f"{_human_duration(settings.bodhi_warn_timeout)} for the following requests "
        f"(still waiting, up to {_human_duration(settings.bodhi_stable_timeout)}):"
    )
    return _compose_stable(SUBJECT_UPDATE_WARNING, MailKind.STABLE_WARNING, intro, result, settings)


def compose_stable_failure(result: BatchResult, settings: BatchSettings) -> list[EmailMessage]:
    """The builds of :func:`not_yet_stable` after ``bodhi.stable_timeout``: the
    original's update-timeout mail. One message, or none when every build is stable."""
    intro = (
        "The ELNBuildSync Bodhi update timed out for the following requests "
        f"(not in {settings.stable_tag} after "
        f"{_human_duration(settings.bodhi_stable_timeout)}):"
    )
    return _compose_stable(SUBJECT_UPDATE_FAILURE, MailKind.STABLE_FAILURE, intro, result, settings)


def compose_permanent_failure(
    batch_id: str,
    reason: str,
    *,
    components: list[str] | None = None,
    settings: BatchSettings | None = None,
) -> EmailMessage:
    """A batch that stopped early and will not be retried (auth failure, unknown
    target...); ebs addition, the original only logged these."""
    lines = [
        f"The ELNBuildSync batch {batch_id} failed and will not be retried:",
        "",
        "  " + reason.strip().replace("\n", "\n  "),
        "",
    ]
    names = _unique(components or [])
    if names:
        lines += ["Packages of the batch (not rebuilt):", ", ".join(names), ""]
    body = "\n".join(lines) + _footer(batch_id, settings) + "\n"
    msg = _message(SUBJECT_BATCH_FAILURE, MailKind.PERMANENT_FAILURE, batch_id, body)
    if names:
        msg[HEADER_PACKAGES] = _header_list(names)
    return msg


# --------------------------------------------------------------------------- sending


def read_password(path: str) -> str:
    """The SMTP password: the first line of the file, without its newline."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise MailConfigError(
            f"cannot read the SMTP password file {path}: {e.__class__.__name__}"
        ) from e


def mail_domain(cfg: EmailConfig) -> str:
    """The domain of the sender address, for Message-IDs."""
    return parseaddr(cfg.from_)[1].rpartition("@")[2] or "ebs.localdomain"


def _prepare(msg: EmailMessage, cfg: EmailConfig, message_id: str | None) -> EmailMessage:
    out = copy.deepcopy(msg)
    for name in ("From", "To"):
        del out[name]
    out["From"] = cfg.from_
    out["To"] = ", ".join(cfg.recipients)
    if "Date" not in out:
        out["Date"] = formatdate(localtime=False, usegmt=True)
    if message_id:
        del out["Message-ID"]
        out["Message-ID"] = message_id
    elif "Message-ID" not in out:
        out["Message-ID"] = make_msgid(idstring="ebs", domain=mail_domain(cfg))
    return out


def _smtp_failure(e: Exception, subject: str, where: str, username: str) -> MailError:
    """MailConfigError when a retry cannot help (login rejected, a 5xx refusal), else MailError."""
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return MailConfigError(
            f"sending {subject!r} via {where} failed: login as {username!r} "
            f"rejected ({e.smtp_code})"
        )
    text = f"sending {subject!r} via {where} failed: {e.__class__.__name__}: {e}"
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        return MailConfigError(text)
    code = getattr(e, "smtp_code", 0)
    if isinstance(code, int) and 500 <= code < 600:
        return MailConfigError(text)
    return MailError(text)


def send(
    msg: EmailMessage,
    cfg: EmailConfig,
    password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    *,
    message_id: str | None = None,
    kind: str | None = None,
) -> None:
    """Send ``msg`` to ``cfg.recipients`` from ``cfg.from_``, counting it in metrics
    (``kind`` is the label; default the message's ``elnbuildsync-kind``).

    STARTTLS is used when ``cfg.starttls`` and the server offers it; the
    password (argument, else read from ``cfg.password_file``) is only sent over
    TLS unless ``cfg.starttls`` is false. With ``cfg.smtp_username`` set, an
    empty (or whitespace-only) password is an error, never a send without
    login. ``ssl_context`` defaults to the system trust store. ``message_id``
    (else a random one) lets a retry send the same message again under the same id.

    Raises :class:`MailConfigError` when retrying cannot help (configuration,
    login rejected, a permanent 5xx refusal) and :class:`MailError` otherwise.
    Once the server accepted the message, a failure while closing the
    connection is only logged: the message was sent and must not be sent again.
    """
    label = kind or msg.get(HEADER_KIND) or "other"
    try:
        _send(msg, cfg, password, timeout, ssl_context, message_id)
    except Exception as e:
        metrics.EMAILS_FAILED.labels(kind=label).inc()
        logger.warning("Email not sent (%s): %s", label, e)
        raise
    metrics.EMAILS_SENT.labels(kind=label).inc()


def _send(
    msg: EmailMessage,
    cfg: EmailConfig,
    password: str | None,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    message_id: str | None,
) -> None:
    subject = msg.get("Subject", "")
    where = f"{cfg.smtp_host}:{cfg.smtp_port}"
    if not cfg.recipients:
        raise MailConfigError(f"not sending {subject!r}: email.recipients is empty")
    source = "the SMTP password"
    if password is None and cfg.password_file:
        password = read_password(cfg.password_file)
        source = f"the SMTP password file {cfg.password_file}"
    if cfg.smtp_username and password is not None and not password.strip():
        # Never fall back to sending without a login: the server would refuse
        # the mail late, or accept it unauthenticated where it should not.
        raise MailConfigError(
            f"not sending {subject!r}: email.smtp_username is {cfg.smtp_username!r} but "
            f"{source} is empty; put the password in it, or remove smtp_username to "
            "send without logging in"
        )
    out = _prepare(msg, cfg, message_id)
    try:
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=timeout)
    except (smtplib.SMTPException, OSError) as e:
        raise _smtp_failure(e, subject, where, cfg.smtp_username) from e
    try:
        smtp.ehlo()
        tls = False
        if cfg.starttls and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl_context or ssl.create_default_context())
            smtp.ehlo()
            tls = True
        if cfg.smtp_username and password:
            if cfg.starttls and not tls:
                raise MailConfigError(
                    f"sending {subject!r} via {where} failed: the server does not offer "
                    "STARTTLS, refusing to send the password in clear "
                    "(set email.starttls: false to allow it)"
                )
            smtp.login(cfg.smtp_username, password)
        refused = smtp.send_message(out, from_addr=cfg.from_, to_addrs=list(cfg.recipients))
    except MailError:
        smtp.close()
        raise
    except (smtplib.SMTPException, OSError) as e:
        smtp.close()
        raise _smtp_failure(e, subject, where, cfg.smtp_username) from e
    try:  # accepted: nothing after this point may make a retry send it again
        smtp.quit()
    except (smtplib.SMTPException, OSError) as e:
        logger.warning("Email %r sent; closing the connection to %s failed: %s", subject, where, e)
        smtp.close()
    if refused:
        logger.warning("Email %r: recipients refused: %s", subject, ", ".join(sorted(refused)))
    logger.info("Sent email %r to %s via %s", subject, ", ".join(cfg.recipients), where)
