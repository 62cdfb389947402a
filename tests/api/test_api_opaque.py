"""Opaque (non-JWT) OIDC access tokens, validated at a local provider that issues
them like Ipsilon: token-info / RFC 7662 introspection, then userinfo for groups."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ebs.api.oidc import AuthFailure, OidcSettings, OidcVerifier
from ebs.devstack.processes import free_port
from tests.helpers.api import (
    Stack,
    api_app,
    bearer,
    http,
    oidc_stack_fixture,  # noqa: F401 (the `oidc_stack` fixture)
)
from tests.helpers.oidc import (
    ADMIN_GROUP,
    AUDIENCE,
    CLIENT_SECRET,
    OidcProvider,
    oidc_provider_fixture,  # noqa: F401 (the `oidc_provider` fixture)
)


def verifier(p: OidcProvider, *, secret: str = CLIENT_SECRET, **kw: object) -> OidcVerifier:
    settings = OidcSettings(
        issuer=p.issuer, audience=AUDIENCE, admin_groups=(ADMIN_GROUP,),
        token_endpoint=f"{p.base_url}/Token", client_id=AUDIENCE, client_secret=secret,
    )
    return OidcVerifier(settings, **kw)  # type: ignore[arg-type]


async def refused(v: OidcVerifier, token: str) -> AuthFailure:
    with pytest.raises(AuthFailure) as err:
        await v.verify(token)
    return err.value


@pytest.mark.parametrize("rfc7662", [False, True], ids=["ipsilon-token-info", "rfc7662"])
async def test_opaque_tokens_are_introspected(oidc_provider: OidcProvider, rfc7662: bool) -> None:
    p = oidc_provider
    p.advertise_introspection = rfc7662
    endpoint = "/introspect" if rfc7662 else "/TokenInfo"
    try:
        v = verifier(p)
        admin = p.issue_opaque("olga")
        packager = p.issue_opaque("pete", ["packager"])
        expired = p.issue_opaque("olga", expires_in=-60)
        revoked = p.issue_opaque("olga")
        p.opaque[revoked].revoked = True
        other_client = p.issue_opaque("olga", client_id="bodhi")
        asked = p.requests.count(endpoint)

        principal = await v.verify(admin)
        assert (principal.name, principal.method, principal.groups) == (
            "olga", "oidc", (ADMIN_GROUP,))
        assert (await refused(v, packager)).status == 403
        for token, why in [
            ("unknown-opaque-token", "not active"),
            (expired, "not active"),
            (revoked, "not active"),
            (other_client, "issued to client 'bodhi'"),
        ]:
            err = await refused(v, token)
            assert err.status == 401 and why in err.detail, (token, err.detail)
        assert p.requests.count(endpoint) - asked == 6

        # The verdicts are cached: asking again does not call the provider.
        before = len(p.requests)
        assert (await v.verify(admin)).name == "olga"
        assert (await refused(v, packager)).status == 403
        assert len(p.requests) == before
    finally:
        p.advertise_introspection = False


async def test_without_a_client_secret_userinfo_decides(oidc_provider: OidcProvider) -> None:
    p = oidc_provider
    v = verifier(p, secret="")
    admin, packager = p.issue_opaque("uma"), p.issue_opaque("vic", ["packager"])
    revoked = p.issue_opaque("uma")
    p.opaque[revoked].revoked = True
    asked = p.requests.count("/TokenInfo")
    assert (await v.verify(admin)).name == "uma"
    assert (await refused(v, packager)).status == 403
    assert (await refused(v, revoked)).status == 401
    assert (await refused(v, "never-issued")).status == 401
    assert p.requests.count("/TokenInfo") == asked  # no introspection without a secret


async def test_cache_never_outlives_the_token(oidc_provider: OidcProvider) -> None:
    p = oidc_provider
    v = verifier(p)
    token = p.issue_opaque("wes", expires_in=2)
    assert (await v.verify(token)).name == "wes"
    cached = next(iter(v._opaque.values()))
    assert cached.until <= p.opaque[token].expires_at + 1  # exp is whole seconds
    p.opaque[token].expires_at = time.time() - 1
    cached.until = time.time() - 0.01  # as if its life ran out
    assert (await refused(v, token)).status == 401


async def test_slow_or_down_provider_is_a_503(oidc_provider: OidcProvider) -> None:
    p = oidc_provider
    token = p.issue_opaque("xena")
    with p.held():
        err = await refused(verifier(p, http_timeout=0.3), token)
    assert err.status == 503 and "too slow" in err.detail

    port = free_port()  # nothing listens there
    down = OidcVerifier(OidcSettings(
        issuer=f"http://127.0.0.1:{port}", audience=AUDIENCE, admin_groups=(ADMIN_GROUP,),
        token_endpoint=f"http://127.0.0.1:{port}/Token", client_id=AUDIENCE,
        client_secret=CLIENT_SECRET,
    ))
    err = await refused(down, token)
    assert err.status == 503 and "unreachable" in err.detail
    # A 503 is not remembered: the provider is asked again once it is back.
    assert down._opaque == {}


async def test_opaque_tokens_through_the_api(
    oidc_stack: Stack, oidc_provider: OidcProvider
) -> None:
    """The stack's config has no client secret: userinfo vouches for the token.
    JWTs keep their own path beside it (tests/api/test_api_auth.py)."""
    p = oidc_provider
    await oidc_stack.reset_collector()
    admin, packager = p.issue_opaque("yuri"), p.issue_opaque("zoe", ["packager"])
    expired = p.issue_opaque("yuri", expires_in=-5)
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
        for token, status in [(packager, 403), (expired, 401), ("unknown-token", 401)]:
            resp = await api.post("/pause", headers=bearer(token))
            assert resp.status_code == status, resp.text
        assert not (await oidc_stack.collector_status()).paused
        ok = await api.post("/pause", headers=bearer(admin))
        assert ok.status_code == 200 and ok.json()["requested_by"] == "yuri"
        ok = await api.post("/resume", headers=bearer(admin))
        assert ok.status_code == 200
        ok = await api.post("/pause", headers=bearer(p.mint(sub="alice")))  # a JWT
        assert ok.status_code == 200 and ok.json()["requested_by"] == "alice"
        await api.post("/resume", headers=bearer(admin))


async def test_the_api_introspects_with_the_client_secret(
    oidc_stack: Stack, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """`ebs api --openid-client-secret-file`: opaque tokens go to Ipsilon's
    token-info endpoint first; a revoked one is refused there."""
    p = oidc_provider
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET + "\n")
    await oidc_stack.reset_collector()
    admin, revoked = p.issue_opaque("ana"), p.issue_opaque("ana")
    p.opaque[revoked].revoked = True
    asked = p.requests.count("/TokenInfo")
    async with http(api_app(oidc_stack, oidc_client_secret_file=str(secret))) as api:
        await api.get("/startup")
        resp = await api.post("/pause", headers=bearer(revoked))
        assert resp.status_code == 401 and "not active" in resp.json()["detail"]
        resp = await api.post("/pause", headers=bearer(admin))
        assert resp.status_code == 200 and resp.json()["requested_by"] == "ana"
        await api.post("/resume", headers=bearer(admin))
    assert p.requests.count("/TokenInfo") - asked == 2
