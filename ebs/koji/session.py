"""The Koji client session ebs uses: koji.ClientSession with metrics and no retries of its own."""

from __future__ import annotations

import re
import time
from typing import Any

import koji

from ebs.config.model import KojiConfig
from ebs.koji.errors import KojiPermanentError, permanent_from
from ebs.metrics import KOJI_CALLS, KOJI_LATENCY


class MeteredSession(koji.ClientSession):  # type: ignore[misc]
    """ClientSession that counts every HTTP request it makes, by hub method."""

    _ebs_method = "unknown"

    def _callMethod(self, name: str, args: Any, kwargs: Any = None, retry: bool = True) -> Any:
        if not self.multicall:
            self._ebs_method = name
        return super()._callMethod(name, args, kwargs, retry)

    def _sendOneCall(self, handler: str, headers: Any, request: Any) -> Any:
        label = self._ebs_method
        KOJI_CALLS.labels(label).inc()
        start = time.monotonic()
        try:
            return super()._sendOneCall(handler, headers, request)
        finally:
            KOJI_LATENCY.labels(label).observe(time.monotonic() - start)


def resolve_endpoints(cfg: KojiConfig) -> tuple[str, str, dict[str, Any]]:
    """The hub URL, the web URL and the session options (from the profile, if one is named)."""
    if cfg.server:
        weburl = cfg.weburl or re.sub(r"/kojihub/?$", "/koji", cfg.server)
        return cfg.server, weburl, {}
    try:
        profile = koji.read_config(cfg.profile)
    except (koji.ConfigurationError, koji.GenericError) as exc:
        raise KojiPermanentError(f"Koji profile {cfg.profile!r}: {exc}") from exc
    weburl = cfg.weburl or str(profile.get("weburl") or "")
    return str(profile["server"]), weburl, koji.grab_session_options(profile)


def new_session(cfg: KojiConfig, server: str, profile_opts: dict[str, Any],
                timeout: float) -> koji.ClientSession:
    """A logged-in (Kerberos, password, client certificate) or anonymous session;
    no retries inside the client: Temporal retries, with backoff and a budget."""
    opts = dict(profile_opts)
    opts.update({"anon_retry": False, "max_retries": 0, "retry_interval": 1,
                 "timeout": timeout})
    session = MeteredSession(server, opts=opts)
    auth = cfg.auth
    try:
        if auth.method == "kerberos":
            session.gssapi_login(principal=auth.principal, keytab=auth.keytab)
        elif auth.method == "password":
            session.opts["user"] = auth.user
            session.opts["password"] = _read_secret(str(auth.password_file), "password_file")
            session.login()
        elif auth.method == "ssl":
            session.ssl_login(cert=auth.cert, serverca=auth.serverca)
    except koji.GenericError as exc:
        raise permanent_from(exc) from exc
    return session


def _read_secret(path: str, key: str) -> str:
    """A secret from its file (first line), read by the worker at login only."""
    try:
        with open(path, encoding="utf-8") as fh:
            secret = fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise KojiPermanentError(f"koji.auth.{key} {path}: {exc.strerror}") from exc
    if not secret:
        raise KojiPermanentError(f"koji.auth.{key} {path} is empty")
    return secret
