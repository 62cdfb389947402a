"""BatchCollector: the singleton that turns tag events into batches.

Events queue up until `timers.lull` passes with no new one; then the queue
becomes one RebuildBatch child. Batches never overlap: events arriving during
a batch wait, durably, for the next one. All state lives in one
CollectorState, carried across continue-as-new.

A mass rebuild queues every package of Rawhide within hours. Carried whole,
30,000 queued TagEvents are ~5.7 MB (and even a compact, compressed encoding of
name, NVR, build id, tag time and message id stays near 650 KB for realistic
names: measured, too close to Temporal's 512 KB warning limit), so the
collector keeps the queue in two places:

* components queued since the last hand-over stay in the state (`queue`:
  while tags stream in, up to `hand_over_at`, 4,000, and all that come while
  a batch runs; at continue-as-new at most `hold_after`, 500, ~100 KB);
* beyond that, `hold_queued` hands them to 64 CollectorQueue holder
  workflows (ebs.workflows.queue), partitioned by name, which apply the same
  rules (the build tagged last wins); the state only counts them (`held`).

A batch then takes its (at most `max_batch_packages`) components from the
holders by (ordering, name), in one numbered, retry-safe `take_queued`. So the
continue-as-new input stays ~300 KB at most (queue, 10,000 message-id hashes,
20 batch summaries), whatever the queue's size, and the `status` query
answers with counts and one page (the `queued` query pages further). The
collector stays the one workflow the bridge signals; no payload in its history
exceeds a batch's input (2,000 events, ~400 KB).

Temporal refuses a continue-as-new whose workflow task saw new signals arrive,
and the SDK then tries again with them in the state: under a steady stream of
single signals (a bridge catching up at hundreds a second) the collector would
not get to continue as new until the stream paused, its queue growing in the
state meanwhile (measured: 21 MB after two minutes at 300 a second, past
Temporal's 2 MB limit). So the bridge sends its tags grouped, in `tags`
signals at least 40 ms apart (ebs.ingest.forward), which leaves the gaps.

Known limit: the collector cannot continue as new while its batch (a child,
cancelled when the collector closes) runs, so the tag signals of a long batch
all land in one run's history (~300 bytes each); `history_limit` (3,000
events) and `history_bytes_limit` apply once the batch ends. Nor does it hand
its queue over while a batch runs (a hand-over could not shorten that run,
and its load would slow the batch: bench/signal_load.py): what comes during
a batch stays in the worker's memory (~1 KB a component) and goes to the
holders, in parts, as soon as the batch ends. A replay of a run
decodes every signal in it (~0.1-0.2 ms each), which is why the limits are low.

Migration: a collector started before the holders replays unchanged (the
hand-over is behind `workflow.patched`, and a run with nothing held takes its
batches as before); it starts using holders from its next continue-as-new,
reading its old `seen_event_ids` into `seen_keys`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from ebs.activities.presets import HOLD_QUEUE, RESOLVE_CALL, SETTINGS_READ
    from ebs.activities.queue import QueueActivities
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
    from ebs.contracts.collector import (
        CollectorSettings,
        CollectorState,
        CollectorStatus,
        QueuePage,
        QueueQuery,
    )
    from ebs.contracts.components import check_components
    from ebs.contracts.events import (
        EnqueueRequest,
        EnqueueResult,
        Rejection,
        Routing,
        SideTagsEvent,
        TagBatch,
        TagEvent,
    )
    from ebs.contracts.names import (
        QUERY_LOG_LEVEL,
        QUERY_QUEUED,
        QUERY_ROUTING,
        QUERY_STATUS,
        SIGNAL_PAUSE,
        SIGNAL_RESUME,
        SIGNAL_SET_LOG_LEVEL,
        SIGNAL_SIDE_TAGS,
        SIGNAL_TAG,
        SIGNAL_TAGS,
        UPDATE_ENQUEUE,
    )
    from ebs.contracts.queue import HeldEvent, HoldRequest, TakeRequest
    from ebs.contracts.resolve import ResolveRequest
    from ebs.workflows.batch import RebuildBatch
    from ebs.workflows.queue import SEEN_KEY_CHARS, holder_id, seen_key, supersedes
    from ebs.workflows.rebuild_choice import ELN, choose_build

# Bounds on what the state carries across continue-as-new.
SEEN_EVENT_IDS = 10_000
RECENT_BATCHES = 20
STATUS_QUEUED = 100  # queued events a status query lists
QUEUE_PAGE_MAX = 1000  # events a `queued` query answers with at most
PATCH_HOLDERS = "collector-queue-holders"
# Hand-overs go in parts of at most HAND_OVER_MAX events (~250 KB of activity
# input): under a burst the queue can grow far past `hold_after` while one
# hand-over runs, and a single activity input of all of it would pass 512 KB
# (and, at ~8,000, Temporal's 2 MB limit).
HAND_OVER_MAX = 1000
PATCH_HAND_OVER_PARTS = "collector-hand-over-parts"
# From this patch on, parts of up to HAND_OVER_PART (the data converter
# compresses them: 4,000 events, ~900 KB of JSON, cross as ~180 KB), and while
# tags stream in a hand-over waits for `hand_over_at` queued. Every hand-over
# updates each holder that gets an event (all 64, for a part of hundreds):
# at 300 tags a second, parts of 500 made ~40 holder updates a second, and
# that load on Temporal slowed a running batch by a fifth.
HAND_OVER_PART = 4000
PATCH_HAND_OVER_WHOLE_PARTS = "collector-hand-over-whole-parts"
# From this patch on, no hand-over while a batch runs. The collector cannot
# continue as new then anyway, so a hand-over bought nothing but load on the
# worker and Temporal (64 holder updates and ~2 CPU-seconds a part) while
# the batch ran, and its input in the collector's history.
PATCH_HAND_OVER_BETWEEN_BATCHES = "collector-hand-over-between-batches"


@workflow.defn(name="BatchCollector")
class BatchCollector:
    @workflow.init
    def __init__(self, state: CollectorState) -> None:
        self._s = state
        if state.seen_event_ids:  # a state from before the holders
            state.seen_keys += "".join(seen_key(i) for i in state.seen_event_ids)
            state.seen_event_ids = []
        n = SEEN_KEY_CHARS
        # The message-id hashes, oldest first: kept here as a deque (O(1) a
        # tag) and written back to `seen_keys` only to continue as new.
        self._seen_order = deque(
            state.seen_keys[i : i + n] for i in range(0, len(state.seen_keys), n))
        self._seen = set(self._seen_order)
        self._holding = False  # a hand-over to the holders (or a take) is running
        self._in_flight = 0  # events being handed over
        self._closing = False  # continuing as new: no new hand-over but the last
        self._changes = 0  # bumps on every queue change, to restart the lull
        self._settings = CollectorSettings()
        self._lull_deadline: datetime | None = None

    # ---- messages -------------------------------------------------------

    @workflow.signal(name=SIGNAL_TAG)
    def tag(self, event: TagEvent) -> None:
        self._queue(event)

    @workflow.signal(name=SIGNAL_TAGS)
    def tags(self, batch: TagBatch) -> None:
        """The bridge's grouped tags (ebs.ingest.forward): a burst of hundreds
        of messages a second becomes a few signals a second, so the history
        grows by few events, and a continue-as-new (which Temporal refuses
        while signals arrive during its workflow task) finds a gap."""
        for event in batch.events:
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
        """Counts and the first page: the answer stays small whatever the queue."""
        held = sum(self._s.held.values()) + self._in_flight
        return CollectorStatus(
            queued=sorted(self._s.queue.values(), key=lambda e: e.component)[:STATUS_QUEUED],
            paused=self._s.paused,
            paused_by_config=self._settings.paused_by_config,
            lull_deadline=self._lull_deadline.isoformat() if self._lull_deadline else "",
            current_batch_id=self._s.current_batch_id,
            current_batch_packages=list(self._s.current_batch_packages),
            recent_batches=list(self._s.recent_batches),
            config_version=self._settings.config_version,
            queue_length=len(self._s.queue) + held,
            totals=self._s.totals,
            held=held,
        )

    @workflow.query(name=QUERY_QUEUED)
    def queued(self, page: QueueQuery) -> QueuePage:
        """A page (by name) of the components the collector holds itself, and
        the holders that keep the rest (their `held` query lists those)."""
        events = sorted(self._s.queue.values(), key=lambda e: e.component)
        limit = max(0, min(page.limit, QUEUE_PAGE_MAX))
        return QueuePage(
            total=len(events),
            events=events[page.offset : page.offset + limit],
            holders=[holder_id(workflow.info().workflow_id, p)
                     for p, n in sorted(self._s.held.items()) if n],
        )

    @workflow.query(name=QUERY_ROUTING)
    def routing(self) -> Routing:
        return Routing(self._s.current_batch_id, list(self._s.current_side_tags))

    # ---- the loop -------------------------------------------------------

    @workflow.run
    async def run(self, state: CollectorState) -> None:
        self._hand_over_task = asyncio.create_task(self._hand_over_loop())
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
        await self._quiesce()
        self._continue_as_new()

    async def _quiesce(self) -> None:
        """Before continue-as-new: the hand-over loop stands aside (under a
        steady stream of tags it would otherwise hold forever), one last
        hand-over keeps the input small, then every handler finishes."""
        self._closing = True
        await workflow.wait_condition(lambda: not self._holding)
        if len(self._s.queue) > self._s.hold_after and workflow.patched(PATCH_HOLDERS):
            self._holding = True
            try:
                await self._hand_over()
                while len(self._s.queue) > self._s.hold_after and self._parts():
                    await self._hand_over()
            finally:
                self._holding = False
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _ready(self) -> bool:
        return (bool(self._s.queue) or self._held_any()) and not self._s.paused

    def _held_any(self) -> bool:
        return self._in_flight > 0 or any(self._s.held.values())

    # ---- the queue holders ------------------------------------------------

    async def _hand_over_loop(self) -> None:
        """Keep the state small: past `hold_after` queued (from the patch on,
        past `hand_over_at`: see HAND_OVER_PART), hand them over; from
        PATCH_HAND_OVER_BETWEEN_BATCHES on, only while no batch runs."""
        while True:
            at = self._s.hold_after
            if self._whole_parts():
                at = max(at, self._s.hand_over_at)
            between = workflow.patched(PATCH_HAND_OVER_BETWEEN_BATCHES)
            await workflow.wait_condition(
                lambda at=at, between=between: len(self._s.queue) > at  # type: ignore[misc]
                and not self._holding
                and not self._closing
                and not (between and self._s.current_batch_id)
            )
            if not workflow.patched(PATCH_HOLDERS):
                return  # a run from before the holders, replayed: keep its queue
            self._holding = True
            try:
                await self._hand_over()
            finally:
                self._holding = False

    def _parts(self) -> bool:
        """Whether this run hands over in parts (not a run from before them)."""
        return workflow.patched(PATCH_HAND_OVER_PARTS)

    def _whole_parts(self) -> bool:
        """Whether this run hands over big parts, and only whole ones while
        tags stream in (not a run from before them)."""
        return workflow.patched(PATCH_HAND_OVER_WHOLE_PARTS)

    def _part_size(self) -> int:
        return HAND_OVER_PART if self._whole_parts() else HAND_OVER_MAX

    async def _hand_over(self) -> None:
        """Hand (a part of) the queue to the holders, the first by name."""
        events = sorted(self._s.queue.values(), key=lambda e: e.component)
        if not events:
            return
        if len(events) > self._part_size() and self._parts():
            events = events[: self._part_size()]
            for e in events:
                del self._s.queue[e.component]
        else:
            self._s.queue = {}
        held = [HeldEvent(self._s.held_seq + n, e) for n, e in enumerate(events, start=1)]
        self._s.held_seq += len(events)
        self._in_flight = len(events)
        try:
            # Retried until it works (HOLD_QUEUE): these events are nowhere else.
            result = await workflow.execute_activity_method(
                QueueActivities.hold_queued,
                HoldRequest(workflow.info().workflow_id, held),
                **HOLD_QUEUE,
            )
        finally:
            self._in_flight = 0
        self._s.held.update(result.sizes)

    async def _take_from_holders(self, settings: BatchSettings) -> list[TagEvent]:
        """The next batch from the holders, after handing them the rest."""
        await workflow.wait_condition(lambda: not self._holding)
        self._holding = True
        try:
            # All that is queued now, so that the batch takes from all of it.
            queued = len(self._s.queue)
            size = self._part_size()
            parts = -(-queued // size) if queued > size and self._parts() else 1
            for _ in range(parts):
                await self._hand_over()
            taken = await workflow.execute_activity_method(
                QueueActivities.take_queued,
                TakeRequest(
                    collector_id=workflow.info().workflow_id,
                    take_id=f"take-{self._s.batch_seq + 1}-{self._s.held_seq}",
                    partitions=sorted(p for p, n in self._s.held.items() if n),
                    cap=settings.max_batch_packages,
                    floor=self._s.held_seq,
                    ordering=settings.ordering,
                    default_ordering=settings.default_ordering,
                ),
                **HOLD_QUEUE,
            )
        finally:
            self._holding = False
        self._s.held = {p: n for p, n in {**self._s.held, **taken.sizes}.items() if n}
        workflow.logger.info(
            "batch takes %d queued packages; %d stay with the queue holders",
            len(taken.events), sum(self._s.held.values()),
        )
        return taken.events

    async def _wait(self, condition: object, within: float | None = None) -> bool:
        """wait_condition that also wakes to continue-as-new when idle."""

        def done() -> bool:
            return bool(condition()) or self._should_continue_as_new()  # type: ignore[operator]

        try:
            await workflow.wait_condition(done, timeout=within)
        except TimeoutError:
            return False
        if self._should_continue_as_new() and not self._s.current_batch_id:
            await self._quiesce()
            self._continue_as_new()
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
            if not woke and self._changes == changes:
                # The lull's timer fired and nothing came meanwhile: it passed.
                # Not worked out again from workflow.now(): a replay can see
                # the time of a signal's workflow task later than it was live
                # (the SDK core joins a task that completed with no command to
                # the next one), and would then start another timer: a
                # nondeterminism error, found by a recorded history.
                break
        self._lull_deadline = None
        return self._ready()

    async def _run_batch(self) -> None:
        settings = await workflow.execute_activity_method(
            SettingsActivities.batch_settings, **SETTINGS_READ
        )
        if self._held_any():
            events = await self._take_from_holders(settings)
            if not events:
                return
        else:
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

    def _continue_as_new(self) -> None:
        self._s.seen_keys = "".join(self._seen_order)
        workflow.continue_as_new(self._s)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._s.history_limit
            or info.get_current_history_size() > self._s.history_bytes_limit
        )

    # ---- state ----------------------------------------------------------

    def _queue(self, event: TagEvent) -> None:
        if event.event_id:
            key = seen_key(event.event_id)
            if key in self._seen:
                return  # redelivery of a message already queued
            self._seen.add(key)
            self._seen_order.append(key)
            while len(self._seen_order) > SEEN_EVENT_IDS:
                self._seen.discard(self._seen_order.popleft())
        if not supersedes(event, self._s.queue.get(event.component)):
            # An older tag arriving late: the build tagged last wins. A fast
            # path only (sent-at has one-second resolution): the batch asks
            # Koji for the latest build in the trigger tag when it starts.
            return
        self._s.queue[event.component] = event
        self._s.last_event_at = workflow.now().isoformat()
        self._changes += 1
