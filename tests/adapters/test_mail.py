"""ebs.mail: composed messages, and delivery to a real local SMTP server (aiosmtpd),
plain and with STARTTLS + AUTH under a certificate made for the test."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY

from ebs import mail
from ebs.config.model import EmailConfig
from ebs.contracts.batch import BatchResult, BatchSettings, PackageResult, PackageState

USER, PASSWORD = "ebs", "s3cret-Pa55"

# --------------------------------------------------------------------------- data

from ebs.devstack.processes import free_port  # noqa: E402
from tests.helpers.smtp import LoopbackController, Recorder, recording_server  # noqa: E402


def _settings(**kw: Any) -> BatchSettings:
    base: dict[str, Any] = dict(
        build_target="eln",
        stable_tag="eln",
        koji_weburl="https://koji.example.org/koji/",
        temporal_ui_url="http://localhost:8233",
        config_version="git:abc123",
        bodhi_warn_timeout=7 * 86400.0,
        bodhi_stable_timeout=14 * 86400.0 + 3600,
    )
    base.update(kw)
    return BatchSettings(**base)


def _result() -> BatchResult:
    return BatchResult(
        batch_id="batch-42",
        outcome="partial",
        side_tags=["eln-build-side-1"],
        packages=[
            PackageResult(
                component="bash",
                rawhide_nvr="bash-5.2.37-1.fc44",
                state=PackageState.FAILED.value,
                attempts=2,
                task_ids=[101, 202],
                task_urls=[
                    "https://koji.example.org/koji/taskinfo?taskID=101",
                    "https://koji.example.org/koji/taskinfo?taskID=202",
                ],
                reason="buildArch (bash-5.2.37-1.eln.src.rpm, x86_64) failed",
            ),
            PackageResult(
                component="zsh",
                rawhide_nvr="zsh-5.9-15.fc44",
                state=PackageState.SUCCEEDED.value,
                task_ids=[303],
                nvr="zsh-5.9-15.eln",
            ),
            PackageResult(
                component="python-foo",
                rawhide_nvr="python-foo-1.0-1.fc44",
                state=PackageState.FAILED.value,
                attempts=1,
                task_ids=[404],  # no URL recorded: built from koji_weburl
                reason="task timed out after 24 hours",
            ),
            PackageResult(
                component="nosubmit",
                rawhide_nvr="nosubmit-1-1.fc44",
                state=PackageState.FAILED.value,
                reason="Koji refused the build: unknown SCM host",
            ),
        ],
    )


def _pending() -> list[PackageResult]:
    return [
        PackageResult(
            component="bash",
            rawhide_nvr="bash-5.2.37-1.fc44",
            nvr="bash-5.2.37-1.eln",
            state=PackageState.SUCCEEDED.value,
            update_alias="FEDORA-ELN-2026-aa",
            update_url="https://bodhi.example.org/updates/FEDORA-ELN-2026-aa",
        ),
        PackageResult(
            component="zsh",
            rawhide_nvr="zsh-5.9-15.fc44",
            nvr="zsh-5.9-15.eln",
            state=PackageState.SUCCEEDED.value,
            update_alias="FEDORA-ELN-2026-aa",
            update_url="https://bodhi.example.org/updates/FEDORA-ELN-2026-aa",
        ),
        PackageResult(
            component="fish",
            rawhide_nvr="fish-3.7-1.fc44",
            nvr="fish-3.7-1.eln",
            state=PackageState.SUCCEEDED.value,
            update_alias="FEDORA-ELN-2026-bb",
        ),
    ]


def _waiting(n: int = 3) -> BatchResult:
    """A batch whose first ``n`` filed builds are not in the stable tag yet."""
    pending = _pending()
    for pkg in pending[n:]:
        pkg.state = PackageState.STABLE.value
    others = [
        PackageResult(component="failed", rawhide_nvr="failed-1-1.fc44", state="failed"),
        PackageResult(  # built, but never filed (e.g. promotion refused)
            component="unfiled",
            rawhide_nvr="unfiled-1-1.fc44",
            nvr="unfiled-1-1.eln",
            state=PackageState.SUCCEEDED.value,
        ),
    ]
    return BatchResult(batch_id="batch-42", outcome="succeeded", packages=pending + others)


# --------------------------------------------------------------------------- composing


def test_build_failures_one_summary_like_the_original() -> None:
    msgs = mail.compose_build_failures(_result(), _settings())
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["Subject"] == "ELNBuildSync build failures"
    assert msg[mail.HEADER_PACKAGES] == "bash, python-foo, nosubmit"
    assert msg[mail.HEADER_BATCH] == "batch-42"
    assert msg[mail.HEADER_KIND] == "build_failures"
    body = msg.get_content()
    assert body.startswith("The ELNBuildSync build failed for the following requests:")
    assert "* bash (from bash-5.2.37-1.fc44), 2 attempts\n  reason: buildArch" in body
    assert "https://koji.example.org/koji/taskinfo?taskID=101" in body
    assert "https://koji.example.org/koji/taskinfo?taskID=202" in body
    assert "https://koji.example.org/koji/taskinfo?taskID=404" in body
    assert "task timed out after 24 hours" in body
    assert "nosubmit-1-1.fc44" in body and "no Koji task was created" in body
    assert "zsh" not in body  # succeeded
    assert "Batch: batch-42" in body and "Side tags: eln-build-side-1" in body
    assert "Config version: git:abc123" in body


def test_no_failures_no_message() -> None:
    result = _result()
    result.packages = [p for p in result.packages if p.state != PackageState.FAILED.value]
    assert mail.compose_build_failures(result, _settings()) == []


def test_multiline_reasons_and_odd_names_stay_well_formed() -> None:
    result = _result()
    result.packages[0].reason = "BuildError: error building package\nsee build.log"
    result.packages[2].component = "odd\r\nBcc: someone@example.org"
    (msg,) = mail.compose_build_failures(result, _settings())
    assert "  reason: BuildError: error building package\n    see build.log" in msg.get_content()
    assert msg[mail.HEADER_PACKAGES] == "bash, odd Bcc: someone@example.org, nosubmit"
    assert "Bcc" not in msg
    perm = mail.compose_permanent_failure("b", "line one\nline two")
    assert "  line one\n  line two\n" in perm.get_content()


def test_task_links() -> None:
    pkg = PackageResult(component="a", rawhide_nvr="a-1-1", task_ids=[7, 8])
    assert mail.task_links(pkg, "https://koji/koji") == [
        "https://koji/koji/taskinfo?taskID=7",
        "https://koji/koji/taskinfo?taskID=8",
    ]
    assert mail.task_links(pkg) == ["Koji task 7", "Koji task 8"]


def test_stable_failure_matches_the_original_update_timeout_mail() -> None:
    (msg,) = mail.compose_stable_failure(_waiting(), _settings())
    assert msg["Subject"] == "ELNBuildSync update failure"
    assert msg[mail.HEADER_UPDATES] == "bash-5.2.37-1.eln, zsh-5.9-15.eln, fish-3.7-1.eln"
    assert msg[mail.HEADER_PACKAGES] == "bash, zsh, fish"
    assert msg[mail.HEADER_KIND] == "stable_failure"
    body = msg.get_content()
    assert body.startswith(
        "The ELNBuildSync Bodhi update timed out for the following requests "
        "(not in eln after 14 days 1 hour):\nbash-5.2.37-1.eln\nzsh-5.9-15.eln\nfish-3.7-1.eln\n"
    )
    assert (
        "Bodhi update FEDORA-ELN-2026-aa (https://bodhi.example.org/updates/FEDORA-ELN-2026-aa)"
        "\n  bash-5.2.37-1.eln\n  zsh-5.9-15.eln" in body
    )
    assert "Bodhi update FEDORA-ELN-2026-bb\n  fish-3.7-1.eln" in body
    assert mail.compose_stable_failure(_waiting(0), _settings()) == []


def test_stable_warning() -> None:
    (msg,) = mail.compose_stable_warning(_waiting(1), _settings())
    assert msg["Subject"] == "ELNBuildSync update warning"
    assert msg[mail.HEADER_UPDATES] == "bash-5.2.37-1.eln"
    assert msg[mail.HEADER_KIND] == "stable_warning"
    assert "has not reached eln after 7 days" in msg.get_content()
    assert "up to 14 days 1 hour" in msg.get_content()


def test_permanent_failure() -> None:
    msg = mail.compose_permanent_failure(
        "batch-43", "Koji: unknown build target 'eln-typo'", components=["bash", "zsh"]
    )
    assert msg["Subject"] == "ELNBuildSync batch failure"
    assert msg[mail.HEADER_BATCH] == "batch-43"
    assert msg[mail.HEADER_PACKAGES] == "bash, zsh"
    body = msg.get_content()
    assert "batch-43 failed and will not be retried" in body
    assert "unknown build target 'eln-typo'" in body
    bare = mail.compose_permanent_failure("batch-44", "GSSAPI authentication failed")
    assert mail.HEADER_PACKAGES not in bare
    assert "GSSAPI authentication failed" in bare.get_content()


# --------------------------------------------------------------------------- SMTP server


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ebs test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def plain_server() -> Iterator[tuple[LoopbackController, Recorder]]:
    yield from recording_server()


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[tuple[LoopbackController, Recorder]]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*tls_files)
    yield from recording_server(
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )


@pytest.fixture
def client_ctx(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def _cfg(port: int, **kw: Any) -> EmailConfig:
    data: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "from": "ELNBuildSync <ebs@example.org>",
        "recipients": ["eln-alerts@example.org", "releng@example.org"],
        "starttls": False,
    }
    data.update(kw)
    return EmailConfig.model_validate(data)


def _count(name: str, kind: str) -> float:
    return REGISTRY.get_sample_value(f"ebs_emails_{name}_total", {"kind": kind}) or 0.0


# --------------------------------------------------------------------------- sending


def test_send_delivers_build_failures(plain_server: tuple[LoopbackController, Recorder]) -> None:
    ctl, rec = plain_server
    (msg,) = mail.compose_build_failures(_result(), _settings())
    sent_before = _count("sent", "build_failures")
    mail.send(msg, _cfg(ctl.port), timeout=5)
    assert _count("sent", "build_failures") == sent_before + 1

    (got,) = rec.received
    assert got.mail_from == "ebs@example.org"
    assert got.rcpt_tos == ["eln-alerts@example.org", "releng@example.org"]
    assert not got.tls and got.login is None
    m = got.message
    assert m["Subject"] == "ELNBuildSync build failures"
    assert m["From"] == "ELNBuildSync <ebs@example.org>"
    assert m["To"] == "eln-alerts@example.org, releng@example.org"
    assert m["elnbuildsync-packages"] == "bash, python-foo, nosubmit"
    assert m["elnbuildsync-batch"] == "batch-42"
    assert m["Date"] and m["Message-ID"].endswith("@example.org>")
    assert m.get_content().replace("\r\n", "\n") == msg.get_content()
    assert "From" not in msg  # the caller's message is left as it was


def test_long_package_header_survives_smtp(
    plain_server: tuple[LoopbackController, Recorder],
) -> None:
    ctl, rec = plain_server
    result = _result()
    result.packages = [
        PackageResult(
            component=f"python-package-{i:03}",
            rawhide_nvr=f"p-{i}-1",
            state=PackageState.FAILED.value,
            task_ids=[i],
        )
        for i in range(300)
    ]
    (msg,) = mail.compose_build_failures(result, _settings())
    mail.send(msg, _cfg(ctl.port), timeout=5)
    got = rec.received[0].message
    assert got["elnbuildsync-packages"] == ", ".join(f"python-package-{i:03}" for i in range(300))
    assert max(len(line) for line in got.as_bytes().splitlines()) <= 998


def test_starttls_and_login_with_password_file(
    tls_server: tuple[LoopbackController, Recorder], client_ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    ctl, rec = tls_server
    pw = tmp_path / "ebs_smtp_pw"
    pw.write_text(PASSWORD + "\n")
    cfg = _cfg(ctl.port, starttls=True, smtp_username=USER, password_file=str(pw))
    msg = mail.compose_permanent_failure("batch-43", "unknown build target", components=["bash"])
    mail.send(msg, cfg, timeout=5, ssl_context=client_ctx)
    (got,) = rec.received
    assert got.tls and got.login == USER.encode()
    assert got.message["Subject"] == "ELNBuildSync batch failure"
    assert got.message["elnbuildsync-packages"] == "bash"


def test_wrong_password_is_a_clear_error_without_the_password(
    tls_server: tuple[LoopbackController, Recorder],
    client_ctx: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctl, rec = tls_server
    cfg = _cfg(ctl.port, starttls=True, smtp_username=USER)
    msg = mail.compose_permanent_failure("batch-43", "x")
    with pytest.raises(mail.MailConfigError, match=r"login as 'ebs' rejected \(535\)") as err:
        mail.send(msg, cfg, password="not-the-" + PASSWORD, timeout=5, ssl_context=client_ctx)
    assert PASSWORD not in str(err.value)

    failed_before = _count("failed", "permanent_failure")
    with caplog.at_level(logging.DEBUG, logger="ebs.mail"):
        with pytest.raises(mail.MailConfigError):
            mail.send(msg, cfg, password="not-the-" + PASSWORD, timeout=5, ssl_context=client_ctx)
    assert _count("failed", "permanent_failure") == failed_before + 1
    assert PASSWORD not in caplog.text and "rejected" in caplog.text
    assert rec.received == []


def test_untrusted_certificate_is_refused(tls_server: tuple[LoopbackController, Recorder]) -> None:
    ctl, rec = tls_server
    cfg = _cfg(ctl.port, starttls=True, smtp_username=USER)
    msg = mail.compose_permanent_failure("batch-43", "x")
    with pytest.raises(mail.MailError, match="CERTIFICATE_VERIFY_FAILED"):
        mail.send(msg, cfg, password=PASSWORD, timeout=5)  # system trust store
    assert rec.received == []


def test_no_password_in_clear_when_starttls_is_not_offered(
    plain_server: tuple[LoopbackController, Recorder],
) -> None:
    ctl, rec = plain_server
    msg = mail.compose_permanent_failure("batch-43", "x")
    cfg = _cfg(ctl.port, starttls=True, smtp_username=USER)
    with pytest.raises(mail.MailConfigError, match="does not offer STARTTLS, refusing"):
        mail.send(msg, cfg, password=PASSWORD, timeout=5)
    assert rec.received == []
    # without credentials, a server without STARTTLS still gets the mail
    mail.send(msg, _cfg(ctl.port, starttls=True), timeout=5)
    assert len(rec.received) == 1 and not rec.received[0].tls


def test_dead_server_counts_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    (msg,) = mail.compose_stable_failure(_waiting(), _settings())
    failed_before = _count("failed", "stable_failure")
    sent_before = _count("sent", "stable_failure")
    with caplog.at_level(logging.WARNING, logger="ebs.mail"):
        with pytest.raises(mail.MailError) as err:
            mail.send(msg, _cfg(port), timeout=5)
    assert not isinstance(err.value, mail.MailConfigError)  # worth a retry
    assert _count("failed", "stable_failure") == failed_before + 1
    assert _count("sent", "stable_failure") == sent_before
    assert f"127.0.0.1:{port} failed: ConnectionRefusedError" in caplog.text


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        msg = mail.compose_permanent_failure("batch-43", "x")
        with pytest.raises(mail.MailError, match="timed out"):
            mail.send(msg, _cfg(port), timeout=0.3)


def test_missing_password_file(plain_server: tuple[LoopbackController, Recorder]) -> None:
    ctl, rec = plain_server
    cfg = _cfg(ctl.port, smtp_username=USER, password_file="/nonexistent/ebs_smtp_pw")
    msg = mail.compose_permanent_failure("batch-43", "x")
    with pytest.raises(mail.MailConfigError, match="cannot read the SMTP password file"):
        mail.send(msg, cfg, timeout=5)
    assert rec.received == []


def test_send_update_warning_with_a_given_message_id(
    plain_server: tuple[LoopbackController, Recorder],
) -> None:
    ctl, rec = plain_server
    (msg,) = mail.compose_stable_warning(_waiting(), _settings())
    mail.send(msg, _cfg(ctl.port), timeout=5, message_id="<ebs.x.1@example.org>")
    assert rec.received[0].message["Message-ID"] == "<ebs.x.1@example.org>"
    assert rec.received[0].message["Subject"] == "ELNBuildSync update warning"
    assert rec.received[0].message["elnbuildsync-updates"] == (
        "bash-5.2.37-1.eln, zsh-5.9-15.eln, fish-3.7-1.eln"
    )


@pytest.mark.parametrize("content", ["", "\n", "   \n", "\t\r\n"])
def test_empty_password_file_with_a_username_is_an_error(
    plain_server: tuple[LoopbackController, Recorder], tmp_path: Path, content: str
) -> None:
    """smtp_username with an empty password file fails clearly; it never falls
    back to sending without logging in."""
    ctl, rec = plain_server
    pw = tmp_path / "ebs_smtp_pw"
    pw.write_text(content)
    cfg = _cfg(ctl.port, starttls=False, smtp_username=USER, password_file=str(pw))
    msg = mail.compose_permanent_failure("batch-43", "x")
    with pytest.raises(mail.MailConfigError, match=rf"smtp_username is '{USER}' but the SMTP "
                       rf"password file {re.escape(str(pw))} is empty"):
        mail.send(msg, cfg, timeout=5)
    with pytest.raises(mail.MailConfigError, match="the SMTP password is empty"):
        mail.send(msg, cfg, password="  ", timeout=5)
    assert rec.received == []
    # without a username, an empty password file means no login, as before
    anonymous = _cfg(ctl.port, starttls=False, password_file=str(pw))
    mail.send(msg, anonymous, timeout=5)
    assert len(rec.received) == 1 and rec.received[0].login is None


def test_build_failures_body_opens_with_the_originals_text() -> None:
    result = _result()
    failed = [p for p in result.packages if p.state == PackageState.FAILED.value]
    failed[0].scm_url = "https://src.fedoraproject.org/rpms/bash.git#abc123"
    (msg,) = mail.compose_build_failures(result, _settings())
    lines = msg.get_content().splitlines()
    assert lines[0] == (
        "The ELNBuildSync build failed for the following requests: "
        "https://src.fedoraproject.org/rpms/bash.git#abc123"
    )
    # the original joins the SCM URLs with newlines; ebs falls back to the NVR
    assert lines[1 : len(failed)] == [p.rawhide_nvr for p in failed[1:]]
