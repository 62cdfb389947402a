"""Authentication of the write endpoints: OIDC JWTs checked against a JWKS served
on loopback, and static API tokens from a secrets file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from ebs.api.oidc import AuthFailure, OidcSettings, OidcVerifier
from ebs.api.tokens import ApiTokens, TokenFileError, hash_token, new_token, parse_tokens
from ebs.config.model import OpenIdConnectConfig
from tests.helpers.api import (
    API_TOKEN,
    API_TOKEN_NAME,
    Stack,
    api_app,
    bearer,
    http,
    oidc_stack_fixture,  # noqa: F401 (the `oidc_stack` fixture)
)
from tests.helpers.oidc import (
    ADMIN_GROUP,
    AUDIENCE,
    OidcProvider,
    oidc_provider_fixture,  # noqa: F401 (the `oidc_provider` fixture)
)

TRIGGER = {"components": ["coreutils"]}


def _unsigned(claims_token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    import base64
    import json

    payload = claims_token.split(".")[1]
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header.decode().rstrip('=')}.{payload}."


def _hs256_with_public_key(provider: OidcProvider, token: str) -> str:
    """Algorithm confusion: HS256 'signed' with the provider's public JWK as secret."""
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    secret = OctKey.import_key(json.dumps(provider.jwks["keys"][0]).encode())
    return jws.serialize_compact(
        {"alg": "HS256", "kid": provider.key.kid}, json.dumps(claims).encode(), secret,
        algorithms=["HS256"],
    )


async def test_oidc_tokens(oidc_stack: Stack, oidc_provider: OidcProvider) -> None:
    p = oidc_provider
    discovery = "/.well-known/openid-configuration"
    asked = {path: p.requests.count(path) for path in (discovery, "/jwks")}
    await oidc_stack.reset_collector()
    refused = {
        "expired": (p.mint(expires_in=-120), 401, "expired"),
        "wrong audience": (p.mint(audience="someone-else"), 401, "aud"),
        "wrong issuer": (p.mint(issuer="https://evil.example"), 401, "iss"),
        "bad signature": (p.mint(key=p.other_key), 401, "bad_signature"),
        "unknown key": (p.mint(key=p.other_key, kid="rotated-away"), 401, "No key for kid"),
        "not yet valid": (p.mint(nbf=int(time.time()) + 3600), 401, "not yet valid"),
        "alg none": (_unsigned(p.mint()), 401, "'none' is not allowed"),
        "HS256 confusion": (_hs256_with_public_key(p, p.mint()), 401, "'HS256' is not allowed"),
        "garbage": ("a.b.c", 401, "invalid token"),
        "missing group": (p.mint(sub="mallory", groups=["packager"]), 403, "not in an admin group"),
        "userinfo without group": (p.mint(sub="bob", with_groups=False), 403, "not in an admin"),
    }
    # bob has no groups claim; the provider's userinfo says which groups he has.
    p.userinfo[refused["userinfo without group"][0]] = {"sub": "bob", "groups": ["packager"]}
    async with http(api_app(oidc_stack)) as api:
        await api.get("/startup")
        for case, (token, status, message) in refused.items():
            for path, body in (("/trigger", TRIGGER), ("/pause", None)):
                resp = await api.post(path, json=body, headers=bearer(token))
                assert resp.status_code == status, (case, path, resp.text)
                assert message in resp.json()["detail"], (case, resp.json())
        # Nothing happened on any refused request.
        status_now = await oidc_stack.collector_status()
        assert status_now.queued == [] and not status_now.paused

        ok = await api.post("/trigger", json=TRIGGER, headers=bearer(p.mint(sub="alice")))
        assert ok.status_code == 200, ok.text
        assert ok.json()["requested_by"] == "alice"

        carol = p.mint(sub="carol", with_groups=False)
        p.userinfo[carol] = {"sub": "carol", "groups": [ADMIN_GROUP, "packager"]}
        ok = await api.post("/pause", headers=bearer(carol))
        assert ok.status_code == 200 and ok.json()["requested_by"] == "carol"

        # Static tokens work beside OIDC.
        ok = await api.post("/resume", headers=bearer(API_TOKEN))
        assert ok.status_code == 200 and ok.json()["requested_by"] == API_TOKEN_NAME
        bad = await api.post("/resume", headers=bearer("not-a-token-0123456789"))
        assert bad.status_code == 401
    queued = await oidc_stack.collector_status()
    assert [(e.component, e.requested_by) for e in queued.queued] == [("coreutils", "alice")]
    # Discovery, then the JWKS; the unknown kid made one refetch (rate limited).
    assert p.requests.count(discovery) - asked[discovery] == 1
    assert 1 <= p.requests.count("/jwks") - asked["/jwks"] <= 2


async def test_userinfo_endpoint_is_discovered_when_not_configured(
    oidc_provider: OidcProvider,
) -> None:
    p = oidc_provider
    verifier = OidcVerifier(
        OidcSettings(issuer=p.issuer, audience=AUDIENCE, admin_groups=(ADMIN_GROUP,))
    )
    dave, erin = p.mint(sub="dave", with_groups=False), p.mint(sub="erin", with_groups=False)
    p.userinfo[dave] = {"sub": "dave", "groups": [ADMIN_GROUP]}
    p.userinfo[erin] = {"sub": "erin", "groups": ["packager"]}
    asked = p.requests.count("/userinfo")
    principal = await verifier.verify(dave)
    assert (principal.name, principal.groups) == ("dave", (ADMIN_GROUP,))
    with pytest.raises(AuthFailure) as refused:
        await verifier.verify(erin)
    assert refused.value.status == 403
    assert p.requests.count("/userinfo") - asked == 2


def test_oidc_settings_defaults_from_the_original_config() -> None:
    cfg = OpenIdConnectConfig(
        auth_url="https://id.fedoraproject.org/openidc/Authorization",
        client_id="elnbuildsync",
        token_endpoint="https://id.fedoraproject.org/openidc/Token",
        userinfo_endpoint="https://id.fedoraproject.org/openidc/UserInfo",
        admin_groups=["eln"],
    )
    s = OidcSettings.from_config(cfg)
    assert s.issuer == "https://id.fedoraproject.org/openidc"
    assert s.audience == "elnbuildsync"
    assert s.admin_groups == ("eln",)
    assert s.jwks_uri == ""  # discovered from the issuer
    with pytest.raises(ValueError, match="https"):
        OidcSettings(issuer="http://id.example.org", audience=AUDIENCE, admin_groups=("x",))


def test_tokens_file_format(tmp_path: Path) -> None:
    token, line = new_token()
    assert line == hash_token(token) and line.startswith("sha256:") and len(line) == 71
    entries = parse_tokens(f"# comment\n\n{line} ci-bot\nplain-token-0123456789abc\n")
    assert [e.name for e in entries][0] == "ci-bot"
    assert entries[1].name.startswith("token-")
    for bad, why in [
        ("sha256:abc", "64 hex"),
        ("short", "shorter than"),
        (f"{line} two names", "TOKEN-OR-HASH"),
        (f"{line} bad/name", "bad token name"),
    ]:
        with pytest.raises(TokenFileError, match=why):
            parse_tokens(bad, "f")

    path = tmp_path / "tokens"
    path.write_text(f"{line} ci-bot\n")
    tokens = ApiTokens(path)
    assert tokens.match(token) == "ci-bot"
    assert tokens.match(token + "x") is None
    # Revoking: the file is re-read when it changes.
    path.write_text("plain-token-0123456789abc other\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert tokens.match(token) is None
    assert tokens.match("plain-token-0123456789abc") == "other"
    # A broken edit keeps the last good set.
    path.write_text("sha256:nothex\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert tokens.match("plain-token-0123456789abc") == "other"
    with pytest.raises(TokenFileError, match="cannot read"):
        ApiTokens(tmp_path / "missing")

