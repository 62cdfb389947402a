"""The Bodhi simulator, driven by the unmodified bodhi-client over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from bodhi.client.bindings import BodhiClient, BodhiClientException
from starlette.routing import Mount, Router
from starlette.types import ASGIApp

from ebs.simulator.bodhi import BodhiSim, SimRelease
from ebs.simulator.server import HttpServer
from tests.helpers.processes import wait_until

MOUNT = "/bodhi"


class MemoryKoji:
    """A KojiView over a dict of tag -> NVRs."""

    def __init__(self, tags: dict[str, list[str]] | None = None) -> None:
        self.tags: dict[str, list[str]] = {k: list(v) for k, v in (tags or {}).items()}
        self.removed_side_tags: list[str] = []
        self._lock = threading.Lock()

    def tagged_nvrs(self, tag: str) -> list[str]:
        with self._lock:
            if tag not in self.tags:
                raise KeyError(f"invalid taginfo: {tag}")
            return list(self.tags[tag])

    def tag_nvr(self, tag: str, nvr: str) -> None:
        with self._lock:
            if nvr not in self.tags[tag]:
                self.tags[tag].append(nvr)

    def untag_nvr(self, tag: str, nvr: str) -> None:
        with self._lock:
            self.tags[tag].remove(nvr)

    def tag_exists(self, tag: str) -> bool:
        with self._lock:
            return tag in self.tags

    def remove_side_tag(self, tag: str) -> None:
        with self._lock:
            del self.tags[tag]
            self.removed_side_tags.append(tag)


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve an ASGI app under /bodhi on a free loopback port, as the simulator
    server does; yields the Bodhi base URL."""
    with HttpServer(Router([Mount(MOUNT, app=app)]), "127.0.0.1", 0) as server:
        yield f"http://127.0.0.1:{server.server_port}{MOUNT}/"


SIDE_TAG = "eln-build-side-101"
NVRS = ["bash-5.2.37-1.eln150", "zsh-5.9-10.eln150"]


@pytest.fixture
def koji() -> MemoryKoji:
    return MemoryKoji({
        SIDE_TAG: NVRS,
        "eln-build-side-102": [],
        "eln": [],
        "f45": [],
        "f44-updates-candidate": ["tmux-3.5-1.fc44"],
        "just-a-tag": ["vim-9.1-1.eln150"],
    })


@pytest.fixture
def sim(koji: MemoryKoji) -> Iterator[BodhiSim]:
    app = BodhiSim(koji, seed=7, stable_after=None, auth="oidc")
    yield app
    app.close()


@pytest.fixture
def base_url(sim: BodhiSim) -> Iterator[str]:
    with serve(sim) as url:
        yield url


@pytest.fixture
def client(base_url: str, tmp_path: Path) -> BodhiClient:
    return BodhiClient(base_url=base_url, id_provider=f"{base_url}oidc",
                       oidc_storage_path=str(tmp_path / "oidc.json"))


def new_update(client: BodhiClient, from_tag: str = SIDE_TAG, **extra: Any) -> Any:
    return client.save(from_tag=from_tag, notes="ELN rebuild batch", type="unspecified", **extra)


def test_pending_releases_include_rawhide_and_eln(client: BodhiClient) -> None:
    answer = client.get_releases(state="pending")
    by_name = {r["name"]: r for r in answer["releases"]}
    assert set(by_name) == {"F45", "ELN"}
    assert answer["total"] == 2
    assert by_name["F45"]["branch"] == "rawhide"
    assert by_name["F45"]["stable_tag"] == "f45"
    assert by_name["F45"]["candidate_tag"] == "f45-updates-candidate"
    assert by_name["ELN"]["stable_tag"] == "eln"
    assert client.get_releases(state="current")["releases"] == []
    assert [r["name"] for r in client.get_releases(name="F4%")["releases"]] == ["F45"]
    with pytest.raises(BodhiClientException, match="is not one of"):
        client.get_releases(state="bogus")


def test_update_from_side_tag_logs_in_and_takes_the_tags_builds(
    client: BodhiClient, sim: BodhiSim, base_url: str
) -> None:
    update = new_update(client)
    assert update["alias"].startswith("FEDORA-")
    assert sorted(b["nvr"] for b in update["builds"]) == NVRS
    assert update["from_tag"] == SIDE_TAG
    assert update["release"]["name"] == "ELN"
    assert update["status"] == "pending"
    assert update["user"]["name"] == "elnbuildsync"
    assert update["url"] == f"{base_url}updates/{update['alias']}"
    operations = [c.operation for c in sim.calls()]
    # bodhi-client's Kerberos login: discovery, authorization page, token, Bodhi cookie.
    assert operations == ["oidc_discovery", "oidc_authorize", "oidc_token", "login_token",
                          "csrf", "create_update"]
    assert sim.calls("create_update")[0].user == "elnbuildsync"


def test_query_filters(client: BodhiClient) -> None:
    first = new_update(client)
    by_tag = client.query(from_side_tag_name=SIDE_TAG)
    assert [u["alias"] for u in by_tag["updates"]] == [first["alias"]]
    assert client.query(from_side_tag_name="eln-build-side-999")["total"] == 0
    assert client.query(alias=first["alias"])["updates"][0]["from_tag"] == SIDE_TAG
    assert client.query(builds=NVRS[1])["total"] == 1
    assert client.query(builds="nope-1-1.eln150")["total"] == 0
    assert client.query(releases="ELN")["total"] == 1
    assert client.query(releases="F45")["total"] == 0
    assert client.query(packages="bash")["total"] == 1
    assert client.query(status="stable")["total"] == 0
    with pytest.raises(BodhiClientException, match="Invalid releases specified: F99"):
        client.query(releases="F99")


def test_get_update_by_alias(client: BodhiClient, base_url: str) -> None:
    update = new_update(client)
    answer = requests.get(f"{base_url}updates/{update['alias']}", timeout=5).json()
    assert answer["update"]["alias"] == update["alias"]
    missing = requests.get(f"{base_url}updates/FEDORA-2026-0000000000", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["description"] == "Invalid update id"


def test_one_update_per_side_tag(client: BodhiClient) -> None:
    new_update(client)
    with pytest.raises(BodhiClientException, match="Update already exists using this side tag"):
        new_update(client)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_tag": "eln-build-side-404"}, "The supplied from_tag doesn't exist."),
        ({"from_tag": "eln-build-side-102"}, "The supplied from_tag doesn't contain any builds."),
        ({"from_tag": "just-a-tag"}, "The supplied tag is not a side tag."),
        ({"notes": "x"}, "Shorter than minimum length 2"),
        ({"type": "bogus"}, '"bogus" is not one of'),
        ({"type": "security"}, "Must specify severity for a security update"),
        ({"stable_karma": 0}, "0 is less than minimum value 1"),
    ],
)
def test_validation_errors_use_bodhis_messages(
    client: BodhiClient, kwargs: dict[str, Any], message: str
) -> None:
    form = {"from_tag": SIDE_TAG, "notes": "ELN rebuild batch", "type": "unspecified", **kwargs}
    with pytest.raises(BodhiClientException) as err:
        client.save(**form)
    descriptions = [e["description"] for e in json.loads(str(err.value))["errors"]]
    assert any(message in d for d in descriptions), descriptions


def test_updates_from_builds_only_for_releases_bodhi_composes(
    client: BodhiClient, sim: BodhiSim, koji: MemoryKoji
) -> None:
    koji.tags["eln-updates-candidate"] = ["vim-9.1-1.eln150"]
    with pytest.raises(BodhiClientException, match="not composed by Bodhi"):
        client.save(builds="vim-9.1-1.eln150", notes="manual update", type="bugfix")
    sim.add_release(SimRelease(
        name="F44", long_name="Fedora 44", version="44", branch="f44", dist_tag="f44",
        stable_tag="f44", testing_tag="f44-updates-testing",
        candidate_tag="f44-updates-candidate", state="current", composed_by_bodhi=True))
    update = client.save(builds="tmux-3.5-1.fc44", notes="manual update", type="bugfix")
    assert update["release"]["name"] == "F44"
    assert update["from_tag"] is None
    with pytest.raises(BodhiClientException, match="Update for tmux-3.5-1.fc44 already exists"):
        client.save(builds="tmux-3.5-1.fc44", notes="manual update", type="bugfix")
    with pytest.raises(BodhiClientException, match="not tagged with any of the following tags"):
        client.save(builds="ghost-1-1.fc44", notes="manual update", type="bugfix")


def test_make_stable_tags_builds_into_the_stable_tag_and_removes_the_side_tag(
    client: BodhiClient, sim: BodhiSim, koji: MemoryKoji
) -> None:
    update = new_update(client)
    assert koji.tags["eln"] == []
    sim.make_stable(update["alias"])
    assert sorted(koji.tags["eln"]) == NVRS
    assert koji.removed_side_tags == [SIDE_TAG]
    stable = client.query(alias=update["alias"])["updates"][0]
    assert stable["status"] == "stable"
    assert stable["request"] is None
    assert stable["date_stable"]


def test_updates_go_stable_on_their_own_after_the_delay(koji: MemoryKoji, tmp_path: Path) -> None:
    sim = BodhiSim(koji, stable_after=0.05)
    try:
        with serve(sim) as url:
            client = BodhiClient(base_url=url, id_provider=f"{url}oidc",
                                 oidc_storage_path=str(tmp_path / "oidc.json"))
            alias = new_update(client)["alias"]
            wait_until(lambda: sorted(koji.tags["eln"]) == NVRS, 5.0, "the builds in eln")
            assert sim.update(alias).status == "stable"
    finally:
        sim.close()


def test_faults_http_error_bodhi_error_and_lost_response(
    client: BodhiClient, sim: BodhiSim, koji: MemoryKoji
) -> None:
    sim.add_fault("list_updates", "http_error")
    with pytest.raises(BodhiClientException, match="500 Internal Server Error"):
        client.query(from_side_tag_name=SIDE_TAG)
    assert client.query(from_side_tag_name=SIDE_TAG)["total"] == 0  # once only

    sim.add_fault("create_update", "bodhi_error", message="Koji is having a bad day")
    with pytest.raises(BodhiClientException, match="Koji is having a bad day"):
        new_update(client)
    assert sim.updates() == []

    sim.add_fault("create_update", "lost_response")
    with pytest.raises(BodhiClientException, match="502 Bad Gateway"):
        new_update(client)
    assert [u.from_tag for u in sim.updates()] == [SIDE_TAG]  # done, answer lost
    faults = [(c.operation, c.fault, c.status) for c in sim.calls() if c.fault]
    assert faults == [("list_updates", "http_error", 500),
                      ("create_update", "error", 400),  # Bodhi's "bodhi_error"
                      ("create_update", "http_error after", 502)]  # "lost_response"


def test_slow_fault_delays_the_answer(client: BodhiClient, sim: BodhiSim) -> None:
    sim.add_fault("releases", "slow", delay=0.3)
    started = time.monotonic()
    assert client.get_releases()["total"] == 2
    assert time.monotonic() - started >= 0.3


def test_probabilistic_faults_repeat_with_the_same_seed(koji: MemoryKoji) -> None:
    def pattern(seed: int) -> list[int]:
        sim = BodhiSim(koji, seed=seed, stable_after=None)
        sim.add_fault("releases", "http_error", times=None, probability=0.5)
        with serve(sim) as url:
            return [requests.get(f"{url}releases/", timeout=5).status_code for _ in range(12)]

    first = pattern(3)
    assert first == pattern(3)
    assert set(first) == {200, 500}


def test_writes_need_a_login_unless_auth_is_none(
    sim: BodhiSim, base_url: str, koji: MemoryKoji
) -> None:
    http = requests.Session()
    token = http.get(f"{base_url}csrf", timeout=5).json()["csrf_token"]
    form = {"from_tag": SIDE_TAG, "notes": "ELN rebuild batch", "type": "unspecified",
            "csrf_token": token}
    refused = http.post(f"{base_url}updates/", data=form, timeout=5)
    assert refused.status_code == 403
    assert refused.json()["status"] == "error"

    http.post(f"{base_url}updates/", data={**form, "csrf_token": "0" * 40}, timeout=5)
    assert sim.calls("create_update")[-1].status == 403  # permission comes first
    sim.auth = "none"
    wrong = http.post(f"{base_url}updates/", data={**form, "csrf_token": "0" * 40}, timeout=5)
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["description"] == "CSRF tokens do not match"
    created = http.post(f"{base_url}updates/", data=form, timeout=5)
    assert created.status_code == 200, created.text
    assert created.json()["user"]["name"] == "anonymous"


def test_failed_kerberos_login_is_a_401_negotiate(sim: BodhiSim, base_url: str) -> None:
    sim.kerberos = "reject"
    answer = requests.get(f"{base_url}oidc/Authorization", timeout=5, params={
        "response_type": "code", "client_id": "bodhi-client",
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Negotiate"


def test_revoked_login_is_refused(client: BodhiClient, sim: BodhiSim) -> None:
    new_update(client)
    sim.revoke_logins()
    with pytest.raises(BodhiClientException, match="logged in"):
        new_update(client, from_tag="eln-build-side-102")


def test_control_api(sim: BodhiSim, base_url: str, client: BodhiClient, koji: MemoryKoji) -> None:
    control = f"{base_url}_sim/"
    added = requests.post(f"{control}faults", json={"operation": "get_update",
                                                    "kind": "http_error", "status": 503},
                          timeout=5)
    assert added.json()["status"] == 503
    bad = requests.post(f"{control}faults", json={"operation": "nope", "kind": "slow"}, timeout=5)
    assert bad.status_code == 400
    assert "unknown operation" in bad.json()["errors"][0]["description"]
    assert len(requests.get(f"{control}faults", timeout=5).json()["faults"]) == 1
    alias = new_update(client)["alias"]
    assert requests.get(f"{base_url}updates/{alias}", timeout=5).status_code == 503
    requests.delete(f"{control}faults", timeout=5)

    stable = requests.post(f"{control}updates/{alias}/stable", timeout=5).json()
    assert stable["update"]["status"] == "stable"
    assert sorted(koji.tags["eln"]) == NVRS
    assert requests.post(f"{control}updates/FEDORA-X/stable", timeout=5).status_code == 404

    settings = requests.post(f"{control}settings", json={"stable_after": None}, timeout=5)
    assert settings.json()["stable_after"] is None
    refused = requests.post(f"{control}settings", json={"auth": "maybe"}, timeout=5)
    assert refused.status_code == 400
    assert sim.auth == "oidc"

    calls = requests.get(f"{control}calls", params={"operation": "get_update"}, timeout=5)
    assert [c["status"] for c in calls.json()["calls"]] == [503]
    requests.delete(f"{control}calls", timeout=5)
    assert sim.calls() == []
