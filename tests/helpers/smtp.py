"""A real SMTP server on loopback (aiosmtpd) that records what it receives."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        auth = session.auth_data
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        login = auth.login if isinstance(auth, LoginPassword) else None
        tls = session.ssl is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, tls, login))
        return "250 OK"


class LoopbackController(Controller):
    """aiosmtpd's threaded controller, bound to a free loopback port (port 0)."""

    def _create_server(self) -> Any:
        async def create() -> Any:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


@contextmanager
def smtp_running(handler: Any, **options: Any) -> Iterator[LoopbackController]:
    """An aiosmtpd server with `handler` on a free loopback port, for the block;
    `options` go to aiosmtpd (tls_context, authenticator, ...)."""
    ctl = LoopbackController(handler, hostname="127.0.0.1", port=0, **options)
    ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop()


def recording_server(**options: Any) -> Iterator[tuple[LoopbackController, Recorder]]:
    """The body of a fixture: a server that records every message it accepts."""
    rec = Recorder()
    with smtp_running(rec, **options) as ctl:
        yield ctl, rec


@pytest.fixture
def smtp_server() -> Iterator[tuple[LoopbackController, Recorder]]:
    yield from recording_server()
