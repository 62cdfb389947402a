"""A worker SIGKILLed at precise points of a batch, then restarted.

Every point runs the standard chaos batch (two slices, a retry, a package
that fails for good, a skip_tag package, a Bodhi update) in a world of its
own, concurrently with an undisturbed run of the same batch. Each must end
with the per-package result of the undisturbed run, no duplicate Koji build
task, no side tag left, no build in two Bodhi updates, no lost package.
(tests/engine/test_worker_crash.py is the single-kill smoke test this generalises.)
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from ebs.contracts.batch import BatchResult
from tests.chaos.faults import Interceptor
from tests.chaos.harness import (
    STANDARD_CONTROL,
    STANDARD_EXPECTED,
    STANDARD_PACKAGES,
    TemporalServer,
    World,
    closed,
    quiescent,
)
from tests.chaos.killpoints import ALL, BY_NAME, IDLE, KillPoint, PointRun, run_batch
from tests.chaos.record import Row, Rows

GROUP = "worker crash"
# Inside-activity kills wait for the 30 s heartbeat timeout: few in the fast set.
FAST = [p.name for p in IDLE] + ["submit"]
SLOW = [p.name for p in ALL if p.name not in FAST]


async def run_points(server: TemporalServer, workdir: Path, names: list[str],
                     concurrency: int) -> dict[str, PointRun | BaseException]:
    """Each point (and "undisturbed") in a world of its own, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> PointRun | BaseException:
        async with gate:
            world = World(name, server, workdir / name, control=STANDARD_CONTROL)
            world.script_standard()
            try:
                return await run_batch(world, BY_NAME.get(name), Interceptor(world.sim))
            except Exception as err:  # reported per point, the others go on
                return err
            finally:
                await asyncio.to_thread(world.close)

    results = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, results, strict=True))


def record(chaos: Rows, runs: dict[str, PointRun | BaseException], bug: str = "") -> list[str]:
    """One row per point; returns what went wrong, per point."""
    problems: list[str] = []
    for name, run in runs.items():
        point: KillPoint | None = BY_NAME.get(name)
        scenario = f"worker SIGKILL: {point.where}" if point else "undisturbed run (baseline)"
        if isinstance(run, BaseException):
            chaos.add(Row(scenario, GROUP, injected=1 if point else 0, ok=False, bug=bug,
                          notes=f"error: {run}"[:300]))
            problems.append(f"{name}: {run}")
            continue
        out = run.outcome
        mismatched = sorted(c for c, sig in STANDARD_EXPECTED.items()
                            if out.packages.get(c) != sig)
        ok = out.clean and not mismatched and out.batch_outcome == "partial"
        notes = point.moment if point else ""
        if mismatched:
            notes += f"; result differs for {', '.join(mismatched)}"
        chaos.add(Row(
            scenario, GROUP, runs=1, injected=run.kills,
            injected_detail="SIGKILL + restart" if point else "",
            duplicates=out.duplicates, losses=len(out.lost_packages),
            leaked_side_tags=len(out.leaked_side_tags), seconds=round(run.seconds, 1),
            ok=ok, bug=bug, notes=notes.strip("; "),
        ))
        if not ok:
            problems.append(f"{name}: {out.problems()}; differs: {mismatched}\n{run.log_tail}")
    return problems


async def test_worker_killed_at_chosen_points(
    temporal: TemporalServer, tmp_path: Path, chaos: Rows
) -> None:
    names = ["undisturbed", *FAST]
    runs = await run_points(temporal, tmp_path, names, concurrency=len(names))
    problems = record(chaos, runs)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_worker_killed_at_every_other_point(
    temporal: TemporalServer, tmp_path: Path, chaos: Rows
) -> None:
    names = ["undisturbed", *SLOW]
    runs = await run_points(temporal, tmp_path, names, concurrency=9)
    problems = record(chaos, runs)
    assert not problems, "\n".join(problems)


async def kill_at_every_wait(world: World) -> tuple[BatchResult, str]:
    """One batch, its worker killed at each between-activities point in turn."""
    icpt = Interceptor(world.sim)
    waits = [p.arm(world, icpt) for p in IDLE]
    await world.start_worker_ready()
    handle = await world.start_batch(STANDARD_PACKAGES)
    for wait in waits:
        await wait(world, handle.id)
        world.crash_and_restart()
    return await world.result(handle, 600), f"{len(waits)} kills, one at each wait"


async def kill_at_random(world: World, kills: int, seed: int) -> tuple[BatchResult, str]:
    """One batch, its worker killed at random moments, inside activities or not."""
    rng = random.Random(seed)
    await world.start_worker_ready()
    handle = await world.start_batch(STANDARD_PACKAGES)
    client = await world.client()
    inside = 0
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.5, 5.0))
        if await closed(client, handle.id):
            break
        inside += not await quiescent(client, handle.id)
        world.crash_and_restart()
    return await world.result(handle, 900), (
        f"{world.kills} kills at random moments ({inside} inside an activity)")


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_crash_loops(temporal: TemporalServer, tmp_path: Path, chaos: Rows) -> None:
    """The worker killed again and again during one batch: the batch outlives it."""
    worlds = [World(name, temporal, tmp_path / name, control=STANDARD_CONTROL)
              for name in ("every-wait", "random")]
    for world in worlds:
        world.script_standard()
    started = time.monotonic()
    try:
        runs = await asyncio.gather(
            kill_at_every_wait(worlds[0]), kill_at_random(worlds[1], kills=8, seed=5)
        )
        # Read the outcomes while the simulators still run (close stops them).
        outs = [world.outcome(STANDARD_PACKAGES, result)
                for world, (result, _) in zip(worlds, runs, strict=True)]
    finally:
        for world in worlds:
            await asyncio.to_thread(world.close)
    problems = []
    for world, (_, detail), out in zip(worlds, runs, outs, strict=True):
        ok = out.clean and out.packages == STANDARD_EXPECTED
        chaos.add(Row(
            f"worker SIGKILLed again and again in one batch ({world.name})", GROUP,
            injected=world.kills, injected_detail=detail, duplicates=out.duplicates,
            losses=len(out.lost_packages), leaked_side_tags=len(out.leaked_side_tags),
            seconds=round(time.monotonic() - started, 1), ok=ok,
        ))
        if not ok:
            problems.append(f"{world.name}: {out.problems()} {out.packages}")
    assert not problems, problems
