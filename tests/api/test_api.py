"""The HTTP API against a real Temporal dev server and the real BatchCollector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from ebs.api.app import create_app
from ebs.api.metrics import prometheus_runtime
from ebs.api.tokens import ApiTokens
from ebs.contracts.components import MAX_COMPONENTS
from ebs.devstack.processes import free_port
from ebs.temporal_client import connect_to
from tests.helpers.api import (
    API_TOKEN,
    API_TOKEN_NAME,
    BODHI,
    KOJI_WEB,
    TEMPORAL_UI,
    Stack,
    api_app,
    bearer,
    eventually,
    http,
    progress_batch,
    stack_fixture,  # noqa: F401 (the `stack` fixture)
)

AUTH = bearer(API_TOKEN)


def sample(text: str, name: str) -> float | None:
    """The value of one sample (`name` with its labels) in a text exposition."""
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[-1])
    return None


async def test_alive_and_startup_start_the_collector(stack: Stack) -> None:
    await stack.reset_collector()
    async with http(api_app(stack)) as api:
        alive = await api.get("/alive")
        assert alive.status_code == 200 and alive.json()["status"] == "ok"
        first = await api.get("/startup")
        assert first.status_code == 200, first.text
        assert first.json() == {"status": "ok", "detail": "collector started"}
        second = await api.get("/startup")
        assert second.json() == {"status": "ok", "detail": "collector running"}
    status = await stack.collector_status()
    assert status.queued == [] and not status.paused


async def test_temporal_down_is_503_but_alive(stack: Stack) -> None:
    dead = f"127.0.0.1:{free_port()}"

    async def connect() -> Client:
        return await connect_to(dead)

    async with http(api_app(stack, client=None, connect=connect)) as api:
        assert (await api.get("/alive")).status_code == 200
        startup = await api.get("/startup")
        assert startup.status_code == 503
        assert startup.json()["status"] == "unavailable"
        assert "cannot connect to Temporal" in startup.json()["detail"]
        status = await api.get("/status.json")
        assert status.status_code == 503 and "cannot connect" in status.json()["detail"]
        page = await api.get("/status.html")
        assert page.status_code == 503 and "cannot connect to Temporal" in page.text
        trigger = await api.post("/trigger", json={"components": ["bash"]}, headers=AUTH)
        assert trigger.status_code == 503, trigger.text
        metrics = await api.get("/metrics")
        assert metrics.status_code == 200 and "ebs_queue_length" in metrics.text


async def test_a_temporal_config_that_cannot_be_used_is_503(stack: Stack, tmp_path: Path) -> None:
    """Connecting fails before any RPC (a missing TLS file: OSError)."""
    temporal = stack.config.temporal.model_copy(
        update={"tls_ca_file": str(tmp_path / "missing-ca.pem")}
    )
    config = stack.config.model_copy(update={"temporal": temporal})
    async with http(create_app(config, tokens=ApiTokens(stack.tokens_path))) as api:
        status = await api.get("/status.json")
        assert status.status_code == 503, status.text
        assert "cannot connect to Temporal" in status.json()["detail"]
        assert "missing-ca.pem" in status.json()["detail"]
        startup = await api.get("/startup")
        assert startup.status_code == 503 and startup.json()["status"] == "unavailable"


async def test_oversized_bodies_are_refused_before_authentication(stack: Stack) -> None:
    await stack.reset_collector()
    big = b'{"components": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]

    async with http(api_app(stack)) as api:
        for headers in ({}, AUTH):
            resp = await api.post("/trigger", content=big, headers=headers)
            assert resp.status_code == 413, resp.text
            assert "larger than 1048576 bytes" in resp.json()["detail"]
        streamed = await api.post("/trigger", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413, streamed.text
        assert (await api.post("/pause", content=big)).status_code == 413
        # Bodies under the limit still work.
        ok = await api.post("/trigger", json={"components": ["bash"]}, headers=AUTH)
        assert ok.status_code == 200, ok.text
    status = await stack.collector_status()
    assert [e.component for e in status.queued] == ["bash"] and not status.paused


async def test_trigger_without_a_worker_fails_fast(stack: Stack) -> None:
    await stack.reset_collector()
    temporal = stack.config.temporal.model_copy(update={"task_queue": "nobody-polls-this"})
    config = stack.config.model_copy(update={"temporal": temporal})
    async with http(create_app(config, client=stack.client, tokens=ApiTokens(stack.tokens_path))
                    ) as api:
        resp = await api.post("/trigger", json={"components": ["bash"]}, headers=AUTH)
        assert resp.status_code == 503
        assert "no ebs worker polls task queue 'nobody-polls-this'" in resp.json()["detail"]
    # Nothing was started (so nothing queued).
    assert not await stack.collector_running()


async def test_trigger_queues_or_rejects_each_component(stack: Stack) -> None:
    await stack.reset_collector()
    async with http(api_app(stack)) as api:
        # Paused, the queue stays put for us to look at.
        assert (await api.post("/pause", headers=AUTH)).status_code == 200
        resp = await api.post(
            "/trigger",
            json={"components": ["bash", "kernel", "no-such-package", "ipa", "bash"]},
            headers=AUTH,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["requested_by"] == API_TOKEN_NAME
        assert (body["queued"], body["rejected"]) == (2, 2)
        outcome = {r["component"]: r for r in body["results"]}
        assert outcome["bash"] == {
            "component": "bash", "status": "queued", "nvr": "bash-5.3.0-2.fc45", "reason": "",
        }
        # ELN's ipa is Fedora's freeipa: the Rawhide name is what gets queued.
        assert outcome["freeipa"]["status"] == "queued"
        assert outcome["kernel"]["status"] == "rejected"
        assert "excluded" in outcome["kernel"]["reason"]
        assert outcome["no-such-package"]["reason"] == "not in the ELN package lists"

        status = (await api.get("/status.json")).json()
        metrics = (await api.get("/metrics")).text
    collector = status["collector"]
    assert collector["exists"] and collector["answered"] and collector["paused"]
    assert collector["queue_length"] == 2
    assert sample(metrics, "ebs_queue_length") == 2
    queued = [(q["component"], q["nvr"], q["source"], q["requested_by"])
              for q in collector["queued"]]
    assert queued == [
        ("bash", "bash-5.3.0-2.fc45", "api", API_TOKEN_NAME),
        ("freeipa", "freeipa-4.12.2-1.fc45", "api", API_TOKEN_NAME),
    ]
    assert collector["temporal_url"] == f"{TEMPORAL_UI}/namespaces/default/workflows/ebs-collector"
    assert status["current_batch"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"components": ["bash; rm -rf /"]}, "not a package name: 'bash; rm -rf /'"),
        ({"components": ["-bash"]}, "not a package name"),
        ({"components": ["x" * 201]}, "not a package name"),
        ({"components": []}, "no components given"),
        ({"components": [f"p{i}" for i in range(MAX_COMPONENTS + 1)]}, "at most 5000"),
        ({"components": "bash"}, "valid list"),
        ({"packages": ["bash"]}, "Field required"),
    ],
)
async def test_trigger_rejects_bad_names_with_422(
    stack: Stack, body: dict[str, object], message: str
) -> None:
    await stack.reset_collector()
    async with http(api_app(stack)) as api:
        await api.get("/startup")
        resp = await api.post("/trigger", json=body, headers=AUTH)
        assert resp.status_code == 422
        assert message in str(resp.json()["detail"])
    assert (await stack.collector_status()).queued == []


async def test_history_rejects_bad_name(stack: Stack) -> None:
    async with http(api_app(stack)) as api:
        resp = await api.get("/history", params={"component": "bash' OR 1=1"})
        assert resp.status_code == 422
        assert "not a package name" in resp.json()["detail"]


async def test_write_endpoints_need_credentials(stack: Stack) -> None:
    await stack.reset_collector()
    async with http(api_app(stack)) as api:
        await api.get("/startup")
        cases = [
            {},
            bearer("wrong-token-0123456789abcdef"),
            {"Authorization": f"Basic {API_TOKEN}"},
            bearer(API_TOKEN + "x"),
        ]
        for headers in cases:
            for path, body in (("/trigger", {"components": ["coreutils"]}), ("/pause", None)):
                resp = await api.post(path, json=body, headers=headers)
                assert resp.status_code == 401, (path, headers, resp.text)
                assert resp.headers["www-authenticate"].startswith("Bearer")
        # Refused requests changed nothing.
        status = await stack.collector_status()
        assert status.queued == [] and not status.paused
        # The plain-token line of the tokens file works too.
        ok = await api.post("/pause", headers=bearer("plain-token-for-ci-0123456789"))
        assert ok.status_code == 200 and ok.json()["requested_by"].startswith("token-")


async def test_writes_refused_without_any_auth_configured(stack: Stack) -> None:
    async with http(api_app(stack, tokens=None)) as api:
        resp = await api.post("/pause", headers=AUTH)
        assert resp.status_code == 403
        assert "write endpoints are disabled" in resp.json()["detail"]
    async with http(api_app(stack, tokens=None, allow_anonymous_writes=True)) as api:
        resp = await api.post("/resume")
        assert resp.status_code == 200 and resp.json()["requested_by"] == "anonymous"


async def test_pause_and_resume(stack: Stack) -> None:
    await stack.reset_collector()
    async with http(api_app(stack)) as api:
        # /pause starts the collector when needed (signal-with-start).
        resp = await api.post("/pause", headers=AUTH)
        assert resp.status_code == 200
        assert resp.json()["action"] == "pause"
        assert resp.json()["requested_by"] == API_TOKEN_NAME
        await eventually(lambda: api.get("/status.json"),
                          lambda r: r.json()["collector"]["paused"] is True)
        assert (await api.post("/resume", headers=AUTH)).status_code == 200
        await eventually(lambda: api.get("/status.json"),
                         lambda r: r.json()["collector"]["paused"] is False)


async def test_batch_status_history_and_metrics(stack: Stack) -> None:
    await stack.reset_collector(lull=0.2)
    runtime, sdk_url = prometheus_runtime()
    client = await connect_to(stack.address, runtime=runtime)
    app = api_app(stack, client=client, sdk_metrics_url=sdk_url)
    async with http(app) as api:
        resp = await api.post(
            "/trigger", json={"components": ["bash", "glibc", "llvm", "coreutils"]}, headers=AUTH
        )
        assert resp.json()["queued"] == 4
        batch_id = await stack.wait_for_batch()
        await stack.script_batch(batch_id, progress_batch)
        during = (await api.get("/metrics")).text

        status = (await api.get("/status.json")).json()
        current = status["current_batch"]
        assert current["batch_id"] == batch_id
        assert current["phase"] == "building:slice 10 attempt 2"
        assert current["temporal_url"] == f"{TEMPORAL_UI}/namespaces/default/workflows/{batch_id}"
        assert current["counts"] == {"building": 1, "failed": 1, "pending": 1, "succeeded": 1}
        assert status["collector"]["config_version"] == "test"
        assert current["updates"] == [
            {"alias": "FEDORA-ELN-2026-0a1b2c3d4e",
             "url": f"{BODHI}/updates/FEDORA-ELN-2026-0a1b2c3d4e"}
        ]
        slices = {s["ordering"]: s for s in current["slices"]}
        assert sorted(slices) == [0, 10, 1000]
        assert slices[0]["state"] == "done"
        assert slices[10]["state"] == "building"
        assert slices[1000]["state"] == "building"  # bash failed, coreutils pending
        llvm = slices[0]["packages"][0]
        assert llvm["nvr"] == "llvm-21.1.0-1.eln152" and llvm["attempt"] == 1
        assert llvm["koji_tasks"] == [
            {"task_id": 9001, "url": f"{KOJI_WEB}/taskinfo?taskID=9001"}
        ]
        assert llvm["bodhi_update"]["url"] == f"{BODHI}/updates/FEDORA-ELN-2026-0a1b2c3d4e"
        bash = next(p for p in slices[1000]["packages"] if p["component"] == "bash")
        # No URL from the batch: the link is made from koji.weburl.
        assert bash["koji_tasks"][1] == {"task_id": 9011, "url": f"{KOJI_WEB}/taskinfo?taskID=9011"}
        assert bash["reason"] == "buildArch failed: %check exited 1"
        running = next(b for b in status["recent_batches"] if b["batch_id"] == batch_id)
        assert running["status"] == "running"
        assert running["packages"] == 4

        await stack.finish_batch(batch_id, "partial")
        status = await eventually(
            lambda: api.get("/status.json"),
            lambda r: r.json()["current_batch"] is None
            and any(b["batch_id"] == batch_id and b["status"] == "completed"
                    for b in r.json()["recent_batches"]),
        )
        done = next(b for b in status.json()["recent_batches"] if b["batch_id"] == batch_id)
        assert done["outcome"] == "partial"
        # llvm built, bash failed; glibc and coreutils never finished.
        assert (done["succeeded"], done["failed"], done["failed_components"]) == (1, 1, ["bash"])
        assert done["finished_at"]
        assert done["config_version"] == "test"

        history = (await api.get("/history", params={"component": "bash"})).json()
        assert history["component"] == "bash"
        entry = next(e for e in history["batches"] if e["batch"]["batch_id"] == batch_id)
        assert entry["batch"]["outcome"] == "partial"
        assert (entry["batch"]["succeeded"], entry["batch"]["failed"]) == (1, 1)
        assert entry["package"]["state"] == "failed"
        assert entry["package"]["reason"] == "buildArch failed: %check exited 1"
        assert "EbsPackages" in history["temporal_search_url"]
        nothing = (await api.get("/history", params={"component": "python3.14"})).json()
        assert nothing["batches"] == []

        metrics = await api.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        # The collector's running totals (a fresh collector: this batch only).
        finished = 'ebs_batches_finished_total{outcome="partial"}'
        before = {name: sample(during, name) for name in (
            "ebs_batches_started_total", finished, "ebs_packages_built_total",
            "ebs_packages_failed_total")}
        assert before == {"ebs_batches_started_total": 1, finished: None,
                          "ebs_packages_built_total": 0, "ebs_packages_failed_total": 0}
        assert "# TYPE ebs_batches_started_total counter" in text
        assert sample(text, "ebs_batches_started_total") == 1
        assert sample(text, finished) == 1
        assert sample(text, "ebs_packages_built_total") == 1
        assert sample(text, "ebs_packages_failed_total") == 1
        assert (sample(text, 'ebs_batches_by_status{status="Completed"}') or 0) >= 1
        assert sample(text, "ebs_queue_length") == 0
        # The Temporal SDK's own metrics of the API's client.
        assert "temporal_request" in text


async def test_openapi_documents_the_schema(stack: Stack) -> None:
    async with http(api_app(stack)) as api:
        doc = (await api.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for name in ("StatusResponse", "CurrentBatch", "SliceStatus", "PackageStatus",
                 "BatchOverview", "TriggerRequest", "TriggerResponse", "HistoryResponse"):
        assert name in schemas, name
    ok = doc["paths"]["/status.json"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/StatusResponse")
    trigger = doc["paths"]["/trigger"]["post"]
    assert trigger["security"] == [{"HTTPBearer": []}]
    assert {"401", "403", "422", "503"} <= set(trigger["responses"])


async def test_status_of_a_terminated_collector(stack: Stack) -> None:
    async with http(api_app(stack)) as api:
        await api.get("/startup")
        await stack.reset_collector()
        resp = await api.get("/status.json")
        assert resp.status_code == 200, resp.text
        status = resp.json()
        page = (await api.get("/status.html")).text
    assert status["collector"]["exists"] is True
    assert status["collector"]["status"] == "terminated"
    assert ">terminated</a>" in page


async def test_metrics_from_appends_the_ebs_figures_of_other_processes(stack: Stack) -> None:
    """`--metrics-from`: a worker's and a bridge's endpoints, merged into /metrics."""
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    urls = []
    servers = []
    for process, (name, labels) in {"worker": ("ebs_koji_calls", ["method"]),
                                    "bridge": ("ebs_bridge_messages", ["kind"])}.items():
        registry = CollectorRegistry()
        Counter(name, f"{process} figure", labels, registry=registry).labels("x").inc(3)
        Counter("process_things", "a per-process figure", registry=registry).inc()
        port = free_port()
        servers.append(start_http_server(port, addr="127.0.0.1", registry=registry))
        urls.append(f"http://127.0.0.1:{port}/metrics")
    urls.append(f"http://127.0.0.1:{free_port()}/metrics")  # nobody there
    try:
        async with http(api_app(stack, metrics_from=urls)) as api:
            text = (await api.get("/metrics")).text
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join()
    assert sample(text, 'ebs_koji_calls_total{method="x"}') == 3
    assert sample(text, 'ebs_bridge_messages_total{kind="x"}') == 3
    assert "process_things" not in text  # each process's own figures stay its own
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types))  # one family once, however many sources
