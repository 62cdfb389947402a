"""SideTagSweep on the time-skipping server against the simulator: only ebs's
own side tags, older than the grace period, that no running batch holds and no
open Bodhi update needs, are removed."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import WorkflowHandle

from ebs.activities.sweep import batch_of_key, running_batches_query
from ebs.contracts.batch import BatchResult
from ebs.contracts.koji import SideTagRequest
from ebs.contracts.names import QUERY_STATUS
from ebs.contracts.sweep import SweepReport, SweepRequest
from ebs.devstack.waiting import eventually
from ebs.simulator import Simulator
from ebs.workflows.collector import BatchCollector
from ebs.workflows.sweep import SideTagSweep
from tests.helpers.engine import Engine

HOUR = 3600.0


def age_koji(sim: Simulator, seconds: float) -> None:
    """Move everything the simulated Koji has done so far `seconds` into the past
    (its event timestamps are wall-clock ones, the sweep compares with its clock)."""
    w = sim.world
    with w.lock:
        for event in w.event_ts:
            w.event_ts[event] -= seconds


def exists(sim: Simulator, tag: str) -> bool:
    return sim.koji_view().tag_exists(tag)


def foreign_side_tag(sim: Simulator, base_tag: str, user: str = "someone-else") -> str:
    """A side tag of another Koji user (as `fedpkg request-side-tag` would make)."""
    w = sim.world
    with w.lock:
        return w.create_side_tag(w.add_user(user), w.get_tag(base_tag, strict=True)).name


async def sweep(engine: Engine, collector: WorkflowHandle[Any, Any] | None = None,
                **fields: Any) -> SweepReport:
    req = SweepRequest(collector_workflow_id=collector.id if collector else "", **fields)
    return await engine.client.execute_workflow(
        SideTagSweep.run, req, id=f"sweep-{uuid.uuid4().hex[:8]}", task_queue=engine.task_queue,
    )


def kept(report: SweepReport) -> dict[str, str]:
    return {note.name: note.reason for note in report.kept}


async def start_waiting_batch(engine: Engine, component: str
                              ) -> tuple[WorkflowHandle[Any, Any], str]:
    """A batch started by the collector, stopped in waiting-for-stable
    (Bodhi never pushes), stepping the test server's clock by hand."""
    collector = await engine.start_collector()
    await collector.signal(BatchCollector.tag, engine.tag_event(component))

    async def waiting_batch() -> str:
        await engine.env.sleep(30)
        batch_id = (await collector.query(BatchCollector.status)).current_batch_id
        if not batch_id:
            return ""
        status = await engine.client.get_workflow_handle(batch_id).query(
            QUERY_STATUS, result_type=BatchResult
        )
        return batch_id if status.outcome == "waiting-for-stable" else ""

    return collector, await eventually(waiting_batch, 30, "a batch waiting for stable",
                                       interval=0)


async def test_sweep_removes_only_stale_leaked_side_tags_of_ebs(engine: Engine) -> None:
    sim = engine.sim
    sim.bodhi_app.stable_after = None  # updates stay in testing
    build_tag = engine.koji.get_build_target("eln").build_tag

    # A batch that gave up waiting for stable: its errata tag stays with its update.
    engine.configure(bodhi={"warn_timeout": 60, "stable_timeout": 2 * HOUR})
    gave_up = await engine.run_batch(["coreutils"])
    (abandoned_errata,) = gave_up.errata_tags

    # A batch still running, holding a build side tag and an errata side tag.
    engine.configure(
        timers={"stable_poll": 6 * HOUR, "task_poll": 30, "repo_poll": 30},
        bodhi={"warn_timeout": 30 * 24 * 60, "stable_timeout": 60 * 24 * HOUR},
    )
    collector, live = await start_waiting_batch(engine, "bash")
    live_status = await engine.client.get_workflow_handle(live).query(
        QUERY_STATUS, result_type=BatchResult
    )
    (live_build,), (live_errata,) = live_status.side_tags, live_status.errata_tags

    # Leaks: made for a batch long gone, made without a key, and one made for the
    # live batch that it has not recorded yet; and someone else's side tag.
    leaked = engine.koji.create_side_tag(
        SideTagRequest(build_tag, key="ebs-batch-20200101-000000-1:build:1")
    ).name
    unrecorded = engine.koji.create_side_tag(SideTagRequest(build_tag, f"{live}:build:2")).name
    # (made last: an empty keyless tag is what create_side_tag adopts)
    keyless = sim.session().createSideTag(build_tag)["name"]
    foreign = foreign_side_tag(sim, build_tag)

    # Everything is younger than the 48 h grace period: nothing goes.
    young = await sweep(engine, collector)
    assert young.error == "" and young.removed == [] and young.failed == []
    assert young.grace == 48 * HOUR
    assert kept(young)[leaked] == kept(young)[keyless] == "younger than the grace period"
    assert young.running_batches == [live]
    assert young.running_batches_from == [
        "visibility: not available on this server", f"collector {collector.id}: batch {live}",
    ]

    age_koji(sim, 49 * HOUR)

    dry = await sweep(engine, collector, dry_run=True)
    assert dry.dry_run and sorted(dry.removed) == sorted([leaked, keyless])
    assert all(exists(sim, tag) for tag in (leaked, keyless))

    removals_before = len(sim.calls_named("removeSideTag"))
    report = await sweep(engine, collector)
    assert report.error == "" and report.failed == []
    assert sorted(report.removed) == sorted([leaked, keyless])
    assert not exists(sim, leaked) and not exists(sim, keyless)
    reasons = kept(report)
    assert reasons[live_build] == reasons[live_errata] == "held by a running batch"
    assert reasons[unrecorded] == f"made for running batch {live}"
    assert reasons[abandoned_errata] == f"Bodhi update {gave_up.updates[0]} is pending"
    assert foreign not in reasons and exists(sim, foreign)
    assert all(exists(sim, tag) for tag in (live_build, live_errata, unrecorded,
                                            abandoned_errata))
    assert report.running_batches == [live]
    removals = sim.calls_named("removeSideTag")[removals_before:]
    assert sorted(c.args[0] for c in removals) == sorted([leaked, keyless])


async def test_errata_tag_of_an_obsolete_update_goes_and_bodhi_trouble_keeps(
    engine: Engine,
) -> None:
    sim = engine.sim
    sim.bodhi_app.stable_after = None
    engine.configure(bodhi={"warn_timeout": 60, "stable_timeout": 2 * HOUR})
    first = await engine.run_batch(["coreutils"])
    second = await engine.run_batch(["bash"])
    for update in sim.bodhi_app.updates():
        if update.alias == first.updates[0]:
            update.status = "obsolete"
    age_koji(sim, 49 * HOUR)
    # Bodhi fails once: that side tag stays, for the next sweep to look at again.
    sim.bodhi_app.add_fault("list_updates", "http_error", times=1)
    report = await sweep(engine, grace=48 * HOUR)
    (obsolete_tag,), (pending_tag,) = first.errata_tags, second.errata_tags
    reasons = kept(report)
    trouble = [tag for tag in (obsolete_tag, pending_tag) if tag in reasons
               and reasons[tag].startswith("cannot ask Bodhi about it")]
    assert len(trouble) == 1
    report = await sweep(engine, grace=48 * HOUR)
    assert report.removed == [obsolete_tag]
    assert kept(report)[pending_tag] == f"Bodhi update {second.updates[0]} is pending"


async def test_no_side_tags_and_an_explicit_grace(engine: Engine) -> None:
    report = await sweep(engine, grace=HOUR)
    assert report == SweepReport(
        cutoff=report.cutoff, grace=HOUR,
        running_batches_from=["visibility: not available on this server"],
    )
    assert report.cutoff  # ISO 8601


def test_keys_and_the_visibility_query() -> None:
    assert batch_of_key("ebs-batch-20260101-000000-3:errata:2") == "ebs-batch-20260101-000000-3"
    assert batch_of_key(None) == batch_of_key("") == ""
    assert running_batches_query("e'bs") == (
        "WorkflowType = 'RebuildBatch' AND ExecutionStatus = 'Running' AND TaskQueue = 'e\\'bs'"
    )
