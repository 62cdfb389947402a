"""Browser login for admins, as in the original: /login, /oidc/callback, /logout.

The authorization-code flow against the configured provider is authlib's
(Starlette client): /login sends the browser to `auth_url` with the original's
scopes, /oidc/callback exchanges the code at `token_endpoint` (client_secret_basic,
as the original), checks the ID token when the provider sends one, and reads
userinfo for the user's name and groups. Like the original, any user who logs
in gets a session; `admin_groups` is checked by each admin endpoint.

The session is Starlette's signed cookie `ebs_session` (the original's name,
24 hours, HttpOnly, SameSite=Lax). It holds the user's name, groups and expiry,
signed with a key derived from the OIDC client secret, so every API replica
accepts it and no session database is needed; changing the client secret logs
everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import warnings
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from ebs.api.oidc import Principal, _is_loopback
from ebs.config.model import OpenIdConnectConfig

log = logging.getLogger(__name__)

SESSION_COOKIE = "ebs_session"
SESSION_SECONDS = 24 * 3600
_USER = "user"
_RETURN_TO = "return_to"


def session_key(client_secret: str) -> str:
    """The cookie-signing key: derived from the client secret, never the secret."""
    return hmac.new(client_secret.encode(), b"ebs session cookie", hashlib.sha256).hexdigest()


def secure_cookie(cfg: OpenIdConnectConfig) -> bool:
    """Secure cookies unless the provider is on loopback (local testing)."""
    return not _is_loopback(str(cfg.auth_url))


def safe_return_to(value: str | None, default: str) -> str:
    """Only a path on this site: never an open redirect elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def base_url(request: Request) -> str:
    """The URL the browser used to reach us (X-Forwarded-Proto behind a proxy)."""
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}"


def session_principal(request: Request) -> Principal | None:
    """Who the session cookie says is logged in (groups as of the login)."""
    if "session" not in request.scope:
        return None
    user = request.session.get(_USER)
    if not isinstance(user, dict) or float(user.get("exp", 0)) < time.time():
        return None
    return Principal(
        name=str(user.get("name", "")), method="session",
        groups=tuple(str(g) for g in user.get("groups", [])),
    )


class BrowserLogin:
    """The three endpoints of the browser flow, for one provider."""

    def __init__(self, cfg: OpenIdConnectConfig, client_secret: str, issuer: str) -> None:
        self.cfg = cfg
        # Imported only when browser login is configured. authlib 1.9 warns (on
        # stderr, at import) that it would rather use `httpx2`; `httpx` works.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The httpx module is deprecated")
            from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
        oauth = OAuth()
        oauth.register(
            "provider",
            client_id=cfg.client_id,
            client_secret=client_secret,
            authorize_url=str(cfg.auth_url),
            access_token_url=str(cfg.token_endpoint),
            # For the ID token's keys and issuer, and userinfo when not configured.
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": " ".join(cfg.scopes),
                "token_endpoint_auth_method": "client_secret_basic",
                "timeout": 10.0,
            },
        )
        client = oauth.create_client("provider")
        assert isinstance(client, StarletteOAuth2App)
        self.client = client

    async def login(self, request: Request) -> Response:
        return_to = safe_return_to(request.query_params.get("return_to"), "/trigger")
        request.session[_RETURN_TO] = return_to
        redirect_uri = f"{base_url(request)}/oidc/callback"
        try:
            response: Response = await self.client.authorize_redirect(request, redirect_uri)
        except Exception as err:  # noqa: BLE001 (provider discovery: any transport error)
            log.error("cannot start an OIDC login: %s", err)
            return PlainTextResponse(
                "The identity provider cannot be reached; try again later", status_code=503
            )
        return response

    async def _userinfo(self, token: dict[str, Any]) -> dict[str, Any]:
        if self.cfg.userinfo_endpoint:
            resp = await self.client.get(self.cfg.userinfo_endpoint, token=token)
            resp.raise_for_status()
            data = resp.json()
        else:
            data = dict(await self.client.userinfo(token=token))
        if not isinstance(data, dict):
            raise ValueError("userinfo is not a JSON object")
        return data

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        if params.get("error"):
            desc = params.get("error_description") or "Unknown error"
            log.error("OIDC error: %s - %s", params["error"], desc)
            return PlainTextResponse(f"Authentication failed: {desc}", status_code=401)
        if not params.get("code") or not params.get("state"):
            return PlainTextResponse("Missing code or state parameter", status_code=400)
        state_key = f"_state_provider_{params['state']}"
        if state_key not in request.session:
            log.warning("invalid or expired OIDC state")
            return PlainTextResponse("Invalid or expired state parameter", status_code=400)
        try:
            token = await self.client.authorize_access_token(request)
            info = await self._userinfo(token)
        except Exception as err:  # noqa: BLE001 (authlib/httpx/JOSE errors alike)
            log.error("OIDC error during callback: %s", err)
            return PlainTextResponse(
                "Authentication failed. Please try again.", status_code=500
            )
        id_claims = token.get("userinfo") or {}
        if id_claims.get("sub") and info.get("sub") and id_claims["sub"] != info["sub"]:
            log.error("userinfo subject %s is not the ID token's %s", info["sub"],
                      id_claims["sub"])
            return PlainTextResponse(
                "Authentication failed. Please try again.", status_code=500
            )
        name = str(info.get("nickname") or info.get("preferred_username") or info.get("sub"))
        groups = info.get("groups", [])
        groups = [str(g) for g in groups] if isinstance(groups, list) else []
        log.info("user %s logged in with groups %s", name, groups)
        return_to = safe_return_to(request.session.pop(_RETURN_TO, None), "/trigger")
        request.session[_USER] = {
            "name": name, "groups": groups, "exp": time.time() + SESSION_SECONDS,
        }
        return RedirectResponse(return_to, status_code=302)

    @staticmethod
    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse(
            safe_return_to(request.query_params.get("return_to"), "/"), status_code=302
        )


def login_redirect(request: Request) -> RedirectResponse:
    """Where an unauthenticated browser is sent (back here after logging in)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"return_to": target}), status_code=302)
