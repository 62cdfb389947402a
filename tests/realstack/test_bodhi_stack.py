"""The real Bodhi fixture itself: start/stop, the OIDC stand-in as Bodhi sees
it, and the messages Bodhi publishes on the way to stable."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import koji
import pytest
import requests

from tests.realstack import bodhi_fixtures
from tests.realstack.bodhi_stack import BodhiServer, prepare_koji
from tests.realstack.oidc_provider import BODHI_SCOPES, RunningOidcProvider
from tests.realstack.test_bodhi_contract import (
    HUB_POLICY_BREAKS_UNTAG,
    RealBackend,
    adapter,
    request_for,
)

pytestmark = pytest.mark.realstack

oidc_provider = bodhi_fixtures.oidc_provider
bodhi_server = bodhi_fixtures.bodhi_server
bodhi_signer = bodhi_fixtures.bodhi_signer
bodhi_token_file = bodhi_fixtures.bodhi_token_file


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_second_server_starts_and_stops_cleanly(
        koji_stack: Any, bodhi_server: BodhiServer, oidc_provider: RunningOidcProvider,
        tmp_path: Path) -> None:
    other = BodhiServer(koji_stack.pg, koji_hub_url=koji_stack.hub.url,
                        koji_password=koji_stack.hub.passwords["bodhi"],
                        oidc_url=oidc_provider.url, workdir=tmp_path / "bodhi2")
    other.start()
    assert other.proc is not None
    pid, port = other.proc.pid, other.port
    try:
        assert other.database != bodhi_server.database and port != bodhi_server.port
        names = {r["name"] for r in other.get("releases/", state="pending")["releases"]}
        assert names == {"F45", "ELN"}
    finally:
        other.stop()
    assert other.proc is None and not _listening(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert prepare_koji(koji_stack.hub)  # idempotent: the users exist already


def test_bodhi_trusts_only_live_tokens_of_the_provider(
        bodhi_server: BodhiServer, oidc_provider: RunningOidcProvider) -> None:
    provider = oidc_provider.provider
    url = f"{bodhi_server.url}oidc/login-token"

    def login(token: str) -> requests.Response:
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    good = provider.issue("someone", groups=["packager", "eln-sig"])
    answer = login(good["access_token"])
    assert answer.status_code == 202 and "auth_tkt" in answer.cookies
    user = bodhi_server.get("users/someone")["user"]
    assert user["email"] == "someone@example.org"
    assert {g["name"] for g in user["groups"]} == {"packager", "eln-sig"}

    revoked = provider.issue("someone")
    provider.revoke(revoked["access_token"])
    assert login(revoked["access_token"]).status_code == 401
    assert login("never-issued").status_code == 401
    narrow = provider.issue("someone", scope="openid")
    assert login(narrow["access_token"]).status_code == 403
    assert BODHI_SCOPES.startswith("openid email profile")


def test_the_stable_path_publishes_bodhis_messages(
        koji_stack: Any, bodhi_server: BodhiServer, bodhi_signer: Any,
        bodhi_token_file: Path, oidc_provider: RunningOidcProvider,
        request: pytest.FixtureRequest) -> None:
    if HUB_POLICY_BREAKS_UNTAG:
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=koji.ParameterError,
            reason="the realstack hub's tag policy fails every untag by a non-admin"))
    backend = RealBackend(koji_stack, bodhi_server, bodhi_signer, bodhi_token_file,
                          oidc_provider.url)
    try:
        tag, nvrs = backend.side_tag(builds=1)
        alias = adapter(backend).file_update(request_for(tag, nvrs)).alias
        backend.bodhi.sign(bodhi_signer, tag, nvrs)
        log = backend.bodhi.approve_testing()
    finally:
        backend.close()
    assert any(f"Automatically marking {alias} as stable" in line for line in log)
    mine = [m for m in bodhi_server.messages()
            if m["body"].get("update", {}).get("alias") == alias]
    topics = [m["topic"] for m in mine]
    assert "bodhi.update.status.testing.koji-build-group.build.complete" in topics
    assert "bodhi.update.requirements_met.stable" in topics
