"""Who may use the write endpoints (/trigger, /pause, /resume, /loglevel, ...).

A request carries `Authorization: Bearer <token>`. The token is either a static
API token from the tokens file (see ebs.api.tokens) or an OIDC access token (a
JWT, or an opaque token checked at the provider) whose user is in one of
`open_id_connect.admin_groups` (see ebs.api.oidc). A browser instead carries the
session cookie of /login (see ebs.api.login).
Without either configured, writes are refused unless the server was started
with --allow-anonymous-writes (local development only).
"""

from __future__ import annotations

import logging

from ebs.api.oidc import AuthFailure, OidcVerifier, Principal
from ebs.api.tokens import ApiTokens

log = logging.getLogger(__name__)

__all__ = ["AuthFailure", "Authenticator", "Principal"]


class Authenticator:
    def __init__(
        self,
        tokens: ApiTokens | None = None,
        oidc: OidcVerifier | None = None,
        *,
        allow_anonymous: bool = False,
    ) -> None:
        self.tokens = tokens
        self.oidc = oidc
        self.allow_anonymous = allow_anonymous

    @property
    def configured(self) -> bool:
        return self.tokens is not None or self.oidc is not None

    async def authenticate(self, token: str | None) -> Principal:
        """The principal behind a bearer token (None: no Authorization header)."""
        if not self.configured:
            if self.allow_anonymous:
                return Principal(name="anonymous", method="anonymous")
            raise AuthFailure(
                403,
                "write endpoints are disabled: configure open_id_connect or start "
                "`ebs api` with --api-tokens-file",
            )
        if not token:
            raise AuthFailure(401, "authentication required: send Authorization: Bearer <token>")
        if self.tokens is not None:
            name = self.tokens.match(token)
            if name is not None:
                return Principal(name=name, method="token")
        if self.oidc is not None:
            return await self.oidc.verify(token)
        raise AuthFailure(401, "invalid token")
