"""Benchmark: one batch of N packages, a mass rebuild (not a test).

Dev server, simulator (zero-time builds, small repo delay) and the worker as a
child process; one RebuildBatch of N packages started directly and awaited.
Reports the wall time from start to result, per-package orchestration
overhead (every second of it is ebs + Temporal + the simulator, as builds take
no time), the largest workflow history (events, bytes), the worker's peak RSS,
CPU seconds of worker / dev server / this process (simulator), and the Koji
hub requests of the whole batch by kind.

    .venv/bin/python bench/mass_rebuild.py --packages 1000
    .venv/bin/python bench/mass_rebuild.py --packages 10000 --out bench/results.jsonl

Targets (issue "Scale and cost"): 10,000 packages in <= 180 s, no history
over 20,000 events, worker RSS <= 500 MB.

More packages than `control.max_batch_packages` (2,000) cannot be one batch
(Temporal refuses payloads over 2 MB): then the queue goes to a BatchCollector,
started with all of it queued as after a lull, which runs it as consecutive
batches; the wall time runs until the last of them has finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import WorkflowQueryFailedError  # noqa: E402

from bench.harness import (  # noqa: E402
    EngineError,
    Stack,
    StackOptions,
    add_common_options,
    all_history_stats,
    await_result,
    common_options,
    emit,
    history_stats,
    hub_requests,
    machine,
    mb,
    percentile,
    stack,
    tag_sender,
)
from ebs.contracts.batch import BatchResult  # noqa: E402
from ebs.contracts.collector import CollectorState, CollectorStatus  # noqa: E402
from ebs.contracts.events import TagEvent  # noqa: E402
from ebs.contracts.names import QUERY_STATUS, SIGNAL_PAUSE  # noqa: E402
from ebs.workflows.collector import BatchCollector  # noqa: E402

TARGET_SECONDS_10K = 150.0
TARGET_STATUS_P95 = 1.0  # seconds, the status query and /status.json during a mass rebuild
TARGET_PAYLOAD = 512 * 1024  # bytes: Temporal's warning limit
TARGET_EVENTS = 20_000
TARGET_RSS_MB = 500.0


async def signal_all(handle: Any, events: list[TagEvent], rate: float = 0.0,
                     concurrency: int = 64) -> float:
    """Signal `events` to the collector as the bridge would (grouped; `concurrency`
    in flight; at most `rate` per second if given); returns the seconds taken."""
    gate = asyncio.Semaphore(concurrency)
    sender = tag_sender(handle)
    started = time.monotonic()

    async def one(n: int, ev: TagEvent) -> None:
        if rate:
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        async with gate:
            await sender.submit(ev)

    await asyncio.gather(*(one(n, e) for n, e in enumerate(events)))
    return time.monotonic() - started


@dataclass
class CollectorRun:
    results: list[BatchResult] = field(default_factory=list)
    enqueue_seconds: float = 0.0
    batches_seconds: float = 0.0
    status_seconds: list[float] = field(default_factory=list)  # the collector's query
    page_seconds: list[float] = field(default_factory=list)  # all of /status.json
    status_errors: int = 0
    max_status_bytes: int = 0


async def via_collector(st: Stack, collector_id: str, events: list[TagEvent],
                        run: CollectorRun, poll: float = 0.5) -> list[BatchResult]:
    """A BatchCollector, paused, sent every event as tag signals; then resumed
    and waited for until it has run them all. Meanwhile /status.json's read
    model (build_status) is timed every `poll` seconds."""
    from ebs.api.control import Control
    from ebs.api.links import Links
    from ebs.api.status import build_status

    handle = await st.client.start_workflow(
        BatchCollector.run, CollectorState(), id=collector_id, task_queue=st.task_queue,
        start_signal=SIGNAL_PAUSE)
    run.enqueue_seconds = await signal_all(handle, events)
    started = time.monotonic()
    await handle.signal(BatchCollector.resume)
    control = Control(st.client, st.task_queue, query_timeout=10.0)
    links = Links(temporal_ui_url="")
    while True:
        t0 = time.monotonic()
        try:
            raw = await st.client.get_workflow_handle(collector_id).query(
                QUERY_STATUS, result_type=CollectorStatus)
        except WorkflowQueryFailedError as err:  # a busy worker: ask again
            run.status_errors += 1
            print(f"  (collector query failed: {err})", file=sys.stderr)
            await asyncio.sleep(poll)
            continue
        run.status_seconds.append(time.monotonic() - t0)
        run.max_status_bytes = max(run.max_status_bytes, len(json.dumps(asdict(raw))))
        if raw.current_batch_id:
            t0 = time.monotonic()
            await build_status(control, links)
            run.page_seconds.append(time.monotonic() - t0)
        done = sum(b.packages for b in raw.recent_batches if b.finished_at)
        if done >= len(events) and not raw.current_batch_id:
            break
        await asyncio.sleep(poll)
    run.batches_seconds = time.monotonic() - started
    results = [await st.client.get_workflow_handle(b.batch_id, result_type=BatchResult
                                                   ).result() for b in raw.recent_batches]
    await handle.terminate("benchmark done")
    run.results = results
    return results


async def run(opts: StackOptions, timeout: float) -> dict[str, Any]:
    error = ""
    results: list[BatchResult] = []
    async with stack(opts) as st:
        events = st.tag_events()
        settings = st.settings()
        split = len(events) > settings.max_batch_packages
        calls_before = len(st.sim.calls)
        st.worker_sampler.reset()
        st.temporal_sampler.reset()
        me = psutil.Process()
        my_cpu = sum(me.cpu_times()[:2])
        started = time.monotonic()
        batch_ids: list[str] = []
        collector_id = f"ebs-collector-bench-{uuid.uuid4().hex[:8]}" if split else ""
        crun = CollectorRun()
        try:
            if split:
                results = await await_result(st, via_collector(st, collector_id, events, crun),
                                             timeout)
                batch_ids = [r.batch_id for r in results]
            else:
                handle = await st.start_batch(events, settings=settings)
                batch_ids = [handle.id]
                results = [await await_result(st, handle, timeout)]
        except EngineError as err:
            error = str(err)
        wall = time.monotonic() - started
        if split:  # the figure is enqueue to last batch finished; batches alone beside it
            wall = crun.enqueue_seconds + crun.batches_seconds
        my_cpu = sum(me.cpu_times()[:2]) - my_cpu
        worker_cpu, temporal_cpu = st.worker_sampler.cpu_seconds, st.temporal_sampler.cpu_seconds
        peak_rss = st.worker_sampler.peak_rss
        calls = st.sim.calls[calls_before:]
        chunk = settings.attempt_chunk_size
        histories = []
        for result in results:
            histories += await all_history_stats(
                st.client, result.batch_id,
                expected_children=-(-len(result.packages) // chunk))
        if not results:
            histories = [h for bid in batch_ids
                         for h in await all_history_stats(st.client, bid)]
        collector_bytes = 0
        if collector_id:
            histories.append(await history_stats(st.client, collector_id))
            collector_bytes = histories[-1].bytes
    states: dict[str, int] = {}
    for result in results:
        for p in result.packages:
            states[p.state] = states.get(p.state, 0) + 1
    outcomes = {r.outcome for r in results}
    requests = hub_requests(calls)
    biggest_events = max(histories, key=lambda h: h.events)
    biggest_bytes = max(histories, key=lambda h: h.bytes)
    batch = histories[0]
    n = len(events)
    return {
        "bench": "mass_rebuild",
        "packages": n,
        "outcome": (outcomes.pop() if len(outcomes) == 1 else "mixed") if results else "error",
        "error": error,
        "states": states,
        "batches": len(batch_ids),
        "max_batch_packages": settings.max_batch_packages,
        "attempts": max((p.attempts for r in results for p in r.packages), default=0),
        "wall_seconds": round(wall, 2),
        "overhead_ms_per_package": round(1000 * wall / n, 2),
        "workflows": len(histories),
        "attempt_chunk_size": chunk,
        "max_history_events": biggest_events.events,
        "max_history_events_workflow": biggest_events.workflow_id,
        "max_history_bytes": biggest_bytes.bytes,
        "max_history_bytes_workflow": biggest_bytes.workflow_id,
        "histories": [{"id": h.workflow_id, "events": h.events, "bytes": h.bytes}
                      for h in histories],
        "batch_history_bytes_by_kind": batch.bytes_by_kind,
        "batch_seconds_by_activity": batch.seconds_by_activity,
        "batch_activities": batch.activities,
        "batch_seconds_in_children": round(
            sum(h.close - h.start for h in histories[1:]), 2),
        "collector_history_bytes": collector_bytes,
        "payloads_over_512k": sorted(st.payload_warnings, reverse=True)[:10],
        "worker_peak_rss_mb": mb(peak_rss),
        "cpu_seconds": {"worker": round(worker_cpu, 1), "temporal": round(temporal_cpu, 1),
                        "bench+simulator": round(my_cpu, 1)},
        "hub_requests": sum(requests.values()),
        "hub_requests_per_1000": round(1000 * sum(requests.values()) / n, 1),
        "hub_requests_by_kind": dict(requests.most_common()),
        "task_poll": opts.task_poll,
        "multicall_chunk": opts.multicall_chunk,
        "enqueue_seconds": round(crun.enqueue_seconds, 2),
        "batches_seconds": round(crun.batches_seconds, 2),
        "status_query_p95_seconds": round(percentile(crun.status_seconds, 95), 3),
        "status_json_p95_seconds": round(percentile(crun.page_seconds, 95), 3),
        "status_samples": len(crun.status_seconds),
        "status_errors": crun.status_errors,
        "max_status_bytes": crun.max_status_bytes,
        "engine": str(opts.engine or "this checkout"),
        "temporal_dynamic_config": opts.temporal_dynamic_config,
        "machine": machine(),
    }


def summary(r: dict[str, Any]) -> str:
    n = r["packages"]
    lines = [
        f"mass rebuild, {n} packages: {r['outcome']} in {r['wall_seconds']} s "
        f"({r['overhead_ms_per_package']} ms/package), states {r['states']}"
        + (f"; {r['batches']} consecutive batches of <= {r['max_batch_packages']}"
           if r.get("batches", 1) > 1 else ""),
        *([f"  ERROR: {r['error']}"] if r["error"] else []),
        f"  batch time in activities: {r['batch_seconds_by_activity']}; "
        f"in children: {r['batch_seconds_in_children']} s",
        f"  largest history: {r['max_history_events']} events "
        f"({r['max_history_events_workflow']}), {r['max_history_bytes'] / 1e6:.2f} MB "
        f"({r['max_history_bytes_workflow']}); {r['workflows']} workflows",
        f"  worker peak RSS {r['worker_peak_rss_mb']} MB; CPU s {r['cpu_seconds']}",
        f"  Koji hub: {r['hub_requests']} requests ({r['hub_requests_per_1000']} per 1000 "
        f"packages)",
    ]
    checks = [
        ("history events", r["max_history_events"] <= TARGET_EVENTS,
         f"<= {TARGET_EVENTS}"),
        ("worker RSS", r["worker_peak_rss_mb"] <= TARGET_RSS_MB, f"<= {TARGET_RSS_MB} MB"),
    ]
    if n == 10_000:
        checks.insert(0, ("wall time", r["wall_seconds"] <= TARGET_SECONDS_10K and
                          r["outcome"] == "succeeded", f"<= {TARGET_SECONDS_10K} s"))
    if r.get("batches", 1) > 1:
        lines.insert(1, f"  enqueue (tag signals) {r['enqueue_seconds']} s, batches "
                     f"{r['batches_seconds']} s; status answer at most "
                     f"{r['max_status_bytes']} bytes, {r['status_errors']} failed queries")
        checks += [
            ("status query p95", r["status_query_p95_seconds"] <= TARGET_STATUS_P95,
             f"<= {TARGET_STATUS_P95} s (measured {r['status_query_p95_seconds']} s)"),
            ("/status.json p95", r["status_json_p95_seconds"] <= TARGET_STATUS_P95,
             f"<= {TARGET_STATUS_P95} s (measured {r['status_json_p95_seconds']} s)"),
            ("no payload over 512 KB", not r["payloads_over_512k"],
             f"{TARGET_PAYLOAD} bytes (warnings: {len(r['payloads_over_512k'])})"),
        ]
    for name, ok, target in checks:
        lines.append(f"  target {name} {target}: {'met' if ok else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=1000)
    p.add_argument("--task-poll", type=float, default=2.0,
                   help="seconds between polls of open tasks (no task messages here)")
    p.add_argument("--chunk", type=int, default=None,
                   help="BatchSettings.attempt_chunk_size (default: the engine's)")
    p.add_argument("--multicall-chunk", type=int, default=500)
    p.add_argument("--repo-delay", type=float, default=0.2)
    p.add_argument("--stable-after", type=float, default=0.05,
                   help="seconds until Bodhi pushes the update to stable")
    p.add_argument("--stable-poll", type=float, default=0.5)
    p.add_argument("--timeout", type=float, default=1800.0)
    add_common_options(p)
    a = p.parse_args(argv)
    opts = StackOptions(packages=a.packages, task_poll=a.task_poll,
                        attempt_chunk_size=a.chunk, multicall_chunk=a.multicall_chunk,
                        repo_delay=a.repo_delay, stable_after=a.stable_after,
                        stable_poll=a.stable_poll, **common_options(a))
    result = asyncio.run(run(opts, a.timeout))
    emit(result, summary(result), a.out)
    return 0 if result["outcome"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
