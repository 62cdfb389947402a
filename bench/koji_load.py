"""Benchmark: HTTP requests to the Koji hub per 1,000 packages per attempt (not a test).

One batch of N packages (draft builds, as in production), two ways:

* `lost`: no task message ever arrives, the attempt sees its tasks finish only
  by polling them every `--task-poll` seconds (the fallback path);
* `delivered`: every message reaches the attempt as a signal, via the bus
  bridge's own decision and forwarder code in this process (no broker): a
  draft build's buildsys.build.state.change (COMPLETE/FAILED/CANCELED) names
  its task and the attempt, as Fedora's Koji publishes it; the task poll is
  300 s and never fires.

The attempt's window is its child workflow's start to close (the batch makes
no Koji call meanwhile); every top-level call the simulator records in it is
one HTTP request (a multicall is one request). Builds take `--build-seconds`
spread evenly over the packages (default 0: zero-time builds).

For comparison, the same tasks cost the original ELNBuildSync (from its
algorithm: multicall `build` in batches of 500; every `task_poll` it calls
getTaskInfo for each task it still waits on, one request each, and for a
finished one also getTaskChildren and, if it closed, getTaskResult of the SRPM
task; a task message settles the task without a call):

    original_lost      = ceil(N/500) + sum_i (floor(d_i/P) + 3)   (2 for failed)
    original_delivered = ceil(N/500) + sum_i floor(d_i/P)

with d_i the task's duration and P the original's poll interval (300 s).

    .venv/bin/python bench/koji_load.py --packages 1000 [--mode lost|delivered|both]

Target: <= 20 requests per 1,000 packages per attempt, either way.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    DirectBridge,
    EngineError,
    StackOptions,
    add_common_options,
    await_result,
    child_ids,
    common_options,
    emit,
    history_stats,
    hub_requests,
    inner_calls,
    machine,
    stack,
)
from ebs.simulator.world import DEFAULT_USER  # noqa: E402

TARGET_PER_1000 = 20
ORIGINAL_POLL = 300.0
ORIGINAL_MULTICALL = 500


def original_cost(durations: list[float], delivered: bool, poll: float) -> int:
    """Requests the original makes for these tasks in one attempt (all succeed)."""
    submit = math.ceil(len(durations) / ORIGINAL_MULTICALL)
    polls = sum(math.floor(d / poll) for d in durations)
    return submit + polls + (0 if delivered else 3 * len(durations))


async def run(mode: str, packages: int, task_poll: float, build_seconds: float,
              opts_extra: dict[str, Any], timeout: float) -> dict[str, Any]:
    delivered = mode == "delivered"
    bridge: DirectBridge | None = None
    if delivered:
        bridge = DirectBridge(trigger_tag="f45", koji_user=DEFAULT_USER)
    opts = StackOptions(packages=packages, task_poll=300.0 if delivered else task_poll,
                        sink=bridge,
                        **opts_extra)
    durations: list[float] = []
    error = ""
    async with stack(opts) as st:
        for i, (name, _v, _r) in enumerate(st.sim.layout.packages):
            d = build_seconds * (i + 1) / packages if build_seconds else 0.0
            durations.append(d)
            if d:
                st.sim.set_duration(name, d)
        before = len(st.sim.calls)
        started = time.monotonic()
        handle = await st.start_batch(st.tag_events())
        try:
            result = await await_result(st, handle, timeout)
            outcome = result.outcome
        except EngineError as err:
            outcome, error = "error", str(err)
        wall = time.monotonic() - started
        calls = st.sim.calls[before:]
        # (the batch's other children, its PackageIndex ones, make no requests)
        attempts = [await history_stats(st.client, wid)
                    for wid in await child_ids(st.client, handle.id) if "-attempt" in wid]
    per_attempt = []
    for h in attempts:
        reqs = hub_requests(calls, h.start, h.close)
        inner = inner_calls(calls, h.start, h.close)
        size = inner.get("build", 0) or packages
        per_attempt.append({
            "workflow": h.workflow_id,
            "seconds": round(h.close - h.start, 2),
            "requests": sum(reqs.values()),
            "requests_per_1000": round(1000 * sum(reqs.values()) / size, 1),
            "by_kind": dict(reqs.most_common()),
            "calls_inside": dict(inner.most_common()),
            "poll_rounds": h.activities.get("activity:poll_tasks", 0),
            "history_events": h.events,
            "history_bytes": h.bytes,
        })
    total = sum(a["requests"] for a in per_attempt)
    orig = original_cost(durations, delivered, ORIGINAL_POLL)
    orig_same = original_cost(durations, delivered, opts.task_poll)
    signals = len(bridge.deliveries) if bridge else 0
    return {
        "bench": "koji_load",
        "mode": mode,
        "packages": packages,
        "outcome": outcome,
        "error": error,
        "wall_seconds": round(wall, 2),
        "task_poll": opts.task_poll,
        "build_seconds": build_seconds,
        "multicall_chunk": opts.multicall_chunk,
        "attempts": per_attempt,
        "requests_per_1000_per_attempt": round(1000 * total / packages / max(1, len(
            {a["workflow"].split("-chunk")[0] for a in per_attempt})), 1),
        "signals": signals,
        "original_requests": orig,
        "original_requests_per_1000": round(1000 * orig / packages, 1),
        "original_poll_seconds": ORIGINAL_POLL,
        "original_requests_same_poll": orig_same,
        "original_requests_per_1000_same_poll": round(1000 * orig_same / packages, 1),
        "machine": machine(),
    }


def summary(r: dict[str, Any]) -> str:
    lines = [f"Koji load, {r['packages']} packages, task messages {r['mode']}: {r['outcome']} "
             f"in {r['wall_seconds']} s (task_poll {r['task_poll']} s, builds up to "
             f"{r['build_seconds']} s)"]
    if r["error"]:
        lines.append(f"  ERROR: {r['error']}")
    for a in r["attempts"]:
        lines.append(f"  {a['workflow']}: {a['requests']} requests in {a['seconds']} s, "
                     f"{a['poll_rounds']} poll round(s), history {a['history_events']} events "
                     f"{a['history_bytes'] / 1e6:.2f} MB "
                     f"({a['requests_per_1000']} per 1000 packages): {a['by_kind']}")
    ok = r["requests_per_1000_per_attempt"] <= TARGET_PER_1000 and r["outcome"] != "error"
    lines.append(f"  per 1000 packages per attempt: {r['requests_per_1000_per_attempt']} "
                 f"(target <= {TARGET_PER_1000}: {'met' if ok else 'MISSED'}); the original "
                 f"for the same tasks: {r['original_requests_per_1000']} with its "
                 f"{r['original_poll_seconds']:.0f} s poll, "
                 f"{r['original_requests_per_1000_same_poll']} polling as often as here")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=1000)
    p.add_argument("--mode", choices=["lost", "delivered", "both"], default="both")
    p.add_argument("--task-poll", type=float, default=2.0)
    p.add_argument("--build-seconds", type=float, default=0.0,
                   help="longest build; durations spread evenly up to it (default 0)")
    p.add_argument("--multicall-chunk", type=int, default=500,
                   help="koji.multicall_chunk: calls per multicall request")
    p.add_argument("--timeout", type=float, default=900.0)
    add_common_options(p)
    a = p.parse_args(argv)
    modes = ["lost", "delivered"] if a.mode == "both" else [a.mode]
    status = 0
    for mode in modes:
        extra = {**common_options(a), "multicall_chunk": a.multicall_chunk}
        r = asyncio.run(run(mode, a.packages, a.task_poll, a.build_seconds, extra, a.timeout))
        emit(r, summary(r), a.out)
        if r["outcome"] == "error" or r["requests_per_1000_per_attempt"] > TARGET_PER_1000:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
