"""The bridge's tag grouping (Forwarder): tags that arrive while a signal to the
collector is in flight go together in the next one, and each message's
result is that signal's, so none is acked before Temporal holds it."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from ebs.contracts.events import TagBatch, TagEvent
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, SIGNAL_TAG, SIGNAL_TAGS
from ebs.ingest.decide import SignalTag
from ebs.ingest.forward import TAGS_PER_SIGNAL, Forwarder, GroupSender, Outcome


class FakeClient:
    """Records each signal-with-start; a test holds the first one in flight."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.release = asyncio.Event()
        self.fail_with: RPCError | None = None

    async def start_workflow(self, workflow: str, arg: Any, **kw: Any) -> None:
        assert workflow == "BatchCollector" and kw["id"] == COLLECTOR_WORKFLOW_ID
        (signal_arg,) = kw["start_signal_args"]
        self.sent.append((kw["start_signal"], signal_arg))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with


def tag(n: int) -> SignalTag:
    return SignalTag(TagEvent(f"pkg-{n:03d}", f"pkg-{n:03d}-1-1.fc45", event_id=f"m-{n}"))


def forwarder(client: FakeClient) -> Forwarder:
    async def connect() -> Any:
        return client

    return Forwarder(connect, "ebs")


async def test_a_lone_tag_goes_at_once_as_the_single_tag_signal() -> None:
    client = FakeClient()
    client.release.set()
    result = await forwarder(client).forward(tag(1))
    assert result.outcome is Outcome.SIGNALLED and result.workflow_id == COLLECTOR_WORKFLOW_ID
    assert client.sent == [(SIGNAL_TAG, tag(1).event)]


async def test_tags_arriving_during_a_signal_go_together_in_the_next() -> None:
    client = FakeClient()
    fwd = forwarder(client)
    first = asyncio.create_task(fwd.forward(tag(0)))
    await asyncio.sleep(0)  # the first signal is in flight
    n = TAGS_PER_SIGNAL + 30
    rest = [asyncio.create_task(fwd.forward(tag(i))) for i in range(1, n + 1)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in [first, *rest]), "acked before Temporal answered"
    client.release.set()
    results = await asyncio.gather(first, *rest)
    assert all(r.outcome is Outcome.SIGNALLED for r in results)
    assert [s for s, _ in client.sent] == [SIGNAL_TAG, SIGNAL_TAGS, SIGNAL_TAGS]
    batches = [arg for _, arg in client.sent[1:]]
    assert all(isinstance(b, TagBatch) for b in batches)
    assert [len(b.events) for b in batches] == [TAGS_PER_SIGNAL, 30]
    sent = [client.sent[0][1]] + [e for b in batches for e in b.events]
    assert sent == [tag(i).event for i in range(n + 1)], "each once, in arrival order"


async def test_a_failed_group_requeues_each_of_its_messages_and_the_next_goes_on() -> None:
    client = FakeClient()
    fwd = forwarder(client)
    client.fail_with = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    first = asyncio.create_task(fwd.forward(tag(0)))
    await asyncio.sleep(0)
    group = [asyncio.create_task(fwd.forward(tag(i))) for i in (1, 2, 3)]
    client.release.set()
    results = await asyncio.gather(first, *group)
    assert [r.outcome for r in results] == [Outcome.UNAVAILABLE] * 4
    client.fail_with = None
    assert (await fwd.forward(tag(4))).outcome is Outcome.SIGNALLED


async def test_a_caller_that_gives_up_does_not_stop_the_others() -> None:
    client = FakeClient()
    fwd = forwarder(client)
    first = asyncio.create_task(fwd.forward(tag(0)))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(fwd.forward(tag(1)))
    stayer = asyncio.create_task(fwd.forward(tag(2)))
    await asyncio.sleep(0)
    quitter.cancel()
    client.release.set()
    assert (await first).outcome is Outcome.SIGNALLED
    assert (await stayer).outcome is Outcome.SIGNALLED
    # (the cancelled caller's message was sent anyway: its bridge callback
    # requeues it, and the collector takes the redelivery as a no-op)
    assert [e.component for e in client.sent[1][1].events] == ["pkg-001", "pkg-002"]


async def test_sends_start_at_least_min_interval_apart_and_the_wait_gathers_more() -> None:
    """The collector gets gaps between signals (see TAGS_MIN_INTERVAL): a send
    waits out the interval since the last one started, and what arrives
    meanwhile joins it."""
    sent: list[list[int]] = []
    pauses: list[float] = []
    more: list[asyncio.Task[None]] = []

    async def send(items: list[int]) -> None:
        sent.append(items)

    async def sleep(seconds: float) -> None:  # no real waiting: record it
        pauses.append(seconds)
        more.extend(asyncio.create_task(sender.submit(n)) for n in (3, 4))
        await asyncio.sleep(0)

    sender: GroupSender[int, None] = GroupSender(send, 10, min_interval=5.0, sleep=sleep)
    await sender.submit(1)  # after a quiet spell: at once
    await sender.submit(2)  # right after: waits, and 3 and 4 arrive meanwhile
    await asyncio.gather(*more)
    assert sent == [[1], [2, 3, 4]]
    assert len(pauses) == 1 and 4.9 < pauses[0] <= 5.0
