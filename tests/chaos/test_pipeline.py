"""The whole pipeline through its outages: Koji tags builds while the bridge is
SIGKILLed, the broker restarts and Temporal is unreachable; every tagged
build must still be rebuilt, once.

simulator -> RabbitMQ -> `ebs ingest` -> BatchCollector -> RebuildBatch ->
`ebs worker` -> simulator. tests/ingest/test_ingest.py checks the same outages for
the bridge alone (queued events in the collector); here they hit a running
pipeline, and what counts is what batches rebuilt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ebs.contracts.batch import BatchResult
from tests.chaos.bus import BusWorld, batch_results, collector_status, rebuilt
from tests.chaos.conftest import NAMESPACES
from tests.chaos.harness import TemporalServer, eventually, until
from tests.chaos.record import Row, Rows
from tests.chaos.test_messages import bump
from tests.helpers import rabbitmq as rmq
from tests.helpers.rabbitmq import RabbitMQ

rabbitmq = rmq.rabbitmq

pytestmark = [
    pytest.mark.broker,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

GROUP = "bus"
# Four waves of Rawhide builds, one per outage (the seeded world's packages).
WAVES = [
    ["gcc", "systemd", "openssl", "curl"],
    ["xz", "sed", "grep", "gawk", "tar"],
    ["sqlite", "krb5", "nss", "gnutls"],
    ["libxml2", "openssh", "make", "findutils", "pkgconf"],
]


@dataclass
class Stream:
    tagged: dict[str, str]  # component -> the last NVR tagged
    results: list[BatchResult]
    injected: list[str]


async def outages(world: BusWorld, temporal: TemporalServer, down: float,
                  rounds: int) -> Stream:
    """Tag `rounds` passes over WAVES while breaking one piece after another."""
    world.sim.set_duration(None, 0.5)
    client = await world.client()
    await world.start_bridge_ready()
    await world.start_worker_ready()
    injected: list[str] = []

    for _ in range(rounds):
        # 1: the bridge SIGKILLed while tag messages stream in.
        for name in WAVES[0]:
            await asyncio.to_thread(bump, world, name)
        for bridge in world.live_bridges():
            bridge.kill()
        injected.append("bridge SIGKILL")
        for name in WAVES[1]:
            await asyncio.to_thread(bump, world, name)
        await world.start_bridge_ready()
        # 2: the broker restarted while a batch runs and tags keep coming.
        await until(lambda: world.sim.builds_submitted, 60, "a batch to build")
        await asyncio.to_thread(world.broker.restart)
        injected.append("broker restart")
        for name in WAVES[2]:
            await asyncio.to_thread(bump, world, name)
        # 3: Temporal unreachable while tags keep coming.
        temporal.kill()
        injected.append(f"Temporal down {down:.0f} s")
        for name in WAVES[3]:
            await asyncio.to_thread(bump, world, name)
        await asyncio.sleep(down)
        await temporal.start()
    tagged = world.tagged()

    async def all_rebuilt() -> list[str]:
        status = await collector_status(client)
        if status is None or status.queued or status.current_batch_id:
            return []
        ids = [b.batch_id for b in status.recent_batches]
        seen = rebuilt(await batch_results(client, ids))
        if all(nvr in seen.get(c, []) for c, nvr in tagged.items()):
            return ids
        return []

    batch_ids = await eventually(all_rebuilt, 240 + down, "every tagged build rebuilt",
                                 interval=1.0)
    return Stream(tagged, await batch_results(client, batch_ids), injected)


async def run(tmp_path: Path, rabbitmq: RabbitMQ, chaos: Rows, down: float,
              rounds: int) -> None:
    temporal = TemporalServer(tmp_path / "temporal", namespaces=NAMESPACES[2:3])
    await temporal.start()
    world = BusWorld("pipeline", temporal, tmp_path / "world", rabbitmq, NAMESPACES[2])
    started = time.monotonic()
    try:
        got = await outages(world, temporal, down, rounds)
        out = world.outcome([], None)
        publish_errors = world.sim.world.outbox.sink_errors
        bridges = [b.alive() for b in world.bridges]
    finally:
        await asyncio.to_thread(world.close)
        temporal.stop()
    seen = rebuilt(got.results)
    twice = sum(len(v) - len(set(v)) for v in seen.values())
    missing = sorted(c for c, nvr in got.tagged.items() if nvr not in seen.get(c, []))
    not_built = sorted(p.component for r in got.results for p in r.packages
                       if p.state != "stable")
    ok = (not twice and not missing and not not_built and out.duplicate_tasks == 0
          and out.duplicate_updates == 0 and not out.leaked_side_tags and publish_errors == 0)
    chaos.add(Row(
        f"bridge SIGKILL, broker restart, Temporal down {down:.0f} s, tags streaming in",
        GROUP, runs=len(got.results), injected=len(got.injected),
        injected_detail=", ".join(got.injected)
        + f"; {sum(len(w) for w in WAVES) * rounds} tag events",
        duplicates=twice + out.duplicate_tasks + out.duplicate_updates, losses=len(missing),
        leaked_side_tags=len(out.leaked_side_tags), seconds=round(time.monotonic() - started, 1),
        ok=ok,
        notes=f"{len(got.tagged)} components tagged, {len(got.results)} batches"
        + ("" if ok else f"; missing {missing}, twice {twice}, not stable {not_built}"),
    ))
    assert not missing, missing
    assert not twice, seen
    assert not not_built
    assert out.duplicate_tasks == 0 and out.duplicate_updates == 0
    assert not out.leaked_side_tags
    assert publish_errors == 0
    assert bridges[-1], "the last bridge died"


async def test_bridge_broker_and_temporal_outages(
    rabbitmq: RabbitMQ, tmp_path: Path, chaos: Rows
) -> None:
    await run(tmp_path, rabbitmq, chaos, down=5.0, rounds=1)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_outages_soak_with_temporal_down_a_minute(
    rabbitmq: RabbitMQ, tmp_path: Path, chaos: Rows
) -> None:
    await run(tmp_path, rabbitmq, chaos, down=60.0, rounds=3)
