"""BatchCollector: lull, one batch at a time, last tag wins, dedupe, pause,
manual enqueue and continue-as-new, on the time-skipping server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from ebs.api.control import Control
from ebs.contracts.batch import BatchResult
from ebs.contracts.collector import BatchTotals, CollectorState, CollectorStatus, QueueQuery
from ebs.contracts.events import EnqueueRequest, TagBatch, TagEvent
from ebs.contracts.names import QUERY_HELD
from ebs.contracts.queue import HeldContents
from ebs.devstack.waiting import eventually
from ebs.ingest.forward import TAGS_PER_SIGNAL
from ebs.workflows.collector import BatchCollector
from tests.helpers.engine import Engine


async def status(handle: WorkflowHandle[Any, Any]) -> CollectorStatus:
    return await handle.query(BatchCollector.status)


async def until(handle: WorkflowHandle[Any, Any], pred: Any, timeout: float = 20.0
                ) -> CollectorStatus:
    """Query the collector until pred(status) holds (real-clock deadline). A
    query that times out while the shared worker is busy (a batch of
    thousands in this process) is asked again."""
    seen: list[CollectorStatus | str] = ["no answer yet"]

    async def check() -> CollectorStatus | None:
        try:
            seen[0] = await status(handle)
        except RPCError as err:
            # (the server's deadline, or the client's: tonic's "Timeout expired")
            if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise
            seen[0] = f"query timed out: {err}"
            return None
        return seen[0] if pred(seen[0]) else None

    return await eventually(check, timeout, lambda: f"the condition; last status {seen[0]}",
                            interval=0.02)


async def batch_result(engine: Engine, batch_id: str) -> BatchResult:
    """Wait for a batch the collector started, skipping time meanwhile."""
    async with engine.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        return await engine.client.get_workflow_handle(
            batch_id, result_type=BatchResult
        ).result()


async def finish_current_batch(engine: Engine, handle: WorkflowHandle[Any, Any]) -> BatchResult:
    st = await until(handle, lambda s: s.current_batch_id)
    return await batch_result(engine, st.current_batch_id)


async def test_batch_starts_only_after_a_quiet_lull(engine: Engine) -> None:
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    st = await until(handle, lambda s: s.lull_deadline)
    first_deadline = st.lull_deadline
    await engine.env.sleep(40)
    await handle.signal(BatchCollector.tag, engine.tag_event("coreutils"))
    st = await until(handle, lambda s: s.lull_deadline != first_deadline)
    assert not st.current_batch_id and [e.component for e in st.queued] == ["bash", "coreutils"]
    await engine.env.sleep(40)  # 80 s after the first event, 40 s after the last
    assert not (await status(handle)).current_batch_id
    await engine.env.sleep(25)
    result = await finish_current_batch(engine, handle)
    assert sorted(p.component for p in result.packages) == ["bash", "coreutils"]
    st = await until(handle, lambda s: s.recent_batches)
    assert st.recent_batches[0].outcome == "succeeded" and st.recent_batches[0].packages == 2
    assert st.queued == []
    assert st.totals == BatchTotals(batches_started=1, batches_finished={"succeeded": 1},
                                      packages_built=2, packages_failed=0)


async def test_events_during_a_batch_wait_for_the_next_one(engine: Engine) -> None:
    engine.sim.set_duration("bash", 0.5)
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await engine.env.sleep(61)
    st = await until(handle, lambda s: s.current_batch_id)
    first = st.current_batch_id
    await handle.signal(BatchCollector.tag, engine.tag_event("coreutils"))
    await batch_result(engine, first)
    st = await until(handle, lambda s: not s.current_batch_id or s.current_batch_id != first)
    await engine.env.sleep(61)
    second = await finish_current_batch(engine, handle)
    assert [p.component for p in second.packages] == ["coreutils"]
    st = await until(handle, lambda s: len(s.recent_batches) == 2)
    assert [b.packages for b in st.recent_batches] == [1, 1]


async def test_last_tagged_build_wins_and_redelivery_is_a_no_op(engine: Engine) -> None:
    handle = await engine.start_collector()
    newer = engine.tag_event("bash")
    older = TagEvent("bash", "bash-5.0-1.fc45", tag=newer.tag, event_id="m-old",
                       tagged_at=2000.0)
    newer.tagged_at, newer.event_id = 1000.0, "m-new"
    # a revert: the older build is tagged later, so it wins
    await handle.signal(BatchCollector.tag, newer)
    await handle.signal(BatchCollector.tag, older)
    # a late, reordered copy of the first message changes nothing
    await handle.signal(BatchCollector.tag, newer)
    st = await until(handle, lambda s: s.queued and s.queued[0].nvr == "bash-5.0-1.fc45")
    assert len(st.queued) == 1
    # an out-of-order message with an earlier tag time loses too
    stale = TagEvent("bash", "bash-4.0-1.fc45", tag=newer.tag, event_id="m-stale",
                       tagged_at=1500.0)
    await handle.signal(BatchCollector.tag, stale)
    st = await until(handle, lambda s: s.queued)
    assert st.queued[0].nvr == "bash-5.0-1.fc45"
    # a redelivery is recognised by its message id alone: even a body that
    # would otherwise win (a later tag time) changes nothing
    replay = TagEvent("bash", "bash-6.0-1.fc45", tag=newer.tag, event_id="m-old",
                        tagged_at=3000.0)
    await handle.signal(BatchCollector.tag, replay)
    await handle.signal(BatchCollector.tag, TagEvent("zsh", "zsh-1-1.fc45", event_id="m-z"))
    st = await until(handle, lambda s: len(s.queued) == 2)
    assert [e.nvr for e in st.queued] == ["bash-5.0-1.fc45", "zsh-1-1.fc45"]


async def test_pause_holds_batches_and_resume_releases_them(engine: Engine) -> None:
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.pause)
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await engine.env.sleep(300)
    st = await until(handle, lambda s: s.paused)
    assert not st.current_batch_id and [e.component for e in st.queued] == ["bash"]
    await handle.signal(BatchCollector.resume)
    await engine.env.sleep(61)
    result = await finish_current_batch(engine, handle)
    assert [p.component for p in result.packages] == ["bash"]


async def test_config_pause_holds_batches(engine: Engine) -> None:
    engine.configure(control={"pause": True})
    handle = await engine.start_collector()
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await engine.env.sleep(600)
    st = await until(handle, lambda s: s.paused_by_config)
    assert not st.current_batch_id and not st.recent_batches and st.queued
    engine.configure(control={"pause": False})
    await engine.env.sleep(200)
    result = await finish_current_batch(engine, handle)
    assert [p.component for p in result.packages] == ["bash"]


async def test_enqueue_queues_eligible_and_rejects_the_rest(engine: Engine) -> None:
    engine.configure(control={"exclude": ["^glibc$"]})
    handle = await engine.start_collector()
    res = await handle.execute_update(
        BatchCollector.enqueue,
        EnqueueRequest(["bash", "glibc", "no-such-package"], source="cli", requested_by="me"),
    )
    assert [e.component for e in res.queued] == ["bash"]
    assert res.queued[0].nvr.endswith(".fc45") and res.queued[0].source == "cli"
    reasons = {r.component: r.reason for r in res.rejected}
    assert set(reasons) == {"glibc", "no-such-package"}
    assert "exclude" in reasons["glibc"] and "^glibc$" in reasons["glibc"]
    assert "package list" in reasons["no-such-package"]
    st = await status(handle)
    assert [e.component for e in st.queued] == ["bash"]


async def test_enqueue_validation_rejects_bad_names_before_history(engine: Engine) -> None:
    handle = await engine.start_collector()
    try:
        await handle.execute_update(BatchCollector.enqueue, EnqueueRequest(["bash;rm -rf"]))
    except Exception as err:  # WorkflowUpdateFailedError
        assert "not a package name" in str(err.__cause__ or err)
    else:
        raise AssertionError("the update was accepted")


async def test_continue_as_new_carries_the_queue_and_loses_no_signal(engine: Engine) -> None:
    handle = await engine.start_collector(CollectorState(history_limit=40))
    names = [f"pkg{i}" for i in range(60)]
    for name in names:
        await handle.signal(
            BatchCollector.tag, TagEvent(name, f"{name}-1-1.fc45", event_id=f"ev-{name}")
        )
    # redelivered messages after continue-as-new are still recognised (a
    # different body proves the id, not the content, decides)
    for name in names[:5]:
        await handle.signal(
            BatchCollector.tag,
            TagEvent(name, f"{name}-2-1.fc45", event_id=f"ev-{name}", tagged_at=9e9),
        )
    current = engine.client.get_workflow_handle(handle.id)
    deadline = time.monotonic() + 20
    while (await current.describe()).run_id == handle.first_execution_run_id:
        assert time.monotonic() < deadline, "the collector never continued as new"
        await asyncio.sleep(0.02)
    st = await until(current, lambda s: len(s.queued) == 60)
    assert sorted(e.component for e in st.queued) == sorted(names)
    assert {e.nvr.split("-", 1)[1] for e in st.queued} == {"1-1.fc45"}


async def test_a_queue_over_max_batch_packages_becomes_consecutive_batches(
    engine: Engine,
) -> None:
    engine.configure(control={"max_batch_packages": 2,
                              "ordering": {"^glibc$": 0, "^coreutils$": 10}})
    handle = await engine.start_collector()
    for name in ("bash", "coreutils", "glibc"):
        await handle.signal(BatchCollector.tag, engine.tag_event(name))
    st = await until(handle, lambda s: s.queue_length == 3)
    assert [e.component for e in st.queued] == ["bash", "coreutils", "glibc"]
    await engine.env.sleep(61)
    first = await finish_current_batch(engine, handle)
    # the lowest ordering goes first; the rest follows without another lull
    assert sorted(p.component for p in first.packages) == ["coreutils", "glibc"]
    second = await finish_current_batch(engine, handle)
    assert [p.component for p in second.packages] == ["bash"]
    st = await until(handle, lambda s: len(s.recent_batches) == 2)
    assert [b.packages for b in st.recent_batches] == [2, 1] and st.queue_length == 0


# ---- the queue holders (a mass rebuild) ------------------------------------------


async def held_queue(engine: Engine, handle: WorkflowHandle[Any, Any]) -> list[TagEvent]:
    """Every queued event: the collector's own page and every holder's."""
    page = await handle.query(BatchCollector.queued, QueueQuery(0, 1000))
    events = list(page.events)
    assert page.total == len(events)
    for hid in page.holders:
        held = await engine.client.get_workflow_handle(hid).query(
            QUERY_HELD, "", result_type=HeldContents)
        events += [h.event for h in held.queue]
    return events


def largest_payloads(history: Any) -> tuple[int, int]:
    """(the continue-as-new input's size, the largest event's size) in bytes."""
    can = 0
    for e in history.events:
        if e.HasField("workflow_execution_continued_as_new_event_attributes"):
            can = e.workflow_execution_continued_as_new_event_attributes.input.ByteSize()
    return can, max(e.ByteSize() for e in history.events)


async def test_holders_keep_the_rules_and_batches_take_each_package_once(
    engine: Engine,
) -> None:
    engine.configure(control={"max_batch_packages": 4, "ordering": {"^glibc$": 0}})
    handle = await engine.start_collector(CollectorState(hold_after=2, hand_over_at=2))
    names = ["bash", "coreutils", "glibc", "python3.13", "sed", "vim", "tar"]
    newer = {}
    for n in names:
        ev = engine.tag_event(n)
        ev.tagged_at = 1000.0
        newer[n] = ev
    # One signal, so one hand-over takes all seven. (Sent one by one, one or
    # two could stay with the collector, and the stale tag below then made a
    # third: handed over, the holder dropped it, and the count below never
    # reached 8.)
    await handle.signal(BatchCollector.tags, TagBatch([newer[n] for n in names]))
    # once handed over, the rules still hold: an older tag arriving late loses,
    # a redelivery is a no-op, a newer tag replaces the held one
    await until(handle, lambda s: s.held == len(names))
    stale = TagEvent("bash", "bash-0-0.fc45", event_id="m-stale", tagged_at=10.0)
    await handle.signal(BatchCollector.tag, stale)
    await handle.signal(BatchCollector.tag, newer["sed"])
    # (the collector cannot tell yet that its own `bash` loses to the held one:
    # it counts it until the hand-over at the next batch)
    await until(handle, lambda s: s.queue_length == 8)

    async def all_listed() -> list[TagEvent] | None:
        # (`held` counts a hand-over in flight; the holders list it once done)
        events = await held_queue(engine, handle)
        return events if len(events) == 8 else None

    events = await eventually(all_listed, 20, "the holders to list the hand-over")
    assert sorted(e.component for e in events) == sorted([*names, "bash"])
    # the API's paged listing merges them by the same rule
    total, page = await Control(engine.client, engine.task_queue).queue_page(
        2, 3, collector_id=handle.id)
    assert total == 7 and [e.component for e in page] == ["glibc", "python3.13", "sed"]
    await engine.env.sleep(61)
    first = await finish_current_batch(engine, handle)
    assert sorted(p.component for p in first.packages) == ["bash", "coreutils", "glibc",
                                                            "python3.13"]
    assert {p.component: p.rawhide_nvr for p in first.packages}["bash"] == newer["bash"].nvr
    second = await finish_current_batch(engine, handle)
    assert sorted(p.component for p in second.packages) == ["sed", "tar", "vim"]
    st = await until(handle, lambda s: len(s.recent_batches) == 2)
    assert st.queue_length == 0 and st.held == 0
    assert [b.outcome for b in st.recent_batches] == ["succeeded", "succeeded"]


TAGGED_DURING_A_BATCH = ["coreutils", "glibc", "sed", "tar", "vim"]


async def tags_during_a_batch(engine: Engine) -> WorkflowHandle[Any, Any]:
    """A collector running a batch (of bash, a build that ends only when
    told) that gets TAGGED_DURING_A_BATCH meanwhile, more than its
    `hand_over_at` (2); returns it once the batch has ended and the tags are
    held."""
    engine.sim.set_outcomes("bash", "HANG")
    handle = await engine.start_collector(CollectorState(hold_after=2, hand_over_at=2))
    await handle.signal(BatchCollector.tag, engine.tag_event("bash"))
    await engine.env.sleep(61)
    first = (await until(handle, lambda s: s.current_batch_id)).current_batch_id
    names = TAGGED_DURING_A_BATCH
    await handle.signal(BatchCollector.tags, TagBatch([engine.tag_event(n) for n in names]))
    st = await until(handle, lambda s: s.queue_length == len(names))
    assert st.current_batch_id == first and st.held == 0

    async def build_task() -> int | None:
        with engine.sim.world.lock:
            return next((t.id for t in engine.sim.world.tasks.values()
                         if t.method == "build" and t.completion_ts is None), None)

    engine.sim.finish_task(await eventually(build_task, 20, "bash's build task"))
    await batch_result(engine, first)
    await until(handle, lambda s: s.held == len(names))
    return handle


async def test_no_hand_over_while_a_batch_runs(engine: Engine) -> None:
    """Patch collector-hand-over-between-batches: tags that come during a
    batch stay with the collector (a hand-over could not let it continue as
    new then, and would only load the batch's worker); they go to the
    holders once the batch has ended, and the next batch takes them all."""
    handle = await tags_during_a_batch(engine)
    # in the history: the first hand-over comes after the batch ended
    history = await handle.fetch_history()
    kinds = [(e.event_type, e.activity_task_scheduled_event_attributes.activity_type.name)
             for e in history.events]
    ended = kinds.index((EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, ""))
    handed = kinds.index((EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "hold_queued"))
    assert ended < handed
    await engine.env.sleep(61)
    second = await finish_current_batch(engine, handle)
    assert sorted(p.component for p in second.packages) == TAGGED_DURING_A_BATCH


@pytest.mark.parametrize(("queued", "group"), [
    (800, 1),  # one `tag` signal each
    (3000, TAGS_PER_SIGNAL),  # grouped `tags` signals, as the bridge sends a burst
    pytest.param(30_000, TAGS_PER_SIGNAL, marks=pytest.mark.slow),  # the figure
])
async def test_continue_as_new_with_a_mass_rebuild_queued_loses_and_duplicates_nothing(
    engine: Engine, queued: int, group: int,
) -> None:
    """A mass rebuild's queue: N tags (one re-tagged, one redelivered)
    through several continue-as-new, every payload under 512 KB, then drained
    by batches that take each component exactly once."""
    engine.configure(control={"max_batch_packages": 5000}, timers={"lull": 1})
    handle = await engine.start_collector(
        # (grouped, 3,000 tags are ~30 signals: a low limit still continues as new)
        CollectorState(history_limit=400 if group == 1 else 60, hold_after=100,
                       hand_over_at=200))
    await handle.signal(BatchCollector.pause)
    names = [f"mass-rebuild-component-{i:05d}" for i in range(queued)]
    # Few signals in flight: the worker shares this process (and its GIL)
    # with the sender; the bridge's rate is a benchmark's business.
    gate = asyncio.Semaphore(4)

    async def tag(*events: TagEvent) -> None:
        async with gate:
            if len(events) == 1:
                await handle.signal(BatchCollector.tag, events[0])
            else:
                await handle.signal(BatchCollector.tags, TagBatch(list(events)))

    tags = [TagEvent(n, f"{n}-1-1.fc45", event_id=f"m-{n}", tagged_at=1000.0) for n in names]
    await asyncio.gather(*(tag(*tags[i : i + group]) for i in range(0, queued, group)))
    # a newer build of one, a redelivery (new body, same id) of another
    await tag(TagEvent(names[7], f"{names[7]}-2-1.fc45", event_id="m-new", tagged_at=2000.0))
    # (redelivered soon after the first delivery: message ids are remembered
    # for the last SEEN_EVENT_IDS events)
    again = names[-8]
    await tag(TagEvent(again, f"{again}-9-1.fc45", event_id=f"m-{again}",
                         tagged_at=3000.0))
    current = engine.client.get_workflow_handle(handle.id)
    # (the newer build of names[7] waits with the collector until the next
    # hand-over: until then it counts twice)
    st = await until(current, lambda s: s.queue_length >= queued and s.held > queued - 100,
                     300)
    deadline = time.monotonic() + 60
    while len(events := await held_queue(engine, current)) < queued:  # a hand-over runs
        assert time.monotonic() < deadline, len(events)
        await asyncio.sleep(0.2)
    assert len(events) - len({e.component for e in events}) <= 1
    nvrs: dict[str, str] = {}
    tagged: dict[str, float] = {}
    for e in events:  # the rule the holders apply at the next hand-over
        if e.component not in tagged or (e.tagged_at or 0) >= tagged[e.component]:
            nvrs[e.component], tagged[e.component] = e.nvr, e.tagged_at or 0
    assert set(nvrs) == set(names)
    assert nvrs[names[7]].endswith("-2-1.fc45") and nvrs[again].endswith("-1-1.fc45")

    # every run of the collector so far: small continue-as-new inputs and events
    runs, run_id = 0, handle.first_execution_run_id
    while run_id:
        history = await engine.client.get_workflow_handle(handle.id, run_id=run_id
                                                          ).fetch_history()
        can, biggest = largest_payloads(history)
        assert can < 512 * 1024 and biggest < 512 * 1024, (runs, can, biggest)
        runs += 1
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes")
                  else "")
    assert runs >= 2, "the collector never continued as new"

    await current.signal(BatchCollector.resume)
    batches = -(-queued // 5000)
    # (batches of 5,000 keep this process's worker busy: a status answer can
    # take a while, and a batch can start and end between two of them)
    async with engine.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        st = await until(current, lambda s: len(s.recent_batches) == batches, 600)
    taken: list[str] = []
    for summary in st.recent_batches:
        result = await batch_result(engine, summary.batch_id)
        taken += [p.component for p in result.packages]
        assert {p.rawhide_nvr for p in result.packages if p.component == names[7]} <= {
            nvrs[names[7]]}
    assert len(taken) == queued and set(taken) == set(names)
    assert st.queue_length == 0 and sum(b.packages for b in st.recent_batches) == queued
