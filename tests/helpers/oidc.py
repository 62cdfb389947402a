"""A small OpenID Connect provider on loopback, for the API's auth tests.

It serves what a relying party needs to validate bearer tokens: the discovery
document, the JWKS (public keys only) and a userinfo endpoint, over real HTTP.
Tokens are minted with joserfc from locally generated key pairs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

AUDIENCE = "ebs-test"
ADMIN_GROUP = "eln-admins"


@dataclass
class OidcProvider:
    base_url: str
    key: ECKey  # the provider's signing key, published in the JWKS
    other_key: ECKey  # a key the provider never published
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> claims
    requests: list[str] = field(default_factory=list)  # paths asked for

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
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            provider.requests.append(self.path)
            if self.path == "/.well-known/openid-configuration":
                self._send(
                    200,
                    {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.base_url}/jwks",
                        "userinfo_endpoint": f"{provider.base_url}/userinfo",
                        "id_token_signing_alg_values_supported": ["ES256"],
                    },
                )
            elif self.path == "/jwks":
                self._send(200, provider.jwks)
            elif self.path == "/userinfo":
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                info = provider.userinfo.get(token)
                if info is None:
                    self._send(401, {"error": "invalid_token"})
                else:
                    self._send(200, info)
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
