"""CollectorQueue: a partition of the BatchCollector's queue, held outside it.

A mass rebuild queues every component of Rawhide at once: ~190 bytes each as
a TagEvent, 30,000 of them are ~5.7 MB, far over what one payload may carry
(Temporal warns at 512 KB and refuses 2 MB). So the collector keeps only what
arrived since its last hand-over and passes the rest (activity `hold_queued`)
to PARTITIONS holder workflows, one per hash bucket of the component name,
each with ~1/64 of the queue. A holder applies the collector's own rules
(the build tagged last wins; a hand-over retried after a crash changes
nothing) and gives up components only to a numbered take (activity
`take_queued`) that it remembers, so a take retried after a crash takes the
same components again and loses none.

Holders are started by the activities (id `<collector id>-queue-NN`, not
children: they outlive the collector's continue-as-new) and stay, idle, for
the next mass rebuild.
"""

from __future__ import annotations

import hashlib

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ebs.contracts import queue as q
    from ebs.contracts.events import TagEvent
    from ebs.contracts.names import HOLDER_WORKFLOW, QUERY_HELD, UPDATE_HOLD, UPDATE_TAKE
    from ebs.contracts.queue import PARTITIONS, holder_id, partition_of

__all__ = ["HOLDER_WORKFLOW", "PARTITIONS", "CollectorQueue", "holder_id", "partition_of",
           "seen_key", "supersedes"]

SEEN_KEY_CHARS = 12  # 48 bits of a message id's hash: no collision in 10^4 ids


def seen_key(event_id: str) -> str:
    """A message id as a fixed-width hash (the collector keeps 10,000 of them)."""
    return hashlib.blake2b(event_id.encode(), digest_size=SEEN_KEY_CHARS // 2).hexdigest()


def supersedes(new: TagEvent, current: TagEvent | None) -> bool:
    """The build tagged last wins: an older tag arriving late changes nothing."""
    return not (
        current is not None
        and current.tagged_at is not None
        and new.tagged_at is not None
        and new.tagged_at < current.tagged_at
    )


@workflow.defn(name=HOLDER_WORKFLOW)
class CollectorQueue:
    @workflow.init
    def __init__(self, state: q.HolderState) -> None:
        self._s = state

    @workflow.update(name=UPDATE_HOLD)
    def hold(self, events: list[q.HeldEvent]) -> int:
        """Queue events; returns how many components this holder keeps."""
        for held in events:
            if held.seq <= self._s.floor:
                continue  # a late retry of a hand-over that a take already saw
            current = self._s.queue.get(held.event.component)
            if current is not None and current.seq >= held.seq:
                continue  # the same hand-over again, or an older one
            if supersedes(held.event, current.event if current else None):
                self._s.queue[held.event.component] = held
        return len(self._s.queue)

    @workflow.update(name=UPDATE_TAKE)
    def take(self, order: q.TakeOrder) -> q.TakeAnswer:
        """Give up the picked components (those still at the picked seq)."""
        if order.take_id != self._s.last_take:
            self._s.last_take = order.take_id
            self._s.taken = []
            for component, seq in sorted(order.picks.items()):
                held = self._s.queue.get(component)
                if held is not None and held.seq == seq:
                    self._s.taken.append(self._s.queue.pop(component))
            self._s.floor = max(self._s.floor, order.floor)
        return q.TakeAnswer(taken=list(self._s.taken), size=len(self._s.queue))

    @workflow.query(name=QUERY_HELD)
    def held(self, take_id: str = "") -> q.HeldContents:
        taken = self._s.taken if take_id and take_id == self._s.last_take else []
        return q.HeldContents(queue=list(self._s.queue.values()), taken=list(taken))

    @workflow.run
    async def run(self, state: q.HolderState) -> None:
        await workflow.wait_condition(
            lambda: workflow.info().is_continue_as_new_suggested()
            or workflow.info().get_current_history_length() > 5_000
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)
