"""BatchCollector: the singleton that turns tag events into batches.

Events queue up until `timers.lull` passes with no new one; then the queue
becomes one RebuildBatch child. Batches never overlap: events arriving during
a batch wait, durably, for the next one. All state lives in one
CollectorState, carried across continue-as-new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from ebs.activities.presets import RESOLVE_CALL, SETTINGS_READ
    from ebs.activities.settings import SettingsActivities
    from ebs.config.rules import ordering_for
    from ebs.contracts.batch import (
        BUILT_STATES,
        BatchOutcome,
        BatchRequest,
        BatchResult,
        BatchSettings,
        BatchSummary,
    )
    from ebs.contracts.collector import CollectorSettings, CollectorState, CollectorStatus
    from ebs.contracts.components import check_components
    from ebs.contracts.events import (
        EnqueueRequest,
        EnqueueResult,
        Rejection,
        Routing,
        SideTagsEvent,
        TagEvent,
    )
    from ebs.contracts.names import (
        QUERY_LOG_LEVEL,
        QUERY_ROUTING,
        QUERY_STATUS,
        SIGNAL_PAUSE,
        SIGNAL_RESUME,
        SIGNAL_SET_LOG_LEVEL,
        SIGNAL_SIDE_TAGS,
        SIGNAL_TAG,
        UPDATE_ENQUEUE,
    )
    from ebs.contracts.resolve import ResolveRequest
    from ebs.workflows.batch import RebuildBatch
    from ebs.workflows.rebuild_choice import ELN, choose_build

# Bounds on what the state carries across continue-as-new.
SEEN_EVENT_IDS = 5000
RECENT_BATCHES = 20
STATUS_QUEUED = 500  # queued events a status query lists


@workflow.defn(name="BatchCollector")
class BatchCollector:
    @workflow.init
    def __init__(self, state: CollectorState) -> None:
        self._s = state
        self._seen = set(state.seen_event_ids)
        self._changes = 0  # bumps on every queue change, to restart the lull
        self._settings = CollectorSettings()
        self._lull_deadline: datetime | None = None

    # ---- messages -------------------------------------------------------

    @workflow.signal(name=SIGNAL_TAG)
    def tag(self, event: TagEvent) -> None:
        self._queue(event)

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        self._s.paused = True

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        self._s.paused = False

    @workflow.signal(name=SIGNAL_SET_LOG_LEVEL)
    def set_log_level(self, level: str) -> None:
        """Only recorded here; each worker's log-level follower applies it."""
        self._s.log_level = level

    @workflow.query(name=QUERY_LOG_LEVEL)
    def log_level(self) -> str:
        return self._s.log_level

    @workflow.signal(name=SIGNAL_SIDE_TAGS)
    def side_tags(self, event: SideTagsEvent) -> None:
        if event.batch_id == self._s.current_batch_id:
            self._s.current_side_tags = list(event.side_tags)

    @workflow.update(name=UPDATE_ENQUEUE)
    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult:
        """Queue components by hand, choosing the build as the original's manual
        rebuild does (latest Rawhide vs latest ELN build)."""
        resolved = await workflow.execute_activity_method(
            SettingsActivities.resolve_components,
            ResolveRequest(sorted(set(req.components))),
            **RESOLVE_CALL,
        )
        result = EnqueueResult()
        for cand in resolved.candidates:
            if not cand.eligible:
                result.rejected.append(Rejection(cand.requested, cand.reason))
                continue
            choice = choose_build(cand.rawhide, cand.eln)
            if choice.build is None:
                result.rejected.append(Rejection(cand.requested, choice.reason))
                continue
            event = TagEvent(
                component=cand.component,
                nvr=choice.build.nvr,
                build_id=choice.build.build_id,
                # The tag the batch resolves the component in again when it
                # starts: an ELN build chosen (renamed for ELN) lives in ELN.
                tag=(
                    resolved.eln_tag
                    if choice.origin == ELN and resolved.eln_tag
                    else resolved.trigger_tag
                ),
                source=req.source,
                event_id=f"{req.source}:{workflow.uuid4()}",
                tagged_at=workflow.now().timestamp(),
                requested_by=req.requested_by,
                eln_name=cand.eln_name if cand.eln_name != cand.component else "",
            )
            self._queue(event)
            result.queued.append(event)
        return result

    @enqueue.validator
    def _validate_enqueue(self, req: EnqueueRequest) -> None:
        # The same rule the API and CLI check at the edge; rejected here before
        # anything is written to the history.
        check_components(req.components)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> CollectorStatus:
        return CollectorStatus(
            queued=sorted(self._s.queue.values(), key=lambda e: e.component)[:STATUS_QUEUED],
            paused=self._s.paused,
            paused_by_config=self._settings.paused_by_config,
            lull_deadline=self._lull_deadline.isoformat() if self._lull_deadline else "",
            current_batch_id=self._s.current_batch_id,
            current_batch_packages=list(self._s.current_batch_packages),
            recent_batches=list(self._s.recent_batches),
            config_version=self._settings.config_version,
            queue_length=len(self._s.queue),
            totals=self._s.totals,
        )

    @workflow.query(name=QUERY_ROUTING)
    def routing(self) -> Routing:
        return Routing(self._s.current_batch_id, list(self._s.current_side_tags))

    # ---- the loop -------------------------------------------------------

    @workflow.run
    async def run(self, state: CollectorState) -> None:
        while True:
            await self._wait(lambda: self._ready())
            self._settings = await self._load_collector_settings()
            if self._settings.paused_by_config:
                # control.pause in the config: look again after a while.
                await self._wait(lambda: False, within=max(self._settings.lull, 60.0))
                continue
            if not await self._lull_passed():
                continue
            await self._run_batch()
            if self._should_continue_as_new():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)

    def _ready(self) -> bool:
        return bool(self._s.queue) and not self._s.paused

    async def _wait(self, condition: object, within: float | None = None) -> bool:
        """wait_condition that also wakes to continue-as-new when idle."""

        def done() -> bool:
            return bool(condition()) or self._should_continue_as_new()  # type: ignore[operator]

        try:
            await workflow.wait_condition(done, timeout=within)
        except TimeoutError:
            return False
        if self._should_continue_as_new() and not self._s.current_batch_id:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(self._s)
        return True

    async def _lull_passed(self) -> bool:
        """Wait for `lull` seconds without a new event; False if paused meanwhile."""
        while True:
            last = datetime.fromisoformat(self._s.last_event_at) if self._s.last_event_at else None
            deadline = (last or workflow.now()) + timedelta(seconds=self._settings.lull)
            self._lull_deadline = deadline
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                break
            changes = self._changes
            woke = await self._wait(
                lambda seen=changes: self._changes != seen or self._s.paused, within=remaining
            )
            if woke and self._s.paused:
                self._lull_deadline = None
                return False
        self._lull_deadline = None
        return self._ready()

    async def _run_batch(self) -> None:
        settings = await workflow.execute_activity_method(
            SettingsActivities.batch_settings, **SETTINGS_READ
        )
        events = self._take_batch(settings)
        self._s.batch_seq += 1
        now = workflow.now()
        batch_id = f"ebs-batch-{now:%Y%m%d-%H%M%S}-{self._s.batch_seq}"
        self._s.current_batch_id = batch_id
        self._s.current_batch_packages = [e.component for e in events]
        self._s.current_side_tags = []
        self._s.totals.batches_started += 1
        summary = BatchSummary(
            batch_id=batch_id,
            started_at=now.isoformat(),
            packages=len(events),
            config_version=settings.config_version,
        )
        try:
            result: BatchResult = await workflow.execute_child_workflow(
                RebuildBatch.run,
                BatchRequest(batch_id, events, settings),
                id=batch_id,
                # Terminating or resetting the collector asks the batch to
                # cancel, so that it still cleans up its side tags and tasks.
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{len(events)} package(s): "
                + ", ".join(e.component for e in events[:10])
                + (" …" if len(events) > 10 else ""),
            )
            summary.outcome = result.outcome
            failed = [p.component for p in result.packages if p.state == "failed"]
            built = [p for p in result.packages if p.state in BUILT_STATES]
            summary.failed = len(failed)
            summary.succeeded = len(built)
            summary.failed_components = failed[:200]
            self._s.totals.packages_built += len(built)
            self._s.totals.packages_failed += len(failed)
        except ChildWorkflowError as err:
            # A batch that crashed or was cancelled still reports every package.
            cancelled = is_cancelled_exception(err)
            summary.outcome = BatchOutcome.CANCELLED if cancelled else BatchOutcome.ERROR
            summary.failed = len(events)
            summary.failed_components = [e.component for e in events][:200]
            self._s.totals.packages_failed += len(events)
            workflow.logger.error("batch %s ended without a result: %s", batch_id, err.cause)
        summary.finished_at = workflow.now().isoformat()
        finished = self._s.totals.batches_finished
        finished[summary.outcome] = finished.get(summary.outcome, 0) + 1
        self._s.recent_batches = (self._s.recent_batches + [summary])[-RECENT_BATCHES:]
        self._s.current_batch_id = ""
        self._s.current_batch_packages = []
        self._s.current_side_tags = []

    def _take_batch(self, settings: BatchSettings) -> list[TagEvent]:
        """The queue, or its first max_batch_packages by (ordering, name): a
        mass rebuild becomes consecutive batches, lower slices first; the rest
        stay queued and go next, without another lull."""
        events = sorted(self._s.queue.values(), key=lambda e: e.component)
        cap = settings.max_batch_packages
        if cap and len(events) > cap:
            events = sorted(
                events,
                key=lambda e: (
                    # As in the batch: ordering rules match the ELN name.
                    ordering_for(
                        settings.ordering, e.eln_name or e.component, settings.default_ordering
                    ),
                    e.component,
                ),
            )[:cap]
            workflow.logger.info(
                "batch takes %d of %d queued packages; the rest go in the next batch",
                cap, len(self._s.queue),
            )
            for e in events:
                del self._s.queue[e.component]
            return sorted(events, key=lambda e: e.component)
        self._s.queue = {}
        return events

    async def _load_collector_settings(self) -> CollectorSettings:
        return await workflow.execute_activity_method(
            SettingsActivities.collector_settings, **SETTINGS_READ
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._s.history_limit
        )

    # ---- state ----------------------------------------------------------

    def _queue(self, event: TagEvent) -> None:
        if event.event_id:
            if event.event_id in self._seen:
                return  # redelivery of a message already queued
            self._seen.add(event.event_id)
            self._s.seen_event_ids.append(event.event_id)
            if len(self._s.seen_event_ids) > SEEN_EVENT_IDS:
                drop = self._s.seen_event_ids[: -SEEN_EVENT_IDS]
                self._s.seen_event_ids = self._s.seen_event_ids[-SEEN_EVENT_IDS:]
                self._seen.difference_update(drop)
        current = self._s.queue.get(event.component)
        if (
            current is not None
            and current.tagged_at is not None
            and event.tagged_at is not None
            and event.tagged_at < current.tagged_at
        ):
            # An older tag arriving late: the build tagged last wins. A fast
            # path only (sent-at has one-second resolution): the batch asks
            # Koji for the latest build in the trigger tag when it starts.
            return
        self._s.queue[event.component] = event
        self._s.last_event_at = workflow.now().isoformat()
        self._changes += 1
