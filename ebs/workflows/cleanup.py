"""PeriodicCleanup: the original ELNBuildSync's 12-hourly cleanup.py, started
by the ``<task queue>-cleanup`` schedule (ebs.schedules).

1. Nothing while batching is paused (the original returns at once too).
2. Every listed ELN component without a build in the stable tag (new in the
   package lists, or missed) is queued, through the collector's enqueue update,
   which picks the build as a manual rebuild does; a component whose latest
   Rawhide build already failed for good (denylisted) is skipped, with why.
3. With ``untagging`` (the original's ``--untagging``, off by default): every
   build in the stable tag but the latest of each listed component is untagged.

The report (the workflow result, in the Web UI) says what was queued, skipped,
rejected and untagged. Run it now with ``temporal schedule trigger
--schedule-id ebs-cleanup``, or a dry run with ``temporal workflow start --type
PeriodicCleanup --task-queue ebs --input '{"dry_run": true}'``.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ebs.activities.cleanup import CleanupActivities
    from ebs.activities.presets import KOJI_CALL, RESOLVE_CALL, SETTINGS_READ
    from ebs.contracts.cleanup import (
        CLEANUP_WORKFLOW,
        CleanupEnqueue,
        CleanupFacts,
        CleanupReport,
        CleanupRequest,
        Skipped,
        UntagRequest,
    )
    from ebs.workflows.attempt import failure_text

ENQUEUE_CHUNK = 1000  # components per enqueue update


def nvrs_to_untag(facts: CleanupFacts) -> list[str]:
    """As the original: all NVRs in the stable tag minus the latest of each
    listed component (so every build of a component no longer listed goes)."""
    keep = {nvr for name, nvr in facts.latest_tagged.items() if name in facts.desired}
    return sorted(set(facts.all_tagged) - keep)


def to_queue(facts: CleanupFacts) -> tuple[list[str], list[Skipped]]:
    """Listed components missing from the stable tag, minus those whose latest
    Rawhide build is denylisted."""
    queue: list[str] = []
    skipped: list[Skipped] = []
    for name in sorted(n for n in facts.desired if n not in facts.latest_tagged):
        upstream = facts.desired[name]
        nvr = facts.rawhide_latest.get(upstream, "")
        if nvr and nvr in facts.denied_nvrs.get(upstream, []):
            skipped.append(Skipped(name, f"{nvr} failed for good (denylisted)"))
        else:
            queue.append(name)
    return queue, skipped


@workflow.defn(name=CLEANUP_WORKFLOW)
class PeriodicCleanup:
    @workflow.run
    async def run(self, req: CleanupRequest) -> CleanupReport:
        report = CleanupReport(untagging=req.untagging, dry_run=req.dry_run)
        pause = await workflow.execute_activity_method(
            CleanupActivities.collector_pause, req.collector_workflow_id, **SETTINGS_READ
        )
        if pause.paused:
            report.paused = True
            workflow.logger.info("cleanup skipped: batching is %s", pause.why)
            return report
        if not pause.collector_running:
            report.error = "the BatchCollector is not running: nothing can be queued"
            return report
        try:
            facts = await workflow.execute_activity_method(
                CleanupActivities.facts, req, **KOJI_CALL
            )
        except ActivityError as err:
            report.error = f"cannot read the package lists or Koji: {failure_text(err)[0]}"
            workflow.logger.error("cleanup: %s", report.error)
            return report
        report.desired = len(facts.desired)
        report.in_stable_tag = sum(1 for n in facts.desired if n in facts.latest_tagged)
        queue, report.skipped = to_queue(facts)
        if req.untagging:
            report.to_untag = nvrs_to_untag(facts)
        if req.dry_run:
            report.queued = queue
            return report
        for start in range(0, len(queue), ENQUEUE_CHUNK):
            result = await workflow.execute_activity_method(
                CleanupActivities.enqueue,
                CleanupEnqueue(req.collector_workflow_id, queue[start : start + ENQUEUE_CHUNK]),
                **RESOLVE_CALL,
            )
            report.queued += result.queued
            report.rejected += result.rejected
        if report.to_untag:
            untag = await workflow.execute_activity_method(
                CleanupActivities.untag, UntagRequest(facts.stable_tag, report.to_untag),
                **KOJI_CALL,
            )
            report.untagged = untag.untagged
            report.skipped += untag.failed
        workflow.logger.info(
            "cleanup: %d listed, %d in %s; queued %d, skipped %d, rejected %d, untagged %d",
            report.desired, report.in_stable_tag, facts.stable_tag, len(report.queued),
            len(report.skipped), len(report.rejected), len(report.untagged),
        )
        return report
