"""The collector's hand-over to its queue holders, and its takes from them
(see ebs.workflows.queue for why the queue lives there)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from ebs.config.rules import ordering_for
from ebs.contracts import queue as q
from ebs.contracts.names import HOLDER_WORKFLOW, QUERY_HELD, UPDATE_HOLD, UPDATE_TAKE
from ebs.contracts.queue import holder_id, partition_of

T = TypeVar("T")
CONCURRENCY = 8


async def _each(items: list[str], fn: Callable[[str], Awaitable[T]]) -> dict[str, T]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: str) -> tuple[str, T]:
        async with gate:
            result = await fn(item)
            activity.heartbeat(item)
            return item, result

    return dict(await asyncio.gather(*(one(i) for i in items)))


class QueueActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    def all(self) -> list[Callable[..., object]]:
        return [self.hold_queued, self.take_queued]

    @activity.defn(name="hold_queued")
    async def hold_queued(self, req: q.HoldRequest) -> q.HoldResult:
        """Hand queued events to their partitions' holders (starting them)."""
        by_partition: dict[str, list[q.HeldEvent]] = {}
        for held in req.events:
            by_partition.setdefault(partition_of(held.event.component), []).append(held)

        async def hold(partition: str) -> int:
            handle = await self.client.start_workflow(
                HOLDER_WORKFLOW,
                q.HolderState(collector_id=req.collector_id, partition=int(partition)),
                id=holder_id(req.collector_id, partition),
                task_queue=activity.info().task_queue or self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"part {partition} of the queue of {req.collector_id}",
            )
            size: int = await handle.execute_update(
                UPDATE_HOLD, by_partition[partition], result_type=int
            )
            return size

        return q.HoldResult(sizes=await _each(sorted(by_partition), hold))

    @activity.defn(name="take_queued")
    async def take_queued(self, req: q.TakeRequest) -> q.TakeResult:
        """The next batch: the first `cap` held components by (ordering, name).

        The same take_id always takes the same components: a retry after the
        holders gave some up finds them in each holder's record of that take.
        """

        async def contents(partition: str) -> q.HeldContents:
            handle = self.client.get_workflow_handle(holder_id(req.collector_id, partition))
            answer: q.HeldContents = await handle.query(
                QUERY_HELD, req.take_id, result_type=q.HeldContents
            )
            return answer

        held = await _each(req.partitions, contents)
        candidates: list[tuple[str, q.HeldEvent]] = [
            (p, h) for p, c in held.items() for h in (*c.taken, *c.queue)
        ]

        def key(item: tuple[str, q.HeldEvent]) -> tuple[int, str]:
            e = item[1].event
            return (ordering_for(req.ordering, e.eln_name or e.component, req.default_ordering),
                    e.component)

        candidates.sort(key=key)
        chosen = candidates[: req.cap] if req.cap else candidates
        picks: dict[str, dict[str, int]] = {p: {} for p in req.partitions}
        for partition, h in chosen:
            picks[partition][h.event.component] = h.seq

        async def take(partition: str) -> q.TakeAnswer:
            handle = self.client.get_workflow_handle(holder_id(req.collector_id, partition))
            answer: q.TakeAnswer = await handle.execute_update(
                UPDATE_TAKE,
                q.TakeOrder(req.take_id, picks[partition], req.floor),
                result_type=q.TakeAnswer,
            )
            return answer

        answers = await _each(req.partitions, take)
        events = sorted((h.event for a in answers.values() for h in a.taken),
                        key=lambda e: e.component)
        return q.TakeResult(events=events, sizes={p: a.size for p, a in answers.items()})
