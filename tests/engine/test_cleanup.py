"""Issue 14, safety net: the original's 12-hourly cleanup as a Temporal
Schedule (PeriodicCleanup), on the time-skipping server against the simulator."""

from __future__ import annotations

import uuid

from ebs.config.model import Timers
from ebs.contracts.cleanup import CleanupReport, CleanupRequest
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.ledger import (
    LEDGER_WORKFLOW,
    LEDGER_WORKFLOW_ID,
    SIGNAL_LEDGER_RECORD,
    ComponentRecord,
    LedgerBatch,
    LedgerPackage,
    LedgerState,
)
from ebs.schedules import cleanup_schedule_id, periodic_jobs
from ebs.workflows.cleanup import PeriodicCleanup
from ebs.workflows.collector import BatchCollector
from tests.helpers.engine import Engine


def eln_nvr(engine: Engine, name: str) -> str:
    return engine.sim.session().getLatestBuilds("eln", package=name)[0]["nvr"]


def rawhide_nvr(engine: Engine, name: str) -> str:
    return engine.sim.session().getLatestBuilds(engine.sim.layout.trigger_tag, package=name)[0][
        "nvr"
    ]


async def run_cleanup(engine: Engine, collector_id: str, **kw: bool) -> CleanupReport:
    return await engine.client.execute_workflow(
        PeriodicCleanup.run,
        CleanupRequest(collector_workflow_id=collector_id, **kw),
        id=f"cleanup-{uuid.uuid4().hex[:8]}",
        task_queue=engine.task_queue,
    )


async def test_cleanup_queues_listed_components_missing_from_the_stable_tag(
    engine: Engine,
) -> None:
    for name in ("bash", "glibc"):
        engine.sim.world.untag_build_now("eln", eln_nvr(engine, name))
    # glibc's latest Rawhide build failed for good before: denylisted.
    await engine.client.start_workflow(
        LEDGER_WORKFLOW, LedgerState(), id=LEDGER_WORKFLOW_ID, task_queue=engine.task_queue,
        start_signal=SIGNAL_LEDGER_RECORD,
        start_signal_args=[LedgerBatch("ebs-batch-old", "2026-01-01T00:00:00", [LedgerPackage(
            ComponentRecord("glibc", "ebs-batch-old", "failed", "build failed",
                            rawhide_nvr(engine, "glibc")),
            scm_url="git+https://src.fedoraproject.org/rpms/glibc.git#0ld",
            failed_for_good=True, keep_record=False,
        )])],
    )
    collector = await engine.start_collector()
    report = await run_cleanup(engine, collector.id)
    assert report.queued == ["bash"]
    assert [s.component for s in report.skipped] == ["glibc"]
    assert "denylisted" in report.skipped[0].reason
    assert report.desired == len(engine.sim.layout.packages) and report.in_stable_tag == 38
    status = await collector.query(BatchCollector.status)
    assert isinstance(status, CollectorStatus)
    assert [(e.component, e.source) for e in status.queued] == [("bash", "cleanup")]
    assert not report.to_untag and not report.untagged  # untagging is off by default


async def test_cleanup_does_nothing_while_paused(engine: Engine) -> None:
    engine.sim.world.untag_build_now("eln", eln_nvr(engine, "bash"))
    collector = await engine.start_collector()
    await collector.signal(BatchCollector.pause)
    report = await run_cleanup(engine, collector.id)
    assert report.paused and report.queued == []
    status = await collector.query(BatchCollector.status)
    assert status.queued == []


async def test_untagging_removes_all_but_the_latest_build_of_each_component(
    engine: Engine,
) -> None:
    older = eln_nvr(engine, "bash")
    newer = rawhide_nvr(engine, "bash")
    engine.sim.world.tag_build_now("eln", newer)
    assert eln_nvr(engine, "bash") == newer
    collector = await engine.start_collector()
    dry = await run_cleanup(engine, collector.id, dry_run=True)
    assert dry.to_untag == [] and dry.untagged == []  # --untagging is off
    report = await run_cleanup(engine, collector.id, untagging=True)
    assert report.to_untag == [older] and report.untagged == [older]
    tagged = {b["nvr"] for b in engine.sim.session().listTagged("eln", package="bash")}
    assert tagged == {newer}


def test_the_cleanup_is_a_schedule_every_12_hours_untagging_off_by_default() -> None:
    jobs = {j.schedule_id: j for j in periodic_jobs("ebs", Timers())}
    job = jobs[cleanup_schedule_id("ebs")]
    assert job.workflow == "PeriodicCleanup" and job.every.total_seconds() == 12 * 3600
    assert job.arg == CleanupRequest()
    on = {j.schedule_id: j for j in periodic_jobs("ebs", Timers(), untagging=True)}
    assert on["ebs-cleanup"].arg == CleanupRequest(untagging=True)
