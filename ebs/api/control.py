"""Everything the operator surface asks of Temporal, in one place.

The HTTP API and the CLI both go through `Control`: trigger (the collector's
`enqueue` update, starting the collector if needed), pause/resume (signals,
starting the collector if needed), and the read side: workflow queries and
visibility lists on the batch search attributes. No second database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ebs.contracts.batch import BatchResult, PackageResult
from ebs.contracts.collector import CollectorState, CollectorStatus, QueuePage, QueueQuery
from ebs.contracts.components import check_component, check_components
from ebs.contracts.events import EnqueueRequest, EnqueueResult, TagEvent
from ebs.contracts.names import (
    COLLECTOR_WORKFLOW_ID,
    INDEX_WORKFLOW,
    QUERY_HELD,
    QUERY_QUEUED,
    QUERY_STATUS,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    SIGNAL_SET_LOG_LEVEL,
    UPDATE_ENQUEUE,
)
from ebs.contracts.queue import HeldContents
from ebs.contracts.search import CONFIG_VERSION_KEY, OUTCOME_KEY, PACKAGES_KEY, PHASE_KEY

log = logging.getLogger(__name__)

COLLECTOR_TYPE = "BatchCollector"
# RPC errors that mean Temporal itself cannot be used (vs. one workflow not answering).
_SERVER_TROUBLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}
BATCH_TYPE = "RebuildBatch"
INDEX_TYPE = INDEX_WORKFLOW  # ebs.workflows.index

T = TypeVar("T")


class TemporalUnavailable(Exception):
    """Temporal (or the ebs worker behind a query/update) did not answer."""


class RequestRejected(Exception):
    """The collector refused the request as a whole (its update validator)."""


@dataclass
class BatchExecution:
    """One RebuildBatch as Temporal visibility sees it."""

    batch_id: str
    run_id: str
    status: str  # running | completed | failed | cancelled | terminated | timed_out | ...
    start_time: datetime | None = None
    close_time: datetime | None = None
    packages: list[str] = field(default_factory=list)
    outcome: str = ""  # EbsOutcome search attribute, once the batch has one
    phase: str = ""  # EbsPhase search attribute
    config_version: str = ""  # EbsConfigVersion search attribute

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class CollectorInfo:
    exists: bool
    status: str = ""  # Temporal execution status of the latest run, lower case
    state: CollectorStatus | None = None  # None when it cannot be queried


@dataclass
class ComponentRun:
    """A batch that rebuilt one component, with what happened to it there."""

    batch: BatchExecution
    package: PackageResult | None = None
    batch_result: BatchResult | None = None
    error: str = ""  # why the batch result is unknown, if it is


def _status_name(status: WorkflowExecutionStatus | None) -> str:
    if status is None:
        return "unknown"
    name = status.name.lower()
    return "cancelled" if name == "canceled" else name


def _execution(wf: WorkflowExecution) -> BatchExecution:
    sa = wf.typed_search_attributes
    return BatchExecution(
        batch_id=wf.id,
        run_id=wf.run_id,
        status=_status_name(wf.status),
        start_time=wf.start_time,
        close_time=wf.close_time,
        packages=list(sa.get(PACKAGES_KEY) or []),
        outcome=sa.get(OUTCOME_KEY) or "",
        phase=sa.get(PHASE_KEY) or "",
        config_version=sa.get(CONFIG_VERSION_KEY) or "",
    )


def _unavailable(err: BaseException, what: str) -> TemporalUnavailable:
    msg = str(err) or type(err).__name__
    return TemporalUnavailable(f"{what}: {msg}")


class Control:
    """Operator actions and read models on top of one Temporal client."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        query_timeout: float = 5.0,
        update_timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.query_timeout = timedelta(seconds=query_timeout)
        self.update_timeout = update_timeout

    # ---- writes ---------------------------------------------------------

    def _collector_start(self) -> dict[str, Any]:
        return {
            "id": COLLECTOR_WORKFLOW_ID,
            "task_queue": self.task_queue,
        }

    async def worker_polling(self) -> bool:
        """Whether an ebs worker polled the workflow task queue lately (Temporal
        remembers pollers for a few minutes)."""
        request = DescribeTaskQueueRequest(
            namespace=self.client.namespace,
            task_queue=TaskQueue(name=self.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        try:
            resp = await self.client.workflow_service.describe_task_queue(
                request, timeout=self.query_timeout
            )
        except RPCError as err:
            raise _unavailable(err, "cannot reach Temporal") from err
        return bool(resp.pollers)

    async def trigger(
        self, components: list[str], *, source: str, requested_by: str
    ) -> EnqueueResult:
        """Queue components for the next batch; starts the collector if it is not running.

        The collector answers only through a worker, so with none polling this
        fails at once instead of waiting for the update timeout."""
        names = check_components(components)
        if not await self.worker_polling():
            raise TemporalUnavailable(
                f"no ebs worker polls task queue {self.task_queue!r} in namespace "
                f"{self.client.namespace!r}: start `ebs worker` (nothing was queued)"
            )
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            COLLECTOR_TYPE,
            CollectorState(),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            **self._collector_start(),
        )
        request = EnqueueRequest(components=names, source=source, requested_by=requested_by)
        try:
            return await asyncio.wait_for(
                self.client.execute_update_with_start_workflow(
                    UPDATE_ENQUEUE,
                    request,
                    start_workflow_operation=start,
                    result_type=EnqueueResult,
                ),
                timeout=self.update_timeout,
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise RequestRejected(cause.message) from err
            raise RequestRejected(str(cause or err)) from err
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            raise TemporalUnavailable(
                f"the ebs worker did not answer the enqueue within {self.update_timeout:.0f} s; "
                "check `ebs status` before retrying"
            ) from err
        except RPCError as err:
            raise _unavailable(err, "cannot reach Temporal") from err

    async def _signal_collector(self, signal: str, *args: Any) -> None:
        try:
            await self.client.start_workflow(
                COLLECTOR_TYPE,
                CollectorState(),
                start_signal=signal,
                start_signal_args=args,
                rpc_timeout=self.query_timeout,
                **self._collector_start(),
            )
        except RPCError as err:
            raise _unavailable(err, "cannot reach Temporal") from err

    async def pause(self) -> None:
        """Stop starting new batches (a running batch finishes); durable across restarts."""
        await self._signal_collector(SIGNAL_PAUSE)

    async def resume(self) -> None:
        await self._signal_collector(SIGNAL_RESUME)

    async def set_log_level(self, level: str) -> None:
        """Record the workers' log level in the collector (they follow it)."""
        await self._signal_collector(SIGNAL_SET_LOG_LEVEL, level)

    async def ensure_collector(self) -> str:
        """'running' if the collector runs, else start it and say 'started'."""
        info = await self.collector_info(query=False)
        if info.status == "running":
            return "running"
        try:
            await self.client.start_workflow(
                COLLECTOR_TYPE,
                CollectorState(),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=self.query_timeout,
                **self._collector_start(),
            )
        except RPCError as err:
            raise _unavailable(err, "cannot start the collector") from err
        return "started"

    # ---- reads ----------------------------------------------------------

    async def check_health(self) -> None:
        try:
            ok = await self.client.service_client.check_health(timeout=self.query_timeout)
        except (RPCError, RuntimeError) as err:
            raise _unavailable(err, "Temporal is not reachable") from err
        if not ok:
            raise TemporalUnavailable("Temporal reports itself not serving")

    async def _query(self, workflow_id: str, result_type: type[T]) -> T:
        handle = self.client.get_workflow_handle(workflow_id)
        result: T = await handle.query(
            QUERY_STATUS, result_type=result_type, rpc_timeout=self.query_timeout
        )
        return result

    async def collector_info(self, *, query: bool = True) -> CollectorInfo:
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        try:
            desc = await handle.describe(rpc_timeout=self.query_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return CollectorInfo(exists=False)
            raise _unavailable(err, "cannot reach Temporal") from err
        info = CollectorInfo(exists=True, status=_status_name(desc.status))
        if query:
            info.state = await self._query_or_none(COLLECTOR_WORKFLOW_ID, CollectorStatus)
        return info

    async def _query_or_none(self, workflow_id: str, result_type: type[T]) -> T | None:
        """A workflow's status query; None if it does not exist or cannot answer
        (e.g. no worker polls its task queue right now)."""
        try:
            return await self._query(workflow_id, result_type)
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None
        except RPCError as err:
            if err.status in _SERVER_TROUBLE:
                raise _unavailable(err, f"cannot query {workflow_id}") from err
            # No such workflow, no worker answering within query_timeout (DEADLINE_EXCEEDED,
            # or CANCELLED when the client gives up), a run that closed before it ever ran...
            log.info("%s did not answer its status query: %s", workflow_id, err)
            return None

    async def queue_page(self, offset: int = 0, limit: int = 100,
                         collector_id: str = COLLECTOR_WORKFLOW_ID
                         ) -> tuple[int, list[TagEvent]]:
        """(queued components, one page of them by name): the collector's own
        part and its queue holders' (ebs.workflows.queue), merged by the
        collector's rule (the build tagged last wins)."""
        handle = self.client.get_workflow_handle(collector_id)
        try:
            page: QueuePage = await handle.query(
                QUERY_QUEUED, QueueQuery(0, 1000), result_type=QueuePage,
                rpc_timeout=self.query_timeout)
            held = await asyncio.gather(*(
                self.client.get_workflow_handle(hid).query(
                    QUERY_HELD, "", result_type=HeldContents, rpc_timeout=self.query_timeout)
                for hid in page.holders))
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError) as err:
            raise _unavailable(err, "cannot list the queue") from err
        merged: dict[str, TagEvent] = {}
        for event in [h.event for c in held for h in c.queue] + list(page.events):
            current = merged.get(event.component)
            if current is None or (event.tagged_at or 0) >= (current.tagged_at or 0):
                merged[event.component] = event
        events = [merged[name] for name in sorted(merged)]
        return len(events), events[offset : offset + limit]

    async def batch_status(self, batch_id: str) -> BatchResult | None:
        """A running batch's own snapshot of its packages (its `status` query)."""
        return await self._query_or_none(batch_id, BatchResult)

    async def _list(self, query: str, limit: int) -> list[BatchExecution]:
        try:
            return [
                _execution(wf)
                async for wf in self.client.list_workflows(
                    query, limit=limit, rpc_timeout=self.query_timeout
                )
            ]
        except RPCError as err:
            raise _unavailable(err, "cannot list batches") from err

    async def recent_batches(self, limit: int = 10) -> list[BatchExecution]:
        """The newest batches first (running ones lead), from Temporal visibility."""
        return await self._list(f"WorkflowType = '{BATCH_TYPE}'", limit)

    async def batch_counts(self) -> dict[str, int]:
        """Number of batches per execution status (visibility count)."""
        try:
            result = await self.client.count_workflows(
                f"WorkflowType = '{BATCH_TYPE}' GROUP BY ExecutionStatus",
                rpc_timeout=self.query_timeout,
            )
        except RPCError as err:
            raise _unavailable(err, "cannot count batches") from err
        counts: dict[str, int] = {}
        for group in result.groups:
            key = str(group.group_values[0]) if group.group_values else "unknown"
            counts[key] = group.count
        return counts

    async def _batch_result(self, batch: BatchExecution) -> tuple[BatchResult | None, str]:
        if batch.running:
            snapshot = await self.batch_status(batch.batch_id)
            return snapshot, "" if snapshot else "the batch did not answer its status query"
        handle = self.client.get_workflow_handle(
            batch.batch_id, run_id=batch.run_id, result_type=BatchResult
        )
        try:
            result: BatchResult = await handle.result(
                follow_runs=False, rpc_timeout=self.query_timeout
            )
            return result, ""
        except WorkflowFailureError as err:
            return None, f"the batch ended without a result: {err.cause or err}"
        except RPCError as err:
            return None, f"cannot read the batch result: {err}"

    async def _batches_with(self, name: str, limit: int) -> list[BatchExecution]:
        """Batches whose own EbsPackages or whose PackageIndex children's name
        `name` (a large batch's own value holds only its first ~150 names)."""
        query = (f"(WorkflowType = '{BATCH_TYPE}' OR WorkflowType = '{INDEX_TYPE}') "
                 f"AND {PACKAGES_KEY.name} = '{name}'")
        found: dict[str, BatchExecution] = {}
        try:
            async for wf in self.client.list_workflows(
                query, limit=2 * limit, rpc_timeout=self.query_timeout
            ):
                if wf.workflow_type != INDEX_TYPE:
                    found.setdefault(wf.id, _execution(wf))
                elif wf.parent_id and wf.parent_id not in found:
                    desc = await self.client.get_workflow_handle(
                        wf.parent_id, run_id=wf.parent_run_id
                    ).describe(rpc_timeout=self.query_timeout)
                    found[wf.parent_id] = _execution(desc)
        except RPCError as err:
            raise _unavailable(err, "cannot list batches") from err
        batches = sorted(found.values(), key=lambda b: b.start_time or datetime.min.replace(
            tzinfo=UTC), reverse=True)
        return batches[:limit]

    async def history(self, component: str, limit: int = 20) -> list[ComponentRun]:
        """Past (and running) batches that rebuilt `component`, newest first."""
        name = check_component(component)  # a package name cannot close the quoted literal
        batches = await self._batches_with(name, limit)
        gate = asyncio.Semaphore(8)

        async def one(batch: BatchExecution) -> ComponentRun:
            async with gate:
                result, error = await self._batch_result(batch)
            package = None
            if result is not None:
                package = next((p for p in result.packages if p.component == name), None)
            return ComponentRun(batch=batch, package=package, batch_result=result, error=error)

        return list(await asyncio.gather(*(one(b) for b in batches)))


async def with_control(
    connect: Callable[[], Awaitable[Client]],
    task_queue: str,
    action: Callable[[Control], Awaitable[T]],
) -> T:
    """Connect, run one action, map connection failures to TemporalUnavailable."""
    try:
        client = await connect()
    except RuntimeError as err:  # temporalio: "Failed client connect: ..."
        raise _unavailable(err, "cannot connect to Temporal") from err
    return await action(Control(client, task_queue))
