"""The bus misbehaving while batches run: messages dropped, duplicated,
reordered or about tasks nobody knows; two workers and two bridge replicas.

The simulator publishes Fedora's Koji topics to a private RabbitMQ, `ebs
ingest` processes bridge them to Temporal, `ebs worker` processes run the
batch. Messages only make ebs faster: the results must not change, and a task
whose completion message was lost must be found by the poll within the poll
interval. (The bridge's own tests, tests/ingest/test_ingest.py, cover it alone.)
"""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime
from pathlib import Path

import pytest

from ebs.contracts.batch import BatchResult
from ebs.workflows.attempt import attempt_workflow_id
from tests.chaos.bus import BusWorld, batch_results, collector_status, rebuilt
from tests.chaos.conftest import NAMESPACES
from tests.chaos.harness import (
    STANDARD_CONTROL,
    STANDARD_EXPECTED,
    STANDARD_OUTCOMES,
    STANDARD_PACKAGES,
    TemporalServer,
    eventually,
    until,
)
from tests.chaos.record import Row, Rows
from tests.helpers import rabbitmq as rmq
from tests.helpers.rabbitmq import RabbitMQ

rabbitmq = rmq.rabbitmq  # the session's private broker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

GROUP = "bus"
TASK_POLL = 3.0  # long enough to tell a signalled completion from a polled one
BUILD_TOPIC = "buildsys.build.state.change"


def strangers(world: BusWorld, batch_id: str) -> int:
    """Messages about tasks nobody waits for, modelled on real ones: an unknown
    task of a running attempt, a task of an attempt that does not exist, a
    repo of a side tag nobody holds. Returns how many were sent."""
    real = [b for b in world.published.bodies(BUILD_TOPIC) if b.get("task_id")]
    sent = 0
    for body in real[:3]:
        unknown = copy.deepcopy(body)
        unknown["task_id"] = 900_000_000 + sent
        world.amqp.send(BUILD_TOPIC, unknown)
        gone = copy.deepcopy(body)
        gone["request"][2]["custom_user_metadata"]["ebs_workflow_id"] = (
            attempt_workflow_id(batch_id + "-gone", 0, 1, 0))
        world.amqp.send(BUILD_TOPIC, gone)
        world.amqp.send("buildsys.repo.done", {"tag": "eln-build-side-999999", "repo_id": 7,
                                               "tag_id": 1, "instance": "primary"})
        sent += 3
    return sent


async def detection_delays(world: BusWorld, result: BatchResult) -> list[tuple[str, float]]:
    """Per attempt: seconds from its last task finishing in Koji to the attempt
    workflow finishing (it knows every task's fate then)."""
    client = await world.client()
    tasks = {b["task_id"]: (b["opts"].get("custom_user_metadata") or {}).get("ebs_workflow_id")
             for b in world.sim.builds_submitted}
    by_attempt: dict[str, list[float]] = {}
    for task_id, attempt in tasks.items():
        done = world.sim.world.tasks[task_id].completion_ts
        if attempt and done:
            by_attempt.setdefault(attempt, []).append(done)
    delays = []
    for attempt, finished in sorted(by_attempt.items()):
        desc = await client.get_workflow_handle(attempt).describe()
        assert desc.close_time is not None
        delays.append((attempt, desc.close_time.timestamp() - max(finished)))
    return delays


def dropped_completions(world: BusWorld) -> int:
    return sum(1 for d in world.sim.world.outbox.log
               if d.fate == "dropped" and d.topic == BUILD_TOPIC
               and d.body.get("new") in (1, 3, 4))  # COMPLETE, FAILED, CANCELED


async def test_dropped_duplicated_reordered_and_stray_messages(
    temporal: TemporalServer, rabbitmq: RabbitMQ, tmp_path: Path, chaos: Rows
) -> None:
    world = BusWorld("messages", temporal, tmp_path, rabbitmq, NAMESPACES[0],
                     control=STANDARD_CONTROL, timers={"task_poll": TASK_POLL})
    world.script_standard()
    world.sim.set_chaos(drop=0.3, duplicate=0.3, reorder=0.3)
    try:
        await world.start_bridge_ready()
        await world.start_worker_ready()
        started = time.monotonic()
        handle = await world.start_batch(STANDARD_PACKAGES)
        await until(lambda: len(world.published.bodies(BUILD_TOPIC)) >= 3, 60, "builds")
        stray = await asyncio.to_thread(strangers, world, handle.id)
        result = await world.result(handle, 240)
        seconds = time.monotonic() - started
        out = world.outcome(STANDARD_PACKAGES, result)
        delays = await detection_delays(world, result)
        fates = [d.fate for d in world.sim.world.outbox.log]
        lost = dropped_completions(world)
        bridges_up = all(b.alive() for b in world.bridges)
    finally:
        await asyncio.to_thread(world.close)
    worst = max(d for _, d in delays)
    ok = out.clean and out.packages == STANDARD_EXPECTED and worst <= TASK_POLL + 1.5
    chaos.add(Row(
        "messages dropped, duplicated, reordered; strays for unknown tasks", GROUP,
        injected=fates.count("dropped") + fates.count("duplicated") + fates.count("reordered")
        + stray,
        injected_detail=f"{fates.count('dropped')} dropped ({lost} of them task completions), "
        f"{fates.count('duplicated')} duplicated, {fates.count('reordered')} reordered of "
        f"{len(fates)}; {stray} strays",
        duplicates=out.duplicates, losses=len(out.lost_packages),
        leaked_side_tags=len(out.leaked_side_tags), seconds=round(seconds, 1), ok=ok,
        notes=f"slowest attempt noticed its last task {worst:.1f} s after Koji finished it "
        f"(task_poll {TASK_POLL:.0f} s)",
    ))
    assert out.packages == STANDARD_EXPECTED, out.packages
    assert out.clean, out.problems()
    assert bridges_up, world.bridge_logs()
    assert lost >= 1, "no task completion was dropped: the poll path went untested"
    assert worst <= TASK_POLL + 1.5, delays


async def test_two_workers_and_two_bridges(
    temporal: TemporalServer, rabbitmq: RabbitMQ, tmp_path: Path, chaos: Rows
) -> None:
    """Tag messages to results through two bridge replicas and two workers."""
    world = BusWorld("replicas", temporal, tmp_path, rabbitmq, NAMESPACES[1],
                     control=STANDARD_CONTROL)
    world.script_standard()
    try:
        for _ in range(2):
            await world.start_bridge_ready()
            await world.start_worker_ready()
        started = time.monotonic()
        for name in STANDARD_PACKAGES:
            await asyncio.to_thread(bump, world, name)
        client = await world.client()
        batches = await eventually(lambda: finished_batches(client, len(STANDARD_PACKAGES)), 180,
                                   "the batch of the tagged packages", interval=0.5)
        results = await batch_results(client, batches)
        seconds = time.monotonic() - started
        tagged = world.tagged()
        out = world.outcome(STANDARD_PACKAGES, results[-1] if len(results) == 1 else None)
        worked = [w for w in world.workers if "koji:" in w.log.read_text()]
        bridged = [b for b in world.bridges if "-> ebs-collector" in b.log.read_text()
                   or "SIGNALLED" in b.log.read_text()]
    finally:
        await asyncio.to_thread(world.close)
    seen = rebuilt(results)
    twice = sum(len(v) - 1 for v in seen.values())
    missing = [c for c, nvr in tagged.items() if nvr not in seen.get(c, [])]
    states = {p.component: (p.state, p.attempts) for r in results for p in r.packages}
    want = {c: (sig[0], sig[1]) for c, sig in STANDARD_EXPECTED.items()}
    ok = (states == want and not twice and not missing and out.duplicate_tasks == 0
          and out.duplicate_updates == 0 and not out.leaked_side_tags)
    chaos.add(Row(
        "two workers and two bridge replicas at once", GROUP, runs=len(results),
        injected=0, injected_detail="2 worker processes, 2 bridge processes, one queue",
        duplicates=twice + out.duplicate_tasks + out.duplicate_updates, losses=len(missing),
        leaked_side_tags=len(out.leaked_side_tags), seconds=round(seconds, 1), ok=ok,
        notes=f"{len(worked)} workers ran Koji activities, {len(bridged)} bridges forwarded",
    ))
    assert states == want
    assert not twice and not missing
    assert out.duplicate_tasks == 0 and out.duplicate_updates == 0
    assert not out.leaked_side_tags


def bump(world: BusWorld, name: str) -> None:
    """A new Rawhide build of `name` lands in the trigger tag (buildsys.tag goes out)."""
    nvr = world.latest_nvr(name)
    version, release = nvr[len(name) + 1:].rsplit("-", 1)
    head, _, dist = release.partition(".")
    new = f"{int(head) + 1}.{dist}" if head.isdigit() else f"1.{release}"
    world.sim.add_rawhide_build(name, version, new)
    if name in STANDARD_OUTCOMES:
        world.sim.set_outcomes(name, list(STANDARD_OUTCOMES[name]))


async def finished_batches(client: object, packages: int) -> list[str]:
    """Ids of the finished batches once they hold `packages` packages and the
    collector has nothing queued or running."""
    status = await collector_status(client)  # type: ignore[arg-type]
    if status is None or status.queued or status.current_batch_id:
        return []
    done = [b for b in status.recent_batches if b.finished_at]
    if sum(b.packages for b in done) < packages:
        return []
    return [b.batch_id for b in sorted(done, key=lambda b: datetime.fromisoformat(b.started_at))]
