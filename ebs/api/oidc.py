"""OpenID Connect bearer tokens: JWT validation against the provider's JWKS.

joserfc does the JOSE work. A token is accepted when its signature verifies
against a key of the provider's JWKS (asymmetric algorithms only), `iss` is the
configured issuer, `aud` contains the audience, and `exp`/`nbf`/`iat` hold.
Admin rights come from the `groups` claim or, when the token has none, from
the provider's userinfo endpoint (called with the token itself).

Defaults for what the original configuration format does not carry:
issuer = `auth_url` without its last path segment (Ipsilon's layout:
https://id.fedoraproject.org/openidc/Authorization -> .../openidc),
audience = `client_id`, jwks_uri and userinfo_endpoint = discovered from
`{issuer}/.well-known/openid-configuration`.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from ebs.config.model import OpenIdConnectConfig

log = logging.getLogger(__name__)

ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
# An unknown `kid` refetches the JWKS (key rotation), but not more often than this.
JWKS_MIN_REFRESH = 30.0
USERINFO_CACHE_SECONDS = 300.0
USERINFO_CACHE_SIZE = 1024


class AuthFailure(Exception):
    """A request that must be refused: 401 (who are you), 403 (not allowed),
    503 (the identity provider cannot be reached)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    name: str
    method: str  # oidc | token | anonymous
    groups: tuple[str, ...] = ()


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_https(url: str, what: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme != "https" and not (scheme == "http" and _is_loopback(url)):
        raise ValueError(f"open_id_connect: {what} must be an https URL (got {url!r})")
    return url


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    audience: str
    admin_groups: tuple[str, ...]
    jwks_uri: str = ""
    userinfo_endpoint: str = ""
    groups_claim: str = "groups"
    leeway: int = 30
    algorithms: tuple[str, ...] = ALGORITHMS

    def __post_init__(self) -> None:
        _require_https(self.issuer, "issuer")
        if self.jwks_uri:
            _require_https(self.jwks_uri, "jwks_uri")
        if self.userinfo_endpoint:
            _require_https(self.userinfo_endpoint, "userinfo_endpoint")
        if not self.audience:
            raise ValueError("open_id_connect: an audience (or client_id) is required")

    @classmethod
    def from_config(cls, cfg: OpenIdConnectConfig) -> OidcSettings:
        issuer = cfg.issuer or str(cfg.auth_url).rstrip("/").rsplit("/", 1)[0]
        return cls(
            issuer=issuer.rstrip("/"),
            audience=cfg.audience or cfg.client_id,
            admin_groups=tuple(cfg.admin_groups),
            jwks_uri=cfg.jwks_uri or "",
            userinfo_endpoint=cfg.userinfo_endpoint or "",
        )


@dataclass
class _Cached:
    groups: tuple[str, ...]
    until: float


@dataclass
class OidcVerifier:
    settings: OidcSettings
    http_timeout: float = 10.0
    _keys: KeySet | None = None
    _keys_at: float = 0.0
    _jwks_uri: str = ""
    _discovery: dict[str, Any] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _userinfo: dict[str, _Cached] = field(default_factory=dict)

    async def _get_json(self, url: str, token: str | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with httpx.AsyncClient(timeout=self.http_timeout) as http:
                resp = await http.get(url, headers=headers)
        except httpx.HTTPError as err:
            raise AuthFailure(503, f"identity provider unreachable ({url}): {err}") from err
        if token and resp.status_code in (401, 403):
            raise AuthFailure(401, "the identity provider rejected the token")
        if resp.status_code != 200:
            raise AuthFailure(503, f"identity provider answered {resp.status_code} for {url}")
        try:
            data = resp.json()
        except ValueError as err:
            raise AuthFailure(503, f"identity provider sent no JSON at {url}") from err
        if not isinstance(data, dict):
            raise AuthFailure(503, f"identity provider sent unexpected JSON at {url}")
        return data

    async def _discovered(self, key: str, *, required: bool) -> str:
        """An endpoint of the provider's discovery document (fetched once)."""
        if self._discovery is None:
            doc = await self._get_json(f"{self.settings.issuer}/.well-known/openid-configuration")
            if str(doc.get("issuer", "")).rstrip("/") != self.settings.issuer:
                raise AuthFailure(503, "the provider's discovery document names another issuer")
            self._discovery = doc
        uri = str(self._discovery.get(key) or "")
        if not uri and not required:
            return ""
        try:
            return _require_https(uri, key)
        except ValueError as err:
            raise AuthFailure(503, str(err)) from err

    async def _discover_jwks_uri(self) -> str:
        if self.settings.jwks_uri:
            return self.settings.jwks_uri
        if not self._jwks_uri:
            self._jwks_uri = await self._discovered("jwks_uri", required=True)
        return self._jwks_uri

    async def _userinfo_endpoint(self) -> str:
        """The configured userinfo endpoint, else the discovered one ("" if none)."""
        if self.settings.userinfo_endpoint:
            return self.settings.userinfo_endpoint
        return await self._discovered("userinfo_endpoint", required=False)

    async def _keyset(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            stale = refresh and time.monotonic() - self._keys_at >= JWKS_MIN_REFRESH
            if self._keys is None or stale:
                data = await self._get_json(await self._discover_jwks_uri())
                try:
                    self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (jose_errors.JoseError, ValueError, TypeError, KeyError) as err:
                    raise AuthFailure(503, f"the provider's JWKS is unusable: {err}") from err
                self._keys_at = time.monotonic()
            return self._keys

    async def _decode(self, token: str) -> jwt.Token:
        algorithms = list(self.settings.algorithms)
        try:
            try:
                return jwt.decode(token, await self._keyset(), algorithms=algorithms)
            except jose_errors.InvalidKeyIdError:
                # The provider may have rotated its keys: fetch them again (rate limited).
                return jwt.decode(token, await self._keyset(refresh=True), algorithms=algorithms)
        except jose_errors.JoseError as err:
            raise AuthFailure(401, f"invalid token: {err.description or err.error}") from err
        except (ValueError, TypeError, KeyError) as err:
            raise AuthFailure(401, f"invalid token: {err}") from err

    def _check_claims(self, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            leeway=self.settings.leeway,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.audience},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except jose_errors.ExpiredTokenError as err:
            raise AuthFailure(401, "invalid token: expired") from err
        except jose_errors.JoseError as err:
            raise AuthFailure(401, f"invalid token: {err.description or err.error}") from err

    async def _groups(self, token: str, claims: dict[str, Any]) -> tuple[str, ...]:
        value = claims.get(self.settings.groups_claim)
        userinfo = await self._userinfo_endpoint() if value is None else ""
        if userinfo:
            key = hashlib.sha256(token.encode()).hexdigest()
            cached = self._userinfo.get(key)
            now = time.time()
            if cached and cached.until > now:
                return cached.groups
            info = await self._get_json(userinfo, token=token)
            if info.get("sub") != claims.get("sub"):
                raise AuthFailure(401, "userinfo belongs to another subject")
            value = info.get(self.settings.groups_claim, [])
            groups = tuple(str(g) for g in value) if isinstance(value, list) else ()
            if len(self._userinfo) >= USERINFO_CACHE_SIZE:
                self._userinfo.clear()
            exp = float(claims.get("exp", now))
            self._userinfo[key] = _Cached(groups, min(exp, now + USERINFO_CACHE_SECONDS))
            return groups
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(str(g) for g in value)
        return ()

    async def verify(self, token: str) -> Principal:
        """The admin behind a bearer token; AuthFailure otherwise."""
        decoded = await self._decode(token)
        claims = dict(decoded.claims)
        self._check_claims(claims)
        name = str(
            claims.get("preferred_username") or claims.get("nickname") or claims.get("sub") or ""
        )
        if not name:
            raise AuthFailure(401, "invalid token: no subject")
        groups = await self._groups(token, claims)
        if not set(groups) & set(self.settings.admin_groups):
            raise AuthFailure(
                403,
                f"{name} is not in an admin group ({', '.join(self.settings.admin_groups)})",
            )
        return Principal(name=name, method="oidc", groups=groups)
