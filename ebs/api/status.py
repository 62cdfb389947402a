"""The read models: status and history, put together from workflow queries and
Temporal visibility (the collector's `status` query, the current batch's
`status` query, and the RebuildBatch executions with their search attributes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime

from ebs.api.components import read_denied
from ebs.api.control import BatchExecution, Control, TemporalUnavailable
from ebs.api.links import Links
from ebs.api.models import (
    BatchOverview,
    BodhiUpdate,
    CollectorView,
    CurrentBatch,
    DeniedEntry,
    HistoryEntry,
    HistoryResponse,
    KojiTask,
    PackageStatus,
    QueuedComponent,
    SliceStatus,
    StatusResponse,
)
from ebs.contracts.batch import (
    BUILT_STATES,
    BatchResult,
    BatchSummary,
    PackageResult,
    PackageState,
)
from ebs.contracts.events import TagEvent
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID
from ebs.contracts.search import PACKAGES_KEY

FINAL_STATES = {PackageState.SUCCEEDED.value, PackageState.FAILED.value,
                PackageState.STABLE.value, PackageState.DROPPED.value,
                PackageState.SKIPPED.value}


log = logging.getLogger(__name__)


def _when(value: str | float | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def queued_component(e: TagEvent) -> QueuedComponent:
    return QueuedComponent(
        component=e.component,
        nvr=e.nvr,
        build_id=e.build_id,
        source=e.source,
        requested_by=e.requested_by,
        tagged_at=_when(e.tagged_at),
    )


def package_status(p: PackageResult, links: Links) -> PackageStatus:
    urls = p.task_urls if len(p.task_urls) == len(p.task_ids) else []
    tasks = [
        KojiTask(task_id=tid, url=(urls[i] if urls else "") or links.koji_task(tid))
        for i, tid in enumerate(p.task_ids)
    ]
    update = None
    if p.update_alias or p.update_url:
        update = BodhiUpdate(
            alias=p.update_alias or p.update_url.rstrip("/").rsplit("/", 1)[-1],
            url=p.update_url or links.bodhi_update(p.update_alias),
        )
    return PackageStatus(
        component=p.component,
        state=p.state,
        attempt=p.attempts,
        ordering=p.ordering,
        rawhide_nvr=p.rawhide_nvr,
        message_nvr=p.message_nvr,
        message_build_id=p.message_build_id,
        nvr=p.nvr,
        skip_tag=p.skip_tag,
        koji_tasks=tasks,
        bodhi_update=update,
        reason=p.reason,
    )


def _slice_state(states: list[str]) -> str:
    if all(s in FINAL_STATES for s in states):
        return "done"
    if all(s == PackageState.PENDING.value for s in states):
        return "pending"
    return "building"


def slices(packages: list[PackageStatus]) -> list[SliceStatus]:
    by_ordering: dict[int, list[PackageStatus]] = {}
    for p in packages:
        by_ordering.setdefault(p.ordering, []).append(p)
    out = []
    for ordering in sorted(by_ordering):
        pkgs = sorted(by_ordering[ordering], key=lambda p: p.component)
        states = [p.state for p in pkgs]
        out.append(
            SliceStatus(
                ordering=ordering,
                state=_slice_state(states),
                counts=dict(sorted(Counter(states).items())),
                packages=pkgs,
            )
        )
    return out


def _updates(
    result: BatchResult, packages: list[PackageStatus], links: Links
) -> list[BodhiUpdate]:
    known = {p.bodhi_update.alias: p.bodhi_update for p in packages if p.bodhi_update}
    return [known.get(alias) or BodhiUpdate(alias=alias, url=links.bodhi_update(alias))
            for alias in result.updates]


def current_batch(
    batch_id: str, names: list[str], result: BatchResult | None, links: Links
) -> CurrentBatch:
    if result is None:
        return CurrentBatch(
            batch_id=batch_id,
            temporal_url=links.workflow(batch_id),
            packages=len(names),
            answered=False,
        )
    packages = [package_status(p, links) for p in result.packages]
    return CurrentBatch(
        batch_id=batch_id,
        phase=result.outcome,
        started_at=_when(result.started_at),
        temporal_url=links.workflow(batch_id),
        packages=len(packages),
        counts=dict(sorted(Counter(p.state for p in packages).items())),
        side_tags=result.side_tags,
        errata_tags=result.errata_tags,
        updates=_updates(result, packages, links),
        error=result.error,
        slices=slices(packages),
        config_version=result.config_version,
    )


def batch_overview(
    exe: BatchExecution | None, summary: BatchSummary | None, links: Links
) -> BatchOverview:
    """One past or running batch, from visibility and/or the collector's summary."""
    if exe is None:
        assert summary is not None
        return BatchOverview(
            batch_id=summary.batch_id,
            status="completed" if summary.finished_at else "unknown",
            outcome=summary.outcome,
            started_at=_when(summary.started_at),
            finished_at=_when(summary.finished_at),
            packages=summary.packages,
            succeeded=summary.succeeded,
            failed=summary.failed,
            failed_components=summary.failed_components,
            temporal_url=links.workflow(summary.batch_id),
            config_version=summary.config_version,
        )
    overview = BatchOverview(
        batch_id=exe.batch_id,
        status=exe.status,
        outcome=exe.outcome if exe.status != "running" else "",
        phase=exe.phase,
        started_at=exe.start_time,
        finished_at=exe.close_time,
        packages=len(exe.packages),
        temporal_url=links.workflow(exe.batch_id, exe.run_id),
        config_version=exe.config_version,
    )
    if not overview.outcome and exe.status in ("failed", "terminated", "timed_out"):
        overview.outcome = "error"
    elif not overview.outcome and exe.status == "cancelled":
        overview.outcome = "cancelled"
    if summary is not None:
        overview.outcome = overview.outcome or summary.outcome
        overview.packages = overview.packages or summary.packages
        overview.succeeded = summary.succeeded
        overview.failed = summary.failed
        overview.failed_components = summary.failed_components
        overview.config_version = overview.config_version or summary.config_version
    return overview


def _sort_key(b: BatchOverview) -> tuple[int, float]:
    started = b.started_at.timestamp() if b.started_at else 0.0
    return (1 if b.status == "running" else 0, started)


async def build_status(control: Control, links: Links, recent: int = 10) -> StatusResponse:
    """Everything /status.json, /status.html and `ebs status` show."""
    collector, executions, denied = await asyncio.gather(
        control.collector_info(), control.recent_batches(recent), _denylist(control)
    )
    state = collector.state
    view = CollectorView(
        exists=collector.exists,
        status=collector.status,
        answered=state is not None,
        temporal_url=links.workflow(COLLECTOR_WORKFLOW_ID) if collector.exists else "",
    )
    current = None
    summaries: dict[str, BatchSummary] = {}
    if state is not None:
        view.paused = state.paused
        view.paused_by_config = state.paused_by_config
        view.config_version = state.config_version
        view.lull_deadline = _when(state.lull_deadline)
        view.queue_length = max(state.queue_length, len(state.queued))
        view.queued = [queued_component(e) for e in state.queued]
        summaries = {s.batch_id: s for s in state.recent_batches}
        if state.current_batch_id:
            snapshot = await control.batch_status(state.current_batch_id)
            current = current_batch(
                state.current_batch_id, state.current_batch_packages, snapshot, links
            )
    seen = {e.batch_id for e in executions}
    overviews = [batch_overview(e, summaries.get(e.batch_id), links) for e in executions]
    overviews += [batch_overview(None, s, links) for bid, s in summaries.items() if bid not in seen]
    overviews.sort(key=_sort_key, reverse=True)
    if current is not None:
        for o in overviews:
            if o.batch_id == current.batch_id:
                o.phase = current.phase or o.phase
                o.failed = current.counts.get(PackageState.FAILED.value, 0)
                o.succeeded = sum(current.counts.get(s, 0) for s in BUILT_STATES)
    return StatusResponse(
        generated_at=datetime.now(UTC),
        collector=view,
        current_batch=current,
        recent_batches=overviews[:recent],
        temporal_ui_url=links.temporal_ui_url,
        denylist=denied,
    )


async def _denylist(control: Control) -> list[DeniedEntry]:
    try:
        return [DeniedEntry(**vars(d)) for d in await read_denied(control.client)]
    except TemporalUnavailable as err:  # the rest of the page still answers
        log.warning("status: %s", err)
        return []


async def build_history(
    control: Control, links: Links, component: str, limit: int = 20
) -> HistoryResponse:
    runs = await control.history(component, limit)
    entries = []
    for run in runs:
        overview = batch_overview(run.batch, None, links)
        result = run.batch_result
        if result is not None and not run.batch.running:
            overview.outcome = overview.outcome or result.outcome
            overview.failed = sum(p.state == PackageState.FAILED.value for p in result.packages)
            overview.succeeded = sum(p.state in BUILT_STATES for p in result.packages)
            overview.failed_components = [
                p.component for p in result.packages if p.state == PackageState.FAILED.value
            ]
        elif result is not None:
            overview.phase = result.outcome or overview.phase
        entries.append(
            HistoryEntry(
                batch=overview,
                package=package_status(run.package, links) if run.package else None,
                error=run.error,
            )
        )
    return HistoryResponse(
        component=component,
        batches=entries,
        temporal_search_url=links.workflow_search(
            # a large batch's later names are on its PackageIndex children
            f"WorkflowType IN ('RebuildBatch', 'PackageIndex') "
            f"AND {PACKAGES_KEY.name} = '{component}'"
        ),
    )
