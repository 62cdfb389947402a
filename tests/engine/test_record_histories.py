"""Records the workflow histories that tests/engine/test_replay.py replays.

Re-record (after an intended, compatible change, or to add a scenario):

    EBS_RECORD_HISTORIES=1 .venv/bin/pytest tests/engine/test_record_histories.py

Never re-record to make a failing replay pass: a replay failure means running
workflows would break; use workflow.patched() for the change instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ebs.contracts.batch import BatchRequest
from ebs.contracts.collector import CollectorState
from ebs.contracts.events import EnqueueRequest, TagBatch, TagEvent
from ebs.devstack.waiting import eventually
from ebs.workflows.collector import BatchCollector
from tests.engine.test_engine_collector import (
    TAGGED_DURING_A_BATCH,
    batch_result,
    finish_current_batch,
    tags_during_a_batch,
    until,
)
from tests.helpers.engine import Engine

HISTORIES = Path(__file__).parent.parent / "histories"

pytestmark = pytest.mark.skipif(
    not os.environ.get("EBS_RECORD_HISTORIES"), reason="set EBS_RECORD_HISTORIES=1 to record"
)


async def _save(engine: Engine, workflow_id: str, name: str) -> None:
    history = await engine.client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_record_batch_with_retry_failure_and_bodhi(engine: Engine) -> None:
    engine.configure(control={"ordering": {"^glibc$": 0}, "skip_tag": ["^coreutils$"]})
    engine.sim.set_outcomes("bash", ["FAILED", "CLOSED"])
    engine.sim.set_outcomes("python3.14", ["FAILED", "FAILED"])
    handle = await engine.start_batch(["bash", "coreutils", "glibc", "python3.14"],
                                      batch_id="ebs-batch-record-1")
    result = await handle.result()
    assert result.outcome == "partial"
    await _save(engine, handle.id, "rebuild_batch_retry_failure_bodhi")
    await _save(engine, "ebs-batch-record-1-slice1000-attempt2-chunk0",
                "build_attempt_after_failure")


async def test_record_scratch_batch_with_task_timeout(engine: Engine) -> None:
    engine.configure(koji={"scratch_build": True}, timers={"task_timeout": 3600})
    engine.sim.set_outcomes("glibc", "HANG")
    handle = await engine.start_batch(["bash", "glibc"], batch_id="ebs-batch-record-2")
    await handle.result()
    await _save(engine, handle.id, "rebuild_batch_scratch_timeout")


async def test_record_collector_two_batches_and_enqueue(engine: Engine) -> None:
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await handle.signal(BatchCollector.pause)
    await handle.signal(BatchCollector.resume)
    await engine.env.sleep(61)
    await finish_current_batch(engine, handle)
    await handle.execute_update(BatchCollector.enqueue, EnqueueRequest(["coreutils"]))
    await engine.env.sleep(61)
    await finish_current_batch(engine, handle)
    await until(handle, lambda s: len(s.recent_batches) == 2)
    await _save(engine, handle.id, "batch_collector_two_batches")


async def test_record_cancelled_batch(engine: Engine) -> None:
    from ebs.workflows.batch import RebuildBatch

    engine.sim.set_outcomes("glibc", "HANG")
    handle = await engine.start_batch(["glibc"], batch_id="ebs-batch-record-3")

    async def task_ids() -> list[int]:
        ids = (await handle.query(RebuildBatch.status)).packages[0].task_ids
        if not ids:
            await engine.env.sleep(5)  # skip time: the batch's timers fire
        return ids

    await eventually(task_ids, 60, "glibc's build task")
    await handle.cancel()
    with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError, cancelled
        await handle.result()
    await _save(engine, handle.id, "rebuild_batch_cancelled")
    await _save(engine, "ebs-batch-record-3-slice1000-attempt1-chunk0",
                "build_attempt_cancelled")


async def test_record_collector_continue_as_new(engine: Engine) -> None:
    handle = await engine.start_collector(CollectorState(history_limit=40))
    for i in range(30):
        await handle.signal(BatchCollector.tag,
                            TagEvent(f"pkg{i}", f"pkg{i}-1-1.fc45", event_id=f"ev-{i}"))
    current = engine.client.get_workflow_handle(handle.id)

    async def continued() -> bool:
        return (await current.describe()).run_id != handle.first_execution_run_id

    await eventually(continued, 60, "the collector to continue as new", interval=0.02)
    history = await engine.client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id).fetch_history()
    (HISTORIES / "batch_collector_continue_as_new.json").write_text(history.to_json())


async def test_record_batch_resolving_the_trigger_tag(engine: Engine) -> None:
    """Issue 18: the message's bash build is not Koji's latest; sed was untagged."""
    from ebs.workflows.batch import RebuildBatch

    tag = engine.sim.layout.trigger_tag
    session = engine.sim.session()
    message = engine.tag_event("bash")
    older = engine.sim.add_rawhide_build("bash", "5.2.36", "1")  # tagged last: Koji's latest
    assert session.getLatestBuilds(tag, package="bash")[0]["nvr"] == older.nvr
    sed = engine.tag_event("sed")
    session.untagBuild(tag, sed.nvr)
    handle = await engine.client.start_workflow(
        RebuildBatch.run,
        BatchRequest("ebs-batch-record-4", [message, sed], engine.settings()),
        id="ebs-batch-record-4",
        task_queue=engine.task_queue,
    )
    result = await handle.result()
    states = {p.component: (p.state, p.rawhide_nvr) for p in result.packages}
    assert states == {"bash": ("stable", older.nvr), "sed": ("dropped", sed.nvr)}
    await _save(engine, handle.id, "rebuild_batch_resolve_trigger_tag")


async def test_record_collector_with_queue_holders(engine: Engine) -> None:
    from ebs.workflows.queue import holder_id, partition_of

    engine.configure(control={"max_batch_packages": 2})
    handle = await engine.start_collector(CollectorState(hold_after=1))
    for name in ("bash", "coreutils", "glibc"):
        await handle.signal(BatchCollector.tag, engine.tag_event(name))
    await until(handle, lambda s: s.held >= 2)
    await engine.env.sleep(61)
    await finish_current_batch(engine, handle)
    await finish_current_batch(engine, handle)
    await until(handle, lambda s: len(s.recent_batches) == 2 and not s.current_batch_id)
    await _save(engine, handle.id, "batch_collector_queue_holders")
    await _save(engine, holder_id(handle.id, partition_of("bash")), "collector_queue_holder")


async def test_record_collector_with_grouped_tags(engine: Engine) -> None:
    """The bridge's grouped `tags` signals, and a hand-over in parts (over
    HAND_OVER_MAX queued at once: patch collector-hand-over-parts)."""
    engine.configure(control={"max_batch_packages": 5000})
    handle = await engine.start_collector(CollectorState(hold_after=1))
    await handle.signal(BatchCollector.pause)
    names = [f"grouped-component-{i:04d}" for i in range(1100)]
    for part in (names[:550], names[550:]):
        await handle.signal(BatchCollector.tags, TagBatch([engine.tag_event(n) for n in part]))
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await until(handle, lambda s: s.held == 1101, 60)
    await handle.signal(BatchCollector.resume)
    await engine.env.sleep(61)
    result = await finish_current_batch(engine, handle)
    assert len(result.packages) == 1101
    await until(handle, lambda s: len(s.recent_batches) == 1 and not s.current_batch_id)
    await _save(engine, handle.id, "batch_collector_grouped_tags")


async def test_record_collector_handing_over_whole_parts(engine: Engine) -> None:
    """Patch collector-hand-over-whole-parts: while tags stream in, a hand-over
    waits for `hand_over_at` queued; the batch takes from the holders."""
    engine.configure(control={"max_batch_packages": 50})
    handle = await engine.start_collector(CollectorState(hold_after=2, hand_over_at=6))
    await handle.signal(BatchCollector.pause)
    names = [f"part-component-{i:02d}" for i in range(20)]
    for n in range(0, len(names), 4):
        await handle.signal(BatchCollector.tags,
                            TagBatch([engine.tag_event(c) for c in names[n : n + 4]]))
    await until(handle, lambda s: s.queue_length == 20 and s.held >= 14, 60)
    await handle.signal(BatchCollector.resume)
    await engine.env.sleep(61)
    st = await until(handle, lambda s: len(s.recent_batches) == 1 and not s.current_batch_id)
    result = await batch_result(engine, st.recent_batches[0].batch_id)
    assert sorted(p.component for p in result.packages) == names
    await _save(engine, handle.id, "batch_collector_whole_parts")


async def test_record_collector_handing_over_between_batches(engine: Engine) -> None:
    """Patch collector-hand-over-between-batches: tags that come during a
    batch stay with the collector until it ends, then go to the holders."""
    handle = await tags_during_a_batch(engine)
    await engine.env.sleep(61)
    second = await finish_current_batch(engine, handle)
    assert sorted(p.component for p in second.packages) == TAGGED_DURING_A_BATCH
    await until(handle, lambda s: len(s.recent_batches) == 2 and not s.current_batch_id)
    await _save(engine, handle.id, "batch_collector_between_batches")


async def test_record_large_batch_with_package_index(engine: Engine) -> None:
    from ebs.workflows.batch import RebuildBatch

    names = ["bash", *(f"indexed-component-{i:03d}" for i in range(200))]
    events = [engine.tag_event(n) for n in names]
    handle = await engine.client.start_workflow(
        RebuildBatch.run, BatchRequest("ebs-batch-record-4", events, engine.settings()),
        id="ebs-batch-record-4", task_queue=engine.task_queue)
    await handle.result()
    await _save(engine, handle.id, "rebuild_batch_with_package_index")


async def test_record_batch_with_an_existing_rebuild(engine: Engine) -> None:
    """issue 17 #6 (patch existing-rebuilds-not-resubmitted): hello's rebuild
    exists already and is released as it is; bash is built."""
    engine.sim.add_rawhide_build("hello", "2.12.1", "1")
    engine.sim.world.add_rawhide_build("hello", "2.12.1", "1.eln150",
                                       tag="eln-updates-candidate", notify=False)
    handle = await engine.start_batch(["hello", "bash"], batch_id="ebs-batch-existing")
    result = await handle.result()
    assert {p.component: p.existing_build for p in result.packages} == \
        {"hello": True, "bash": False}
    await _save(engine, "ebs-batch-existing", "rebuild_batch_existing_rebuild")


async def test_record_batch_skipping_a_denylisted_url(engine: Engine) -> None:
    from ebs.contracts.ledger import LEDGER_WORKFLOW_ID

    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    first = await engine.start_batch(["bash", "glibc"], batch_id="ebs-batch-record-deny-1")
    await first.result()
    second = await engine.start_batch(["glibc", "coreutils"],
                                      batch_id="ebs-batch-record-deny-2")
    result = await second.result()
    assert {p.component: p.state for p in result.packages}["glibc"] == "skipped"
    await _save(engine, first.id, "rebuild_batch_denylisting")
    await _save(engine, second.id, "rebuild_batch_denylisted_skip")
    await _save(engine, LEDGER_WORKFLOW_ID, "component_ledger_denylist")
