"""An OpenID Connect stand-in for Ipsilon (id.fedoraproject.org), as Bodhi and
bodhi-client use it.

It serves, over real HTTP on loopback:

- discovery (``/.well-known/openid-configuration`` under the provider URL),
  which bodhi-client fetches when it is constructed and Bodhi when it checks a token;
- token info the Ipsilon way: ``<token_endpoint>Info`` (Bodhi's
  ``FedoraApp.introspect_token`` posts the token there);
- userinfo (``nickname``, ``email``, ``groups``), read by Bodhi to create the user;
- the token endpoint, for the ``refresh_token`` grant only (bodhi-client
  refreshes an expired token that way).

Tokens are opaque random strings issued by :meth:`OidcProvider.issue`; there is
no interactive login.  :meth:`OidcProvider.token_file` writes the file
bodhi-client reads at ``oidc_storage_path``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

# The scopes Bodhi requires of a token (bodhi.server.auth.constants.SCOPES).
BODHI_SCOPES = " ".join([
    "openid", "email", "profile",
    "https://id.fedoraproject.org/scope/groups",
    "https://id.fedoraproject.org/scope/agreements",
])


@dataclass
class Grant:
    user: str
    email: str
    groups: list[str]
    scope: str
    client_id: str
    expires_at: int
    refresh_token: str
    revoked: bool = False


@dataclass
class OidcProvider:
    """The provider's state; :func:`start_oidc_provider` serves it."""

    base_url: str = ""  # e.g. http://127.0.0.1:PORT/openidc (no trailing slash)
    grants: dict[str, Grant] = field(default_factory=dict)  # access token -> grant
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/Token"

    def issue(self, user: str, *, groups: list[str] | None = None, email: str | None = None,
              scope: str = BODHI_SCOPES, client_id: str = "bodhi-client",
              expires_in: int = 3600) -> dict[str, Any]:
        """A new opaque access token (and refresh token) for ``user``, as the
        token endpoint would answer it."""
        token = secrets.token_urlsafe(24)
        grant = Grant(user=user, email=email or f"{user}@example.org",
                      groups=list(groups or ["packager"]), scope=scope, client_id=client_id,
                      expires_at=int(time.time()) + expires_in,
                      refresh_token=secrets.token_urlsafe(24))
        with self.lock:
            self.grants[token] = grant
        return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                "expires_at": grant.expires_at, "refresh_token": grant.refresh_token,
                "scope": scope}

    def revoke(self, token: str) -> None:
        with self.lock:
            self.grants[token].revoked = True

    def token_file(self, path: Path, token: dict[str, Any]) -> Path:
        """Write bodhi-client's token store (``oidc_storage_path``) holding ``token``
        for this provider."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"tokens": {self.base_url: token}}))
        return path

    # ---- answers -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.base_url}/Authorization",
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": f"{self.base_url}/UserInfo",
            "token_introspection_endpoint": f"{self.token_endpoint}Info",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "scopes_supported": BODHI_SCOPES.split(),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
        }

    def _live(self, token: str | None) -> Grant | None:
        with self.lock:
            grant = self.grants.get(token or "")
        if grant is None or grant.revoked or grant.expires_at < time.time():
            return None
        return grant

    def token_info(self, form: dict[str, str]) -> dict[str, Any]:
        grant = self._live(form.get("token"))
        if grant is None:
            return {"active": False}
        return {"active": True, "scope": grant.scope, "client_id": grant.client_id,
                "username": grant.user, "sub": grant.user, "token_type": "Bearer",
                "exp": grant.expires_at}

    def userinfo(self, token: str | None) -> tuple[int, dict[str, Any]]:
        grant = self._live(token)
        if grant is None:
            return 401, {"error": "invalid_token",
                         "error_description": "the access token is not valid"}
        return 200, {"sub": grant.user, "nickname": grant.user, "email": grant.email,
                     "groups": grant.groups}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            found = [(t, g) for t, g in self.grants.items()
                     if g.refresh_token == form.get("refresh_token") and not g.revoked]
        if not found:
            return 400, {"error": "invalid_grant"}
        old, grant = found[0]
        self.revoke(old)
        return 200, self.issue(grant.user, groups=grant.groups, email=grant.email,
                               scope=grant.scope, client_id=grant.client_id)


class _Handler(BaseHTTPRequestHandler):
    provider: OidcProvider
    prefix: str

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _path(self) -> str:
        self.provider.requests.append((self.command, self.path))
        path = self.path.split("?", 1)[0]
        return path[len(self.prefix):] if path.startswith(self.prefix) else "!" + path

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        parsed = parse_qs(self.rfile.read(length).decode())
        return {k: v[0] for k, v in parsed.items()}

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self._path()
        if path == "/.well-known/openid-configuration":
            self._answer(200, self.provider.discovery())
        elif path == "/UserInfo":
            self._answer(*self.provider.userinfo(self._bearer()))
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        if path == "/TokenInfo":
            self._answer(200, self.provider.token_info(self._form()))
        elif path == "/Token":
            self._answer(*self.provider.token(self._form()))
        elif path == "/UserInfo":
            self._answer(*self.provider.userinfo(self._bearer()))
        else:
            self._answer(404, {"error": "not_found"})


class RunningOidcProvider:
    """An :class:`OidcProvider` served on a loopback port in a daemon thread."""

    def __init__(self, prefix: str = "/openidc") -> None:
        self.provider = OidcProvider()
        handler = type("Handler", (_Handler,), {"provider": self.provider, "prefix": prefix})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.provider.base_url = f"http://127.0.0.1:{self._server.server_port}{prefix}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="oidc-provider", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self.provider.base_url

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
