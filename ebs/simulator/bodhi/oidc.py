"""An OpenID Connect provider as Ipsilon answers, and Bodhi's login-token."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from .core import BodhiCore
from .model import AUTH_COOKIE
from .request import Reject, Request


class OidcProvider(BodhiCore):
    # ---- OpenID Connect provider and Bodhi's login-token -------------------

    def _oidc_discovery(self, req: Request) -> dict[str, Any]:
        issuer = f"{req.base_url}oidc"
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/Authorization",
            "token_endpoint": f"{issuer}/Token",
            "userinfo_endpoint": f"{issuer}/UserInfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post", "oob"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic",
                                                      "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile",
                                 "https://id.fedoraproject.org/scope/groups",
                                 "https://id.fedoraproject.org/scope/agreements"],
            "subject_types_supported": ["public"],
        }

    def _oidc_authorize(self, req: Request) -> tuple[int, str, str]:
        """After a Kerberos (Negotiate) login Ipsilon shows the code in the page
        title for out-of-band clients; bodhi-client's Kerberos login reads it."""
        if self.kerberos == "reject":
            raise Reject(401, body="<html><title>401 Unauthorized</title></html>",
                          headers=[("Content-Type", "text/html"),
                                   ("WWW-Authenticate", "Negotiate")])
        p = req.params
        client_id, redirect_uri = req.first(p, "client_id"), req.first(p, "redirect_uri")
        if req.first(p, "response_type") != "code" or not client_id or not redirect_uri:
            raise Reject(400, body="invalid_request: response_type=code, client_id and "
                                    "redirect_uri are required")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                 "user": self.username}
        answer = {"code": code}
        state = req.first(p, "state")
        if state:
            answer["state"] = state
        if redirect_uri == "urn:ietf:wg:oauth:2.0:oob":
            title = urlencode(answer)
            return 200, "text/html", f"<html><head><title>{title}</title></head></html>"
        raise Reject(302, body="", headers=[("Location", f"{redirect_uri}?{urlencode(answer)}")])

    def _oidc_token(self, req: Request) -> dict[str, Any]:
        f = req.form
        grant = req.first(f, "grant_type")
        with self._lock:
            if grant == "authorization_code":
                entry = self._codes.pop(req.first(f, "code") or "", None)
                client_id = req.first(f, "client_id")
                if (entry is None or entry["redirect_uri"] != req.first(f, "redirect_uri")
                        or (client_id is not None and client_id != entry["client_id"])):
                    raise Reject(400, body=json.dumps({"error": "invalid_grant"}),
                                  headers=[("Content-Type", "application/json")])
                user = entry["user"]
            elif grant == "refresh_token":
                refresh = self._refresh_tokens.pop(req.first(f, "refresh_token") or "", None)
                if refresh is None:
                    raise Reject(400, body=json.dumps({"error": "invalid_grant"}),
                                  headers=[("Content-Type", "application/json")])
                user = refresh
            else:
                raise Reject(400, body=json.dumps({"error": "unsupported_grant_type"}),
                              headers=[("Content-Type", "application/json")])
            access, refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._access_tokens[access] = (user, time.time() + self.token_lifetime)
            self._refresh_tokens[refresh_token] = user
            req.user = user
        self._changed()
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": self.token_lifetime, "refresh_token": refresh_token,
                "scope": "openid email profile"}

    def _oidc_userinfo(self, req: Request) -> dict[str, Any]:
        with self._lock:
            entry = self._access_tokens.get(req.bearer or "")
        if entry is None or entry[1] <= time.time():
            raise Reject(401, body=json.dumps({"error": "invalid_token"}),
                          headers=[("Content-Type", "application/json"),
                                   ("WWW-Authenticate", 'Bearer error="invalid_token"')])
        req.user = entry[0]
        return {"sub": entry[0], "nickname": entry[0], "groups": ["packager"]}

    def _login_token(self, req: Request) -> dict[str, Any]:
        with self._lock:
            entry = self._access_tokens.get(req.bearer or "")
            if entry is None or entry[1] <= time.time():
                raise Reject(401, [("header", "Authorization", "Invalid or missing token")])
            ticket = secrets.token_hex(20)
            self._auth_tickets[ticket] = entry[0]
        self._changed()
        req.user = entry[0]
        req.set_cookies.append(f"{AUTH_COOKIE}={ticket}; Path=/; HttpOnly")
        return {"name": entry[0]}

