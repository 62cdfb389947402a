"""Benchmark: the per-component status view for N components (not a test).

Starts a Temporal dev server and a worker hosting the ComponentLedger, fills
the ledger as finished batches would (N component records over the record
shards, a denylist of N/20 URLs), then serves /components.json and
/components.html from the real API app (in-process ASGI) and times requests:

* cold: the first request, which reads every source (8 ledger shard queries,
  the denylist, the package lists and the stable-tag NVRs);
* warm: later requests (what users see): a name search, the first page, the
  HTML page, a search matching everything with a large page.

The package lists and the stable tag's NVRs are synthetic here (in production
one Content Resolver fetch and one Koji listTagged each, cached and refreshed
in the background, never on a request's path). Also reports the size of each
ledger shard's state (it is carried across continue-as-new: Temporal refuses
payloads over 2 MB).

    .venv/bin/python bench/components_view.py --components 10000

Target: every warm request <= 1 s for 10,000 components; largest shard
state < 2 MB (well under, for 30,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.harness import add_common_options, emit, machine, percentile  # noqa: E402
from ebs.activities.ledger import LedgerActivities  # noqa: E402
from ebs.api.app import create_app  # noqa: E402
from ebs.api.components import ComponentCatalog, read_denied, read_records  # noqa: E402
from ebs.config.model import EbsConfig  # noqa: E402
from ebs.contracts.ledger import (  # noqa: E402
    ComponentRecord,
    LedgerBatch,
    LedgerPackage,
    record_shard_ids,
    records_from_rows,
)
from ebs.devstack.waiting import eventually  # noqa: E402
from ebs.workflows.ledger import ComponentLedger  # noqa: E402
from tests.helpers.temporal import start_local  # noqa: E402

TARGET_SECONDS = 1.0
PAYLOAD_LIMIT = 2 * 1024 * 1024
BATCH = 1000  # packages per simulated finished batch


def _name(n: int) -> str:
    return f"python-example-package-{n:05d}"


def _config() -> EbsConfig:
    return EbsConfig.model_validate({"configuration": {
        "koji": {"server": "http://koji.invalid/kojihub", "weburl": "http://koji.invalid/koji",
                 "build_target": "eln", "stable_tag": "eln", "trigger_tag": "f45"},
        "bodhi": {"url": "http://bodhi.invalid"},
    }})


async def _fill(activities: LedgerActivities, n: int) -> float:
    started = time.monotonic()
    for start in range(0, n, BATCH):
        packages = []
        for i in range(start, min(n, start + BATCH)):
            name = _name(i)
            failed = i % 20 == 0
            packages.append(LedgerPackage(
                record=ComponentRecord(
                    component=name, batch_id=f"ebs-batch-20261202-120000-{i // BATCH}",
                    state="failed" if failed else "stable",
                    detail="buildArch failed: %check exited 1" if failed else "",
                    rawhide_nvr=f"{name}-1.2.3-4.fc45", nvr=f"{name}-1.2.3-4.eln150",
                    task_id=100_000 + i, finished_at="2026-12-02T12:00:00+00:00",
                ),
                scm_url=f"git+https://src.fedoraproject.org/rpms/{name}.git#{i:040x}",
                failed_for_good=failed,
            ))
        await activities.record_batch(
            LedgerBatch(f"ebs-batch-{start // BATCH}", "2026-12-02T12:00:00+00:00", packages)
        )
    return time.monotonic() - started


async def run(components: int, requests: int = 20) -> dict[str, Any]:
    env = await start_local()
    result: dict[str, Any] = {"bench": "components_view", "components": components,
                              "machine": machine(), "target_seconds": TARGET_SECONDS}
    queue = f"bench-ledger-{uuid.uuid4().hex[:8]}"
    try:
        client = env.client
        async with Worker(client, task_queue=queue, workflows=[ComponentLedger]):
            activities = LedgerActivities(client, queue)
            result["fill_seconds"] = round(await _fill(activities, components), 2)
            # Every signal handled: all the records readable.
            taken = 0

            async def every_record() -> bool:
                nonlocal taken
                taken = len(await read_records(client))
                return taken >= components

            await eventually(every_record, 120, interval=0.5, what=lambda: (
                f"the ledger to take every record ({taken} of {components})"))
            t = time.perf_counter()
            await read_records(client)
            result["ledger_read_seconds"] = round(time.perf_counter() - t, 3)
            sizes = []
            for wid in record_shard_ids():
                rows = await client.get_workflow_handle(wid).query("components", result_type=list)
                records = records_from_rows(rows)
                sizes.append(len(json.dumps({"components": {r.component: vars(r)
                                                            for r in records}})))
            denied = await read_denied(client)
            result["shard_state_bytes_max"] = max(sizes)
            result["denylist_entries"] = len(denied)
            result["denylist_state_bytes"] = len(json.dumps([vars(d) for d in denied]))

            names = {_name(i): (_name(i), "eln/runtime") for i in range(components)}
            stable = {_name(i): f"{_name(i)}-1.2.3-4.eln150" for i in range(components)}

            async def load_names() -> dict[str, tuple[str, str]]:
                return names

            async def load_stable() -> dict[str, str]:
                return stable

            async def records() -> dict[str, ComponentRecord]:
                return await read_records(client)

            async def denylist() -> list[Any]:
                return await read_denied(client)

            catalog = ComponentCatalog(load_names, load_stable, records, denylist)
            app = create_app(_config(), client=client, catalog=catalog)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ebs") as api:
                async def timed(path: str, **params: Any) -> float:
                    t = time.perf_counter()
                    r = await api.get(path, params=params)
                    r.raise_for_status()
                    return time.perf_counter() - t

                result["cold_seconds"] = round(await timed("/components.json", q="00042"), 3)
                warm: dict[str, list[float]] = {
                    "search": [], "first_page": [], "html_search": [], "all_5000": [],
                }
                for i in range(requests):
                    warm["search"].append(await timed("/components.json", q=f"{i * 37:05d}"))
                    warm["first_page"].append(await timed("/components.json"))
                    warm["html_search"].append(
                        await timed("/components.html", q="example-package-01")
                    )
                    warm["all_5000"].append(await timed("/components.json", q="python",
                                                        limit=5000))
                result["warm"] = {
                    k: {"p50": round(percentile(v, 50), 4), "max": round(max(v), 4)}
                    for k, v in warm.items()
                }
        result["met"] = (
            all(v["max"] <= TARGET_SECONDS for v in result["warm"].values())
            and result["shard_state_bytes_max"] < PAYLOAD_LIMIT
        )
        result["error"] = ""
    except Exception as err:  # reported, not raised: a figure run
        result["error"] = f"{type(err).__name__}: {err}"
        result["met"] = False
    finally:
        await env.shutdown()
    return result


def summary(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"components_view: error: {r['error']}"
    lines = [f"components_view: {r['components']} components "
             f"(target: warm request <= {r['target_seconds']:g} s; met: {r['met']})"]
    lines.append(f"  cold first request: {r['cold_seconds']} s (reads every source; the "
                 f"ledger's 8 shards alone {r['ledger_read_seconds']} s)")
    for k, v in r["warm"].items():
        lines.append(f"  warm {k:12s} p50 {v['p50'] * 1000:7.1f} ms  max {v['max'] * 1000:7.1f} ms"
                     f"   target {r['target_seconds'] * 1000:.0f} ms")
    lines.append(f"  largest ledger shard state {r['shard_state_bytes_max'] / 1024:.0f} KiB "
                 f"(limit 2048 KiB); denylist {r['denylist_entries']} entries, "
                 f"{r['denylist_state_bytes'] / 1024:.0f} KiB; filling took {r['fill_seconds']} s")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--components", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=20)
    add_common_options(p)  # --out; --engine etc. accepted for run_all.sh (in-process here)
    a = p.parse_args()
    r = asyncio.run(run(a.components, a.requests))
    emit(r, summary(r), a.out)
    sys.stdout.flush()
    # As `ebs`: the SDK's native threads can crash the interpreter's finalization.
    os._exit(0 if not r["error"] else 1)


if __name__ == "__main__":
    main()
