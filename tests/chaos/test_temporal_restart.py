"""The Temporal server itself SIGKILLed mid-batch and restarted from its SQLite
file (`temporal server start-dev --db-filename F` on a fixed port): the worker
rides out the outage and the batch resumes where it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.harness import (
    STANDARD_CONTROL,
    STANDARD_EXPECTED,
    STANDARD_PACKAGES,
    TemporalServer,
    World,
    until,
)
from tests.chaos.record import Row, Rows

GROUP = "Temporal crash"


async def crash_temporal_during_batch(
    tmp_path: Path, down: float, moments: list[tuple[str, Callable[[World], bool]]]
) -> tuple[World, TemporalServer, float, object]:
    server = TemporalServer(tmp_path / "temporal")
    await server.start()
    world = World("temporal", server, tmp_path / "world", control=STANDARD_CONTROL)
    world.script_standard()
    world.sim.set_repo_delay(2.0)
    world.sim.bodhi_app.stable_after = 3.0
    started = time.monotonic()
    try:
        await world.start_worker_ready()
        handle = await world.start_batch(STANDARD_PACKAGES)
        for what, reached in moments:
            await until(lambda r=reached: r(world), 120, what)  # type: ignore[misc]
            server.kill()
            await asyncio.sleep(down)
            await server.start()
        result = await world.result(handle, 300 + down)
    except BaseException:
        await asyncio.to_thread(world.close)
        server.stop()
        raise
    return world, server, time.monotonic() - started, result


def _called(method: str, text: str = "", n: int = 1) -> Callable[[World], bool]:
    def reached(world: World) -> bool:
        calls = [c for c in world.sim.calls if c.method == method
                 and (not text or any(text in str(a) for a in c.args + list(c.kwargs.values())))]
        return len(calls) >= n

    return reached


MOMENTS = [
    ("the repo wait", _called("repo.request")),
    ("attempt 1's builds", _called("build", "bash")),
    ("the stable wait", _called("listTagged", "bash")),
]


async def check(chaos: Rows, scenario: str, tmp_path: Path, down: float) -> None:
    world, server, seconds, result = await crash_temporal_during_batch(tmp_path, down, MOMENTS)
    try:
        out = world.outcome(STANDARD_PACKAGES, result)  # type: ignore[arg-type]
        ok = out.clean and out.packages == STANDARD_EXPECTED
        chaos.add(Row(
            scenario, GROUP, injected=server.kills,
            injected_detail=f"SIGKILL of the dev server, {down:.0f} s down, restart "
            "(repo wait, builds running, stable wait)",
            duplicates=out.duplicates, losses=len(out.lost_packages),
            leaked_side_tags=len(out.leaked_side_tags), seconds=round(seconds, 1), ok=ok,
            notes="workers live through it",
        ))
        assert out.packages == STANDARD_EXPECTED, world.worker_logs()
        assert out.clean, out.problems()
        assert all(w.alive() for w in world.workers), "a worker died with Temporal"
        assert len(world.workers) == 1
    finally:
        await asyncio.to_thread(world.close)
        server.stop()


async def test_temporal_killed_and_restarted_mid_batch(tmp_path: Path, chaos: Rows) -> None:
    await check(chaos, "Temporal dev server SIGKILLed 3 times mid-batch", tmp_path, down=2.0)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_temporal_down_for_a_minute_three_times(tmp_path: Path, chaos: Rows) -> None:
    await check(chaos, "Temporal dev server down for a minute, 3 times mid-batch", tmp_path,
                down=60.0)
