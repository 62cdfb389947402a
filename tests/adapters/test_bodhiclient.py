"""ebs's Bodhi adapter against the Bodhi simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope, Send

from ebs.bodhi.adapter import BodhiAdapter
from ebs.bodhi.errors import BodhiAuthError, BodhiPermanentError, BodhiTransientError
from ebs.config.model import BodhiAuth, BodhiConfig
from ebs.contracts.bodhi import UpdateRequest
from ebs.devstack.processes import free_port
from ebs.simulator.bodhi import BodhiSim, SimRelease, default_releases
from tests.sim.test_sim_bodhi import NVRS, SIDE_TAG, MemoryKoji, serve


@pytest.fixture
def koji() -> MemoryKoji:
    return MemoryKoji({SIDE_TAG: NVRS, "eln-build-side-102": ["zsh-5.9-11.eln150"], "eln": []})


@pytest.fixture
def sim(koji: MemoryKoji) -> Iterator[BodhiSim]:
    app = BodhiSim(koji, seed=1, stable_after=None)
    yield app
    app.close()


@pytest.fixture
def base_url(sim: BodhiSim) -> Iterator[str]:
    with serve(sim) as url:
        yield url


def anonymous(url: str, **kwargs: Any) -> BodhiAdapter:
    return BodhiAdapter(BodhiConfig(url=url, auth=BodhiAuth(method="none")), **kwargs)


def kerberos(url: str, token_store: Path, **kwargs: Any) -> BodhiAdapter:
    config = BodhiConfig(url=url, auth=BodhiAuth(method="kerberos", id_provider=f"{url}oidc"))
    return BodhiAdapter(config, token_store=str(token_store), **kwargs)


def request(tag: str = SIDE_TAG) -> UpdateRequest:
    return UpdateRequest(from_tag=tag, notes="ELN rebuild batch 1/1", key="batch-1:update:1",
                         builds=NVRS)


def calls_metric(operation: str) -> float:
    value = REGISTRY.get_sample_value("ebs_bodhi_calls_total", {"operation": operation})
    return value or 0.0


def test_pending_releases_and_rawhide_stable_tag(base_url: str) -> None:
    adapter = anonymous(base_url)
    names = {r["name"]: r for r in adapter.pending_releases()}
    assert set(names) == {"F45", "ELN"}
    assert isinstance(names["F45"], dict)
    assert adapter.rawhide_stable_tag() == "f45"


def test_pending_releases_follow_pages(koji: MemoryKoji) -> None:
    extra = [SimRelease(name=f"X{n}", long_name=f"Extra {n}", version=str(n), branch=f"x{n}",
                        dist_tag=f"x{n}", stable_tag=f"x{n}", testing_tag=f"x{n}-testing",
                        candidate_tag=f"x{n}-candidate") for n in range(150)]
    sim = BodhiSim(koji, releases=[*default_releases(), *extra], stable_after=None)
    with serve(sim) as url:
        releases = anonymous(url).pending_releases()
    assert len(releases) == 152
    assert len(sim.calls("releases")) == 2


def test_no_rawhide_release_is_a_clear_permanent_error(koji: MemoryKoji) -> None:
    eln_only = [r for r in default_releases() if r.name == "ELN"]
    sim = BodhiSim(koji, releases=eln_only, stable_after=None)
    with serve(sim) as url, pytest.raises(BodhiPermanentError, match="branch 'rawhide'") as err:
        anonymous(url).rawhide_stable_tag()
    assert "ELN (branch eln)" in str(err.value)


def test_file_update_creates_once_and_reuses(base_url: str, sim: BodhiSim) -> None:
    adapter = anonymous(base_url)
    created_before = calls_metric("create_update")
    first = adapter.file_update(request())
    assert first.alias.startswith("FEDORA-")
    assert not first.reused
    assert first.url == adapter.update_url(first.alias) == f"{base_url}updates/{first.alias}"
    assert first.status == "pending"
    again = adapter.file_update(request())
    assert (again.alias, again.reused) == (first.alias, True)
    assert len(sim.updates()) == 1
    form = sim.calls("create_update")[0].form
    assert form["from_tag"] == [SIDE_TAG]
    assert form["type"] == ["unspecified"]
    assert form["notes"] == ["ELN rebuild batch 1/1"]
    assert calls_metric("create_update") == created_before + 1


def test_get_update_and_going_stable(base_url: str, sim: BodhiSim, koji: MemoryKoji) -> None:
    adapter = anonymous(base_url)
    alias = adapter.file_update(request()).alias
    assert adapter.get_update(alias).status == "pending"
    sim.make_stable(alias)
    assert sorted(koji.tags["eln"]) == NVRS
    assert SIDE_TAG not in koji.tags
    info = adapter.get_update(alias)
    assert (info.alias, info.status, info.reused) == (alias, "stable", False)
    with pytest.raises(BodhiPermanentError, match="Invalid update id"):
        adapter.get_update("FEDORA-2026-0000000000")


def test_rejected_update_is_permanent_with_bodhis_text(base_url: str) -> None:
    with pytest.raises(BodhiPermanentError, match="The supplied from_tag doesn't exist."):
        anonymous(base_url).file_update(request("eln-build-side-404"))


def test_server_errors_are_transient_and_a_retry_succeeds(base_url: str, sim: BodhiSim) -> None:
    adapter = anonymous(base_url)
    sim.add_fault("list_updates", "http_error")
    with pytest.raises(BodhiTransientError, match="HTTP 500") as err:
        adapter.file_update(request())
    assert not isinstance(err.value, BodhiPermanentError)
    sim.add_fault("create_update", "http_error", status=503)
    with pytest.raises(BodhiTransientError, match="HTTP 503"):
        adapter.file_update(request())
    assert sim.updates() == []
    assert not adapter.file_update(request()).reused


def test_lost_answer_to_the_create_is_found_on_retry(base_url: str, sim: BodhiSim) -> None:
    adapter = anonymous(base_url)
    sim.add_fault("create_update", "lost_response")
    with pytest.raises(BodhiTransientError, match="HTTP 502"):
        adapter.file_update(request())
    retry = adapter.file_update(request())
    assert retry.reused
    assert [u.alias for u in sim.updates()] == [retry.alias]


def test_update_created_between_lookup_and_create_is_reused(
    sim: BodhiSim, koji: MemoryKoji
) -> None:
    """Another try creates the update after our lookup: Bodhi's "already exists"
    answer leads to the existing update."""
    other: dict[str, str] = {}

    async def racing(scope: Scope, receive: Receive, send: Send) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await sim(scope, receive, hold)  # the answer waits until the other try is done
        if scope["method"] == "GET" and get_route_path(scope) == "/updates/" and not other:
            other["alias"] = await run_in_threadpool(
                lambda: anonymous(other_url).file_update(request()).alias)
        for message in held:
            await send(message)

    with serve(sim) as other_url, serve(racing) as url:
        info = anonymous(url).file_update(request())
    assert info.reused
    assert info.alias == other["alias"]
    statuses = [c.status for c in sim.calls("create_update")]
    assert statuses == [200, 400]


def test_slow_bodhi_times_out_as_a_transient_error(base_url: str, sim: BodhiSim) -> None:
    sim.add_fault("releases", "slow", delay=0.5)
    with pytest.raises(requests.Timeout):
        anonymous(base_url, timeout=0.1).pending_releases()


def test_unreachable_bodhi_is_a_connection_error() -> None:
    port = free_port()
    with pytest.raises(requests.ConnectionError):
        anonymous(f"http://127.0.0.1:{port}/bodhi/").pending_releases()


def test_kerberos_oidc_login_and_stored_token(
    base_url: str, sim: BodhiSim, tmp_path: Path
) -> None:
    sim.auth = "oidc"
    store = tmp_path / "bodhi-oidc.json"
    info = kerberos(base_url, store).file_update(request())
    assert sim.update(info.alias).user == "elnbuildsync"
    assert len(sim.calls("oidc_authorize")) == 1
    assert store.exists()
    # A restarted worker reuses the stored token: no new login, a new cookie.
    second = kerberos(base_url, store).file_update(request("eln-build-side-102"))
    assert not second.reused
    assert len(sim.calls("oidc_authorize")) == 1
    assert len(sim.calls("login_token")) == 2


def test_revoked_login_is_renewed(base_url: str, sim: BodhiSim, tmp_path: Path) -> None:
    sim.auth = "oidc"
    adapter = kerberos(base_url, tmp_path / "oidc.json")
    adapter.file_update(request())
    sim.revoke_logins()
    info = adapter.file_update(request("eln-build-side-102"))
    assert not info.reused
    assert len(sim.calls("oidc_authorize")) == 2
    assert [c.status for c in sim.calls("create_update")] == [200, 403, 200]


def test_failed_kerberos_login_is_an_auth_error(
    base_url: str, sim: BodhiSim, tmp_path: Path
) -> None:
    sim.auth, sim.kerberos = "oidc", "reject"
    with pytest.raises(BodhiAuthError, match="Kerberos login .* failed"):
        kerberos(base_url, tmp_path / "oidc.json").file_update(request())
    assert sim.updates() == []


def test_wrong_id_provider_is_permanent(base_url: str, sim: BodhiSim, tmp_path: Path) -> None:
    sim.auth = "oidc"
    config = BodhiConfig(url=base_url, auth=BodhiAuth(id_provider=f"{base_url}no-such-idp"))
    adapter = BodhiAdapter(config, token_store=str(tmp_path / "oidc.json"))
    with pytest.raises(BodhiPermanentError, match="check bodhi.auth.id_provider"):
        adapter.file_update(request())


def test_anonymous_writes_refused_are_an_auth_error(base_url: str, sim: BodhiSim) -> None:
    sim.auth = "oidc"
    with pytest.raises(BodhiAuthError, match="HTTP 403"):
        anonymous(base_url).file_update(request())
    assert isinstance(BodhiAuthError("x"), BodhiPermanentError)


def test_url_and_staging_overrides(base_url: str) -> None:
    none = BodhiAuth(method="none")
    adapter = BodhiAdapter(BodhiConfig(staging=True, auth=none), url=base_url)
    assert adapter.base_url == base_url
    assert adapter.rawhide_stable_tag() == "f45"
    staging = BodhiAdapter(BodhiConfig(auth=none, url=base_url), url=None, staging=True)
    assert staging.base_url == base_url  # an explicit url wins over staging
    assert BodhiAdapter(BodhiConfig(staging=True)).update_url("FEDORA-2026-1") == \
        "https://bodhi.stg.fedoraproject.org/updates/FEDORA-2026-1"
