"""A small OpenID Connect provider on loopback, for the API's auth tests.

It serves what a relying party needs to validate bearer tokens: the discovery
document, the JWKS (public keys only) and a userinfo endpoint, over real HTTP.
JWTs are minted with joserfc from locally generated key pairs.

Like Ipsilon it also issues opaque access tokens (`issue_opaque`) and answers
for them at its token-info endpoint (`/TokenInfo`, the token endpoint + `Info`,
client credentials in the form) and, when `advertise_introspection` is set, at
an RFC 7662 `introspection_endpoint` (client_secret_basic). For browser login
it has an authorization endpoint with a login form (`/Authorization`) and a
token endpoint (`/Token`, authorization_code grant, client_secret_basic) that
returns an opaque access token and a signed ID token. `held()` makes every
answer wait until it is released, to play a slow provider.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

AUDIENCE = "ebs-test"
ADMIN_GROUP = "eln-admins"
CLIENT_SECRET = "ebs-test-client-secret"  # the client secret of AUDIENCE
HOLD_MAX = 30.0  # seconds a held answer waits at most (a test that forgot to release)


@dataclass
class OpaqueToken:
    sub: str
    client_id: str = AUDIENCE
    expires_at: float = 0.0
    revoked: bool = False


@dataclass
class OidcProvider:
    base_url: str
    key: ECKey  # the provider's signing key, published in the JWKS
    other_key: ECKey  # a key the provider never published
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> claims
    requests: list[str] = field(default_factory=list)  # paths asked for
    opaque: dict[str, OpaqueToken] = field(default_factory=dict)
    users: dict[str, list[str]] = field(default_factory=dict)  # login name -> groups
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # auth code -> request
    advertise_introspection: bool = False
    answer: threading.Event = field(default_factory=threading.Event)  # cleared: answers wait

    def __post_init__(self) -> None:
        self.answer.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Within: every request waits for the block's end (at most HOLD_MAX s)."""
        self.answer.clear()
        try:
            yield
        finally:
            self.answer.set()

    def issue_opaque(
        self, sub: str, groups: list[str] | None = None, *, expires_in: int = 300,
        client_id: str = AUDIENCE,
    ) -> str:
        """A new opaque (non-JWT) access token for `sub`, known to userinfo."""
        token = secrets.token_urlsafe(24).replace(".", "_")
        self.opaque[token] = OpaqueToken(sub, client_id, time.time() + expires_in)
        self.userinfo[token] = {
            "sub": sub, "nickname": sub, "groups": [ADMIN_GROUP] if groups is None else groups,
        }
        return token

    def introspect(self, token: str) -> dict[str, Any]:
        known = self.opaque.get(token)
        if known is None or known.revoked or known.expires_at < time.time():
            return {"active": False}
        return {
            "active": True, "client_id": known.client_id, "sub": known.sub,
            "username": known.sub, "exp": int(known.expires_at), "token_type": "Bearer",
            "scope": "openid profile https://id.fedoraproject.org/scope/groups",
        }

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key]).as_dict(private=False))

    def mint(
        self,
        *,
        sub: str = "alice",
        groups: list[str] | None = None,
        with_groups: bool = True,
        audience: str | list[str] = AUDIENCE,
        issuer: str | None = None,
        expires_in: int = 300,
        key: ECKey | None = None,
        kid: str | None = None,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": now - 5,
            "exp": now + expires_in,
            "preferred_username": sub,
            "jti": uuid.uuid4().hex,
            **extra,
        }
        if with_groups:
            claims["groups"] = [ADMIN_GROUP] if groups is None else groups
        signing = key or self.key
        header = {"alg": "ES256", "kid": kid or signing.kid}
        return jwt.encode(header, claims, signing)


def _client_ok(header: str, form: dict[str, str]) -> bool:
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) == (AUDIENCE, CLIENT_SECRET)
    return (form.get("client_id"), form.get("client_secret")) == (AUDIENCE, CLIENT_SECRET)


LOGIN_FORM = """<!DOCTYPE html><html><head><title>Test provider login</title></head><body>
<form method="post" action="/Authorization"><input type="hidden" name="request" value="{req}">
<label>Username <input id="username" name="username"></label>
<button id="login" type="submit">Log in</button></form></body></html>"""


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # a client that gave up
                pass

        def _html(self, text: str) -> None:
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            provider.requests.append(self.path)
            provider.answer.wait(HOLD_MAX)
            path = urlsplit(self.path).path
            if path == "/.well-known/openid-configuration":
                doc = {
                    "issuer": provider.issuer,
                    "authorization_endpoint": f"{provider.base_url}/Authorization",
                    "token_endpoint": f"{provider.base_url}/Token",
                    "jwks_uri": f"{provider.base_url}/jwks",
                    "userinfo_endpoint": f"{provider.base_url}/userinfo",
                    "id_token_signing_alg_values_supported": ["ES256"],
                }
                if provider.advertise_introspection:
                    doc["introspection_endpoint"] = f"{provider.base_url}/introspect"
                self._send(200, doc)
            elif path == "/jwks":
                self._send(200, provider.jwks)
            elif path == "/userinfo":
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                info = provider.userinfo.get(token)
                known = provider.opaque.get(token)
                if known and (known.revoked or known.expires_at < time.time()):
                    info = None
                if info is None:
                    self._send(401, {"error": "invalid_token"})
                else:
                    self._send(200, info)
            elif path == "/Authorization":
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if query.get("client_id") != AUDIENCE or query.get("response_type") != "code":
                    self._send(400, {"error": "invalid_request"})
                    return
                self._html(LOGIN_FORM.format(req=html.escape(json.dumps(query))))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            provider.requests.append(self.path)
            provider.answer.wait(HOLD_MAX)
            form = self._form()
            auth = self.headers.get("Authorization", "")
            if self.path == "/TokenInfo":  # Ipsilon: credentials in the form
                if not _client_ok("", form):
                    self._send(401, {"error": "invalid_client"})
                else:
                    self._send(200, provider.introspect(form.get("token", "")))
            elif self.path == "/introspect" and provider.advertise_introspection:
                if not auth.startswith("Basic ") or not _client_ok(auth, form):
                    self._send(401, {"error": "invalid_client"})
                else:
                    self._send(200, provider.introspect(form.get("token", "")))
            elif self.path == "/Authorization":  # the login form was submitted
                request = json.loads(form.get("request", "{}"))
                user = form.get("username", "")
                if user not in provider.users:
                    self._html("<p id='error'>unknown user</p>")
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {**request, "user": user}
                target = request["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": request.get("state", "")}
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/Token":
                request = provider.codes.pop(form.get("code", ""), None)
                if not _client_ok(auth, form):
                    self._send(401, {"error": "invalid_client"})
                elif (
                    request is None or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != request["redirect_uri"]
                ):
                    self._send(400, {"error": "invalid_grant"})
                else:
                    user = request["user"]
                    access = provider.issue_opaque(user, provider.users[user])
                    id_token = provider.mint(
                        sub=user, with_groups=False, nonce=request.get("nonce", "")
                    )
                    self._send(200, {"access_token": access, "token_type": "Bearer",
                                     "expires_in": 300, "id_token": id_token})
            else:
                self._send(404, {"error": "not_found"})

    return Handler


@pytest.fixture(scope="session", name="oidc_provider")
def oidc_provider_fixture() -> Iterator[OidcProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = server.server_address[:2]
    provider = OidcProvider(
        base_url=f"http://{host!s}:{port}",
        key=ECKey.generate_key("P-256", parameters={"kid": "ebs-test-1", "use": "sig"}),
        other_key=ECKey.generate_key("P-256", parameters={"kid": "ebs-test-1"}),
    )
    server.RequestHandlerClass = _handler(provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
