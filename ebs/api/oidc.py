"""OpenID Connect bearer tokens: JWTs checked against the provider's JWKS,
opaque tokens checked at the provider.

JWTs: joserfc does the JOSE work. A token is accepted when its signature verifies
against a key of the provider's JWKS (asymmetric algorithms only), `iss` is the
configured issuer, `aud` contains the audience, and `exp`/`nbf`/`iat` hold.
Admin rights come from the `groups` claim or, when the token has none, from
the provider's userinfo endpoint (called with the token itself).

Opaque (non-JWT) access tokens, as Ipsilon may issue them, are validated at the
provider (see `_verify_opaque`): token introspection (RFC 7662 at the discovered
`introspection_endpoint`, else Ipsilon's token-info endpoint, the token
endpoint's URL + `Info`, as Bodhi does), which needs the client secret; without
one, a userinfo answer alone vouches for the token. Groups always come from
userinfo. Answers are cached for OPAQUE_CACHE_SECONDS at most, never past the
token's `exp`.

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
# How long an opaque token's verdict is reused (never past its `exp`): a revoked
# token keeps working at most this long; a refused one is asked again after
# OPAQUE_REFUSED_SECONDS.
OPAQUE_CACHE_SECONDS = 60.0
OPAQUE_REFUSED_SECONDS = 10.0
HTTP_TIMEOUT = 5.0


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
    token_endpoint: str = ""  # Ipsilon's token-info endpoint is this + "Info"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)  # for introspection only

    def __post_init__(self) -> None:
        _require_https(self.issuer, "issuer")
        if self.jwks_uri:
            _require_https(self.jwks_uri, "jwks_uri")
        if self.userinfo_endpoint:
            _require_https(self.userinfo_endpoint, "userinfo_endpoint")
        if self.token_endpoint:
            _require_https(self.token_endpoint, "token_endpoint")
        if not self.audience:
            raise ValueError("open_id_connect: an audience (or client_id) is required")

    @classmethod
    def from_config(cls, cfg: OpenIdConnectConfig, client_secret: str = "") -> OidcSettings:
        issuer = cfg.issuer or str(cfg.auth_url).rstrip("/").rsplit("/", 1)[0]
        return cls(
            issuer=issuer.rstrip("/"),
            audience=cfg.audience or cfg.client_id,
            admin_groups=tuple(cfg.admin_groups),
            jwks_uri=cfg.jwks_uri or "",
            userinfo_endpoint=cfg.userinfo_endpoint or "",
            token_endpoint=str(cfg.token_endpoint),
            client_id=cfg.client_id,
            client_secret=client_secret,
        )


@dataclass
class _Cached:
    groups: tuple[str, ...]
    until: float


@dataclass
class _Verdict:
    """What the provider said about an opaque token: a principal or a refusal."""

    until: float
    principal: Principal | None = None
    refusal: AuthFailure | None = None


@dataclass
class OidcVerifier:
    settings: OidcSettings
    http_timeout: float = HTTP_TIMEOUT
    _keys: KeySet | None = None
    _keys_at: float = 0.0
    _jwks_uri: str = ""
    _discovery: dict[str, Any] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _userinfo: dict[str, _Cached] = field(default_factory=dict)
    _opaque: dict[str, _Verdict] = field(default_factory=dict)

    async def _get_json(
        self,
        url: str,
        token: str | None = None,
        *,
        form: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any]:
        """JSON from the provider: GET, or POST of `form`. A provider that cannot be
        reached, is slow or answers nonsense is a 503; a 401/403 to a request that
        carries the token means the token is refused (401)."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with httpx.AsyncClient(timeout=self.http_timeout) as http:
                if form is None:
                    resp = await http.get(url, headers=headers)
                elif basic:
                    resp = await http.post(
                        url, data=form, headers=headers, auth=httpx.BasicAuth(*basic)
                    )
                else:
                    resp = await http.post(url, data=form, headers=headers)
        except httpx.TimeoutException as err:
            raise AuthFailure(
                503, f"identity provider too slow (no answer from {url} in "
                f"{self.http_timeout:g} s)"
            ) from err
        except httpx.HTTPError as err:
            raise AuthFailure(503, f"identity provider unreachable ({url}): {err}") from err
        if missing_ok and resp.status_code in (404, 405):
            return {}
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
        """An endpoint of the provider's discovery document (fetched once). When no
        endpoint is `required`, a provider without a discovery document is fine."""
        if self._discovery is None:
            doc = await self._get_json(
                f"{self.settings.issuer}/.well-known/openid-configuration",
                missing_ok=not required,
            )
            if not doc and not required:
                return ""
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
        if token.count(".") != 2:
            return await self._verify_opaque(token)
        return await self._verify_jwt(token)

    def _admin(self, name: str, groups: tuple[str, ...]) -> Principal:
        if not set(groups) & set(self.settings.admin_groups):
            raise AuthFailure(
                403,
                f"{name} is not in an admin group ({', '.join(self.settings.admin_groups)})",
            )
        return Principal(name=name, method="oidc", groups=groups)

    async def _verify_jwt(self, token: str) -> Principal:
        decoded = await self._decode(token)
        claims = dict(decoded.claims)
        self._check_claims(claims)
        name = str(
            claims.get("preferred_username") or claims.get("nickname") or claims.get("sub") or ""
        )
        if not name:
            raise AuthFailure(401, "invalid token: no subject")
        groups = await self._groups(token, claims)
        return self._admin(name, groups)

    # ---- opaque access tokens ---------------------------------------------

    async def _introspection(self) -> tuple[str, str]:
        """(endpoint, kind): RFC 7662 if the provider advertises it, else Ipsilon's
        token-info; ("", "") when there is no client secret to introspect with."""
        if not self.settings.client_secret:
            return "", ""
        uri = await self._discovered("introspection_endpoint", required=False)
        if uri:
            return uri, "rfc7662"
        if self.settings.token_endpoint:
            return self.settings.token_endpoint + "Info", "ipsilon"
        return "", ""

    async def _introspect(self, token: str, now: float) -> tuple[dict[str, Any], float] | None:
        """The provider's introspection of `token` and when it expires; None if the
        provider has no introspection endpoint. A dead token raises 401."""
        endpoint, kind = await self._introspection()
        if not endpoint:
            return None
        form = {"token": token, "token_type_hint": "access_token"}
        if kind == "ipsilon":  # Ipsilon reads the client credentials from the form
            form |= {"client_id": self.settings.client_id,
                     "client_secret": self.settings.client_secret}
            info = await self._get_json(endpoint, form=form, missing_ok=True)
        else:
            info = await self._get_json(
                endpoint, form=form,
                basic=(self.settings.client_id, self.settings.client_secret),
            )
        if not info:  # no token-info endpoint after all: userinfo decides
            return None
        if info.get("active") is not True:
            raise AuthFailure(401, "invalid token: not active (unknown, expired or revoked)")
        exp = info.get("exp")
        expires = float(exp) if isinstance(exp, (int, float)) else now + OPAQUE_CACHE_SECONDS
        if expires <= now - self.settings.leeway:
            raise AuthFailure(401, "invalid token: expired")
        aud = info.get("aud")
        audiences = aud if isinstance(aud, list) else [aud] if aud else []
        expected = self.settings.audience
        if info.get("client_id") != expected and expected not in audiences:
            raise AuthFailure(
                401, f"invalid token: issued to client {info.get('client_id')!r}, "
                f"not {expected!r}"
            )
        return info, expires

    async def _check_opaque(self, token: str, now: float) -> tuple[Principal, float]:
        introspected = await self._introspect(token, now)
        info, expires = introspected if introspected else ({}, now + OPAQUE_CACHE_SECONDS)
        endpoint = await self._userinfo_endpoint()
        if not endpoint:
            raise AuthFailure(
                503, "the identity provider has no userinfo endpoint: cannot tell the "
                "groups of an opaque token (set open_id_connect.userinfo_endpoint)"
            )
        user = await self._get_json(endpoint, token=token)
        if info.get("sub") and user.get("sub") and info["sub"] != user["sub"]:
            raise AuthFailure(401, "userinfo belongs to another subject")
        name = str(
            user.get("nickname") or user.get("preferred_username") or info.get("username")
            or user.get("sub") or info.get("sub") or ""
        )
        if not name:
            raise AuthFailure(401, "invalid token: no subject")
        value = user.get(self.settings.groups_claim, [])
        groups = tuple(str(g) for g in value) if isinstance(value, list) else ()
        return self._admin(name, groups), expires

    async def _verify_opaque(self, token: str) -> Principal:
        """Ask the provider about a non-JWT token; reuse its verdict briefly."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        cached = self._opaque.get(key)
        if cached and cached.until > now:
            if cached.refusal is not None:
                raise cached.refusal
            assert cached.principal is not None
            return cached.principal
        try:
            principal, expires = await self._check_opaque(token, now)
        except AuthFailure as err:
            if err.status in (401, 403):  # the provider's answer; 503s are not kept
                self._remember(key, _Verdict(now + OPAQUE_REFUSED_SECONDS, refusal=err))
            raise
        self._remember(key, _Verdict(min(expires, now + OPAQUE_CACHE_SECONDS), principal))
        return principal

    def _remember(self, key: str, verdict: _Verdict) -> None:
        if len(self._opaque) >= USERINFO_CACHE_SIZE:
            now = time.time()
            self._opaque = {k: v for k, v in self._opaque.items() if v.until > now}
            if len(self._opaque) >= USERINFO_CACHE_SIZE:
                self._opaque.clear()
        self._opaque[key] = verdict
