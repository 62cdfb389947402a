"""The Temporal side of the bridge: deliver a decision as a signal.

`Forwarder.forward(decision)` returns once Temporal has durably accepted the
signal (`SIGNALLED`), or says why not:

* `NOT_FOUND`: the workflow is gone or closed; the message is stale;
* `UNROUTED`: a repo event for a side tag no running batch waits on;
* `REJECTED`: Temporal refused the request itself (invalid argument): retrying
  the same message cannot help;
* `UNAVAILABLE`: Temporal could not be reached or did not answer: the message
  must go back to the queue. So must a NOT_FOUND that cannot mean "workflow
  gone": a missing namespace, or any NOT_FOUND of the collector's
  signal-with-start; `Result.level` is then ERROR (a misconfiguration).

Repo events need to know which batch owns a side tag: the collector's routing
query answers, cached for `routing_ttl` seconds. A tag missing from the cache
re-queries at most every `routing_min_refresh` seconds, so a side tag created
a moment ago is found while other people's side tags cost almost nothing.

Tag events are grouped: while one signal-with-start to the collector is in
flight, or less than TAGS_MIN_INTERVAL after it started, the tags that arrive
wait and go together in the next one (`tags`, at most TAGS_PER_SIGNAL), and
each caller returns with that signal's result, so a message is still acked
only once Temporal holds its event. After a quiet spell a tag goes as the
single `tag` signal, at once. A burst of 300 messages a second then costs the
collector's history at most 25 events a second, with gaps between them (see
ebs.workflows.collector on why that matters). Upgrade the workers before the
bridge: a collector without the `tags` handler would not take those signals.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from ebs.contracts.collector import CollectorState
from ebs.contracts.events import Routing, TagBatch, TagEvent
from ebs.contracts.names import (
    COLLECTOR_WORKFLOW_ID,
    QUERY_ROUTING,
    SIGNAL_REPO_EVENT,
    SIGNAL_TAG,
    SIGNAL_TAGS,
    SIGNAL_TASK_STATE,
)
from ebs.ingest.decide import Decision, Drop, SignalRepo, SignalTag, SignalTask

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

COLLECTOR_TYPE = "BatchCollector"
TAGS_PER_SIGNAL = 100  # tag events one `tags` signal carries at most (~30 KB)
# Signals to the collector start at least this far apart (at most 10 a
# second). Temporal refuses a continue-as-new while signals keep arriving, and
# back-to-back signals (one every RPC round trip, a few ms) left the collector
# no gap to continue as new in: a 300-a-second stream for two minutes grew its
# state to 21 MB. Each signal also costs Temporal a workflow task: at 25 a
# second (40 ms apart) a stream of 300 tags a second slowed a running batch
# by 15-25% (bench/signal_load.py), at 10 a second by about 10%. A bridge
# callback waits for its message's signal, so the bridge's rate is at most
# consumers / (interval + RPC): 32 / 0.105 s ~ 300 a second (DEFAULT_CONSUMERS).
TAGS_MIN_INTERVAL = 0.1

# Answers that mean "this request is wrong", not "Temporal is not there".
_REJECTED = frozenset(
    {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.OUT_OF_RANGE, RPCStatusCode.UNIMPLEMENTED}
)


_NAMESPACE_NOT_FOUND = re.compile(r"namespace\b.*\bnot found", re.IGNORECASE | re.DOTALL)


class Outcome(enum.Enum):
    SIGNALLED = "signalled"
    NOT_FOUND = "not_found"
    UNROUTED = "unrouted"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""
    workflow_id: str = ""
    level: int = logging.WARNING  # how loudly the bridge logs a requeue


class Unavailable(Exception):
    """Temporal could not be reached (or did not answer in time)."""

    level = logging.WARNING


class Misconfigured(Unavailable):
    """Temporal answered NOT_FOUND where nothing can legitimately be missing
    (the namespace, or the collector being signal-with-started)."""

    level = logging.ERROR


def _rpc_detail(err: RPCError) -> str:
    return f"{err.status.name}: {err.message}"


def namespace_missing(err: RPCError) -> bool:
    """Whether Temporal says the namespace does not exist."""
    if err.status != RPCStatusCode.NOT_FOUND:
        return False
    try:
        details = list(err.grpc_status.details)
    except Exception:  # undecodable status details: go by the message
        details = []
    if any(d.type_url.endswith(".NamespaceNotFoundFailure") for d in details):
        return True
    return bool(_NAMESPACE_NOT_FOUND.search(err.message or ""))


def tag_signal(events: list[TagEvent]) -> tuple[str, TagEvent | TagBatch]:
    """The collector signal, and its argument, that carries `events`: a tag
    alone goes as `tag` (what workers older than `tags` understand), more as
    one `tags`."""
    if len(events) == 1:
        return SIGNAL_TAG, events[0]
    return SIGNAL_TAGS, TagBatch(events)


class GroupSender(Generic[T, R]):
    """Group commit: `submit(item)` joins the items waiting while a `send` is
    in flight, or less than `min_interval` after the last one started; they
    go together (at most `max_group`) in the next send, and each caller gets
    that send's result or exception. An item after a quiet spell goes at
    once. One asyncio loop."""

    def __init__(self, send: Callable[[list[T]], Awaitable[R]], max_group: int,
                 min_interval: float = 0.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._send = send
        self.max_group = max_group
        self.min_interval = min_interval
        self._sleep = sleep
        self._last_send = float("-inf")
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, waiter))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        return await waiter

    async def _send_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            pause = self._last_send + self.min_interval - loop.time()
            if pause > 0:
                await self._sleep(pause)
            self._last_send = loop.time()
            group = self._waiting[: self.max_group]
            del self._waiting[: self.max_group]
            try:
                result = await self._send([item for item, _ in group])
            except Exception as err:  # each caller's to handle
                for _, waiter in group:
                    if not waiter.done():
                        waiter.set_exception(err)
                continue
            for _, waiter in group:
                if not waiter.done():  # (a caller that gave up was cancelled)
                    waiter.set_result(result)


class Forwarder:
    """Sends bridge decisions to Temporal. Runs on one asyncio loop."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Client]],
        task_queue: str,
        *,
        rpc_timeout: float = 10.0,
        routing_ttl: float = 5.0,
        routing_min_refresh: float = 1.0,
        routing_failure_ttl: float = 30.0,
        query_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.task_queue = task_queue
        self.rpc_timeout = timedelta(seconds=rpc_timeout)
        self.routing_ttl = routing_ttl
        self.routing_min_refresh = routing_min_refresh
        self.routing_failure_ttl = routing_failure_ttl
        self.query_timeout = timedelta(seconds=min(query_timeout, rpc_timeout))
        self._clock = clock
        self._client: Client | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._routing: Routing | None = None
        self._routing_at = float("-inf")
        self._routing_failed = False
        self._routing_lock: asyncio.Lock | None = None
        self._tags: GroupSender[TagEvent, Result] = GroupSender(
            self._signal_collector, TAGS_PER_SIGNAL, TAGS_MIN_INTERVAL)

    async def client(self) -> Client:
        """The Temporal client, connected on first use (and retried after a
        failed first connect); raises Unavailable."""
        if self._client is not None:
            return self._client
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._client is None:
                try:
                    self._client = await self._connect()
                except (RuntimeError, RPCError, OSError) as err:
                    raise Unavailable(f"cannot connect to Temporal: {err}") from err
                log.info("connected to Temporal")
            return self._client

    async def forward(self, decision: Decision) -> Result:
        try:
            if isinstance(decision, SignalTag):
                return await self._signal_tag(decision)
            if isinstance(decision, SignalTask):
                return await self._signal(decision.workflow_id, SIGNAL_TASK_STATE, decision.event)
            if isinstance(decision, SignalRepo):
                return await self._signal_repo(decision)
            if isinstance(decision, Drop):
                raise TypeError("a Drop has nothing to forward")
            raise TypeError(f"not a decision: {decision!r}")
        except Unavailable as err:
            return Result(Outcome.UNAVAILABLE, str(err), level=err.level)

    async def _signal_tag(self, decision: SignalTag) -> Result:
        """Join the next group of tags to the collector; its result is ours."""
        return await self._tags.submit(decision.event)

    async def _signal_collector(self, events: list[TagEvent]) -> Result:
        client = await self.client()
        signal, arg = tag_signal(events)
        try:
            await client.start_workflow(
                COLLECTOR_TYPE,
                CollectorState(),
                id=COLLECTOR_WORKFLOW_ID,
                task_queue=self.task_queue,
                start_signal=signal,
                start_signal_args=[arg],
                rpc_timeout=self.rpc_timeout,
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # a start never finds a workflow "gone"
                raise Misconfigured(f"signal-with-start: {_rpc_detail(err)}") from err
            return self._failed(err, COLLECTOR_WORKFLOW_ID)
        return Result(Outcome.SIGNALLED, workflow_id=COLLECTOR_WORKFLOW_ID)

    async def _signal(self, workflow_id: str, signal: str, arg: object) -> Result:
        client = await self.client()
        try:
            await client.get_workflow_handle(workflow_id).signal(
                signal, arg, rpc_timeout=self.rpc_timeout
            )
        except RPCError as err:
            return self._failed(err, workflow_id)
        return Result(Outcome.SIGNALLED, workflow_id=workflow_id)

    def _failed(self, err: RPCError, workflow_id: str) -> Result:
        if namespace_missing(err):
            raise Misconfigured(_rpc_detail(err)) from err
        if err.status == RPCStatusCode.NOT_FOUND:
            return Result(Outcome.NOT_FOUND, _rpc_detail(err), workflow_id)
        if err.status in _REJECTED:
            return Result(Outcome.REJECTED, _rpc_detail(err), workflow_id)
        raise Unavailable(_rpc_detail(err)) from err

    async def _signal_repo(self, decision: SignalRepo) -> Result:
        tag = decision.event.tag
        routing = await self.routing(tag)
        if not routing.batch_workflow_id or tag not in routing.side_tags:
            return Result(Outcome.UNROUTED, f"no running batch waits on {tag}")
        result = await self._signal(routing.batch_workflow_id, SIGNAL_REPO_EVENT, decision.event)
        if result.outcome is Outcome.NOT_FOUND:
            self._routing_at = float("-inf")  # that batch has finished: ask again next time
        return result

    async def routing(self, tag: str) -> Routing:
        """The collector's routing, from cache when fresh enough for `tag`."""
        if self._fresh(tag):
            assert self._routing is not None
            return self._routing
        if self._routing_lock is None:
            self._routing_lock = asyncio.Lock()
        async with self._routing_lock:
            if self._fresh(tag):  # another message refreshed it meanwhile
                assert self._routing is not None
                return self._routing
            routing = await self._query_routing()
            self._routing_failed = routing is None
            self._routing = routing or Routing()
            self._routing_at = self._clock()
            return self._routing

    def _fresh(self, tag: str) -> bool:
        if self._routing is None:
            return False
        age = self._clock() - self._routing_at
        if self._routing_failed:
            return age < self.routing_failure_ttl
        if tag in self._routing.side_tags:
            return age < self.routing_ttl
        return age < self.routing_min_refresh

    async def _query_routing(self) -> Routing | None:
        """The routing; an empty one when there is no collector; None when the
        collector cannot answer (no worker): repo events are a fast path only
        (batches also poll their repos), so they go unrouted for
        `routing_failure_ttl` rather than block the queue."""
        client = await self.client()
        handle = client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        try:
            return await handle.query(
                QUERY_ROUTING,
                result_type=Routing,
                rpc_timeout=self.query_timeout,
                # A closed collector still answers, from its last state: stale.
                reject_condition=QueryRejectCondition.NOT_OPEN,
            )
        except WorkflowQueryRejectedError:
            return Routing()  # the collector is not running: no batch is
        except RPCError as err:
            if namespace_missing(err):
                raise Misconfigured(_rpc_detail(err)) from err
            if err.status == RPCStatusCode.NOT_FOUND:
                return Routing()
            if err.status == RPCStatusCode.UNAVAILABLE:
                raise Unavailable(_rpc_detail(err)) from err
            detail = _rpc_detail(err)
        except WorkflowQueryFailedError as err:
            detail = str(err)
        log.warning(
            "routing query to the collector failed (%s); repo events go unrouted for %.0f s",
            detail,
            self.routing_failure_ttl,
        )
        return None
