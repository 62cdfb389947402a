"""The periodic maintenance workflows that ebs's Temporal Schedules start
(see ebs.schedules): SideTagSweep and ConfigRefresh.

SideTagSweep removes the side tags ebs leaked (a crash between createSideTag
and recording it, a removal that failed for good) once they are older than
timers.sidetag_grace and no running batch holds them; the rules are in
ebs.activities.sweep. Its result, a SweepReport, says what went and why the
rest stayed. Start one by hand with
``temporal workflow start --type SideTagSweep --task-queue ebs --input '{"dry_run": true}'``.

ConfigRefresh makes every live worker process re-read the configuration now,
reports each one's version (or why its refresh failed, the previous config being
kept), then re-applies the timers.* intervals to the schedules.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ebs.activities.presets import SETTINGS_READ, SWEEP_CALL, WORKER_REFRESH
    from ebs.activities.sweep import SweepActivities
    from ebs.contracts.names import CONFIG_REFRESH_WORKFLOW, SWEEP_WORKFLOW
    from ebs.contracts.refresh import ConfigRefreshReport, ConfigRefreshRequest, WorkerRefresh
    from ebs.contracts.sweep import SweepPlan, SweepReport, SweepRequest
    from ebs.schedules import RefreshActivity, ScheduleActivities
    from ebs.workflows.attempt import failure_text



@workflow.defn(name=SWEEP_WORKFLOW)
class SideTagSweep:
    @workflow.run
    async def run(self, req: SweepRequest) -> SweepReport:
        grace = req.grace
        if grace <= 0:
            grace = await workflow.execute_activity_method(
                SweepActivities.sweep_grace, **SETTINGS_READ
            )
        report = SweepReport(grace=grace, dry_run=req.dry_run)
        try:
            keep = await workflow.execute_activity_method(
                SweepActivities.running_batch_side_tags, req.collector_workflow_id,
                **SWEEP_CALL,
            )
        except ActivityError as err:
            report.error = (
                "cannot tell which side tags the running batches hold, so nothing was "
                f"removed: {failure_text(err)[0]}"
            )
            workflow.logger.error("side-tag sweep: %s", report.error)
            return report
        report.running_batches = list(keep.batch_ids)
        report.running_batches_from = list(keep.sources)
        try:
            swept = await workflow.execute_activity_method(
                SweepActivities.sweep_side_tags, SweepPlan(grace, keep, req.dry_run),
                **SWEEP_CALL,
            )
        except ActivityError as err:
            report.error = f"the sweep failed: {failure_text(err)[0]}"
            workflow.logger.error("side-tag sweep: %s", report.error)
            return report
        report.cutoff = swept.cutoff
        report.removed, report.kept, report.failed = swept.removed, swept.kept, swept.failed
        workflow.logger.info(
            "side-tag sweep%s: %s %d (%s), kept %d, failed %d; running batches: %s",
            " (dry run)" if req.dry_run else "",
            "would remove" if req.dry_run else "removed",
            len(report.removed), ", ".join(report.removed) or "none",
            len(report.kept), len(report.failed), ", ".join(report.running_batches) or "none",
        )
        return report


@workflow.defn(name=CONFIG_REFRESH_WORKFLOW)
class ConfigRefresh:
    @workflow.run
    async def run(self, req: ConfigRefreshRequest) -> ConfigRefreshReport:
        report = ConfigRefreshReport()
        queues = await workflow.execute_activity_method(
            ScheduleActivities.config_refresh_queues, **SETTINGS_READ
        )
        answers = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    RefreshActivity.refresh_config, task_queue=queue, **WORKER_REFRESH
                )
                for queue in queues
            ),
            return_exceptions=True,
        )
        for queue, answer in zip(queues, answers, strict=True):
            if isinstance(answer, WorkerRefresh):
                report.workers.append(answer)
            elif isinstance(answer, ActivityError):
                report.unreachable.append(queue)
            elif isinstance(answer, BaseException):
                raise answer
        if req.sync_schedules:
            report.schedules = await workflow.execute_activity_method(
                ScheduleActivities.sync_schedules, **SETTINGS_READ
            )
        return report
