"""RebuildBatch scenarios on the time-skipping server against the simulator."""

from __future__ import annotations

from tests.helpers.engine import Engine


async def test_first_attempt_success_files_one_update(engine: Engine) -> None:
    result = await engine.run_batch(["bash", "coreutils"])
    states = {p.component: p.state for p in result.packages}
    assert states == {"bash": "stable", "coreutils": "stable"}, result
    assert result.outcome == "succeeded"
    assert len(result.updates) == 1
    bash = next(p for p in result.packages if p.component == "bash")
    assert bash.attempts == 1 and len(bash.task_ids) == 1
    assert ".eln" in bash.nvr and "draft" not in bash.nvr
    # the build side tag and the errata side tag are gone
    created = engine.sim.side_tags_created
    assert len(created) == 2 and sorted(engine.sim.side_tags_removed) == sorted(created)
