"""End to end on the real stack: the real ``ebs worker`` process on a Temporal
dev server, against the real Koji hub 1.35.3 (stand-in builder, 1.35-style
kojira) and the real Bodhi 26.4.0.

* a batch through the collector, as the bus bridge starts one: side tag
  seeded from Rawhide builds, a skip_tag package, two ordering slices, a
  package failing once then built, one failing every attempt, drafts
  promoted, an errata side tag, a Bodhi update taken to stable by Bodhi's own
  path (signer + approve_testing), every side tag gone at the end;
* the worker SIGKILLed right after the hub accepted ``build``: no duplicate
  task on the hub;
* a batch cancelled from Temporal cancels its real Koji tasks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import koji
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchRequest, BatchResult
from ebs.contracts.collector import CollectorState, CollectorStatus
from ebs.contracts.events import TagEvent
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS, SIGNAL_TAG
from ebs.temporal_client import connect_to
from ebs.workflows.batch import RebuildBatch
from tests.realstack import bodhi_fixtures
from tests.realstack.bodhi_stack import BodhiServer
from tests.realstack.e2e_stack import (
    EBS_USER,
    EbsWorker,
    HoldBuildAnswerProxy,
    Seeded,
    TemporalDevServer,
    build_tasks,
    seed_rawhide,
    write_ebs_config,
)
from tests.realstack.koji_stack import TRIGGER_TAG, KojiStack
from tests.realstack.oidc_provider import RunningOidcProvider

pytestmark = [pytest.mark.realstack, pytest.mark.timeout(300)]

oidc_provider = bodhi_fixtures.oidc_provider
bodhi_server = bodhi_fixtures.bodhi_server
bodhi_signer = bodhi_fixtures.bodhi_signer

T = TypeVar("T")
CLOSED, CANCELED = koji.TASK_STATES["CLOSED"], koji.TASK_STATES["CANCELED"]


@pytest.fixture(scope="module")
def temporal() -> Iterator[TemporalDevServer]:
    with TemporalDevServer() as server:
        yield server


# One task queue for the module's dev server, as one deployment has: the
# singleton workflows a test leaves (the ComponentLedger, the collector) are
# served by the next test's worker, as production's restarted workers do.
QUEUE = f"e2e-{uuid.uuid4().hex[:8]}"


class Run:
    """One test's worker, config and Temporal client."""

    def __init__(self, stack: KojiStack, bodhi: BodhiServer, oidc: RunningOidcProvider,
                 temporal: TemporalDevServer, tmp: Path) -> None:
        self.stack, self.bodhi, self.oidc, self.temporal, self.tmp = (
            stack, bodhi, oidc, temporal, tmp)
        self.queue = QUEUE
        self.home = tmp / "home"
        self.home.mkdir()
        self.workers: list[EbsWorker] = []
        self.config = Path()
        self.client: Client | None = None

    def configure(self, components: list[str], **kw: Any) -> Path:
        provider = self.oidc.provider
        token = provider.token_file(self.tmp / "bodhi-token.json",
                                    provider.issue(EBS_USER, groups=["packager"]))
        # Also where bodhi-client looks by default (the Kerberos method reads a
        # pre-seeded store there): the token-file method names it explicitly.
        provider.token_file(self.home / ".config" / "bodhi" / "client.json",
                            provider.issue(EBS_USER, groups=["packager"]))
        self.config = write_ebs_config(
            self.tmp, self.stack, bodhi_url=self.bodhi.url, bodhi_token=token,
            oidc_url=self.oidc.url, temporal_address=self.temporal.address,
            task_queue=self.queue, components=components, **kw)
        return self.config

    def start_worker(self) -> EbsWorker:
        worker = EbsWorker(self.config, self.tmp / "worker.log", self.home).start()
        self.workers.append(worker)
        return worker

    @property
    def worker(self) -> EbsWorker:
        return self.workers[-1]

    def check(self) -> None:
        self.worker.check_alive()

    async def connect(self) -> Client:
        self.client = await connect_to(self.temporal.address)
        return self.client

    async def until(self, pred: Callable[[], Awaitable[T | None]], timeout: float,
                    what: str, every: float = 0.1) -> T:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            value = await pred()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                                     f"worker log:\n{self.worker.log_tail()}")
            await asyncio.sleep(every)

    async def koji(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def run(koji_stack_fresh: KojiStack, bodhi_server: BodhiServer,
        oidc_provider: RunningOidcProvider, temporal: TemporalDevServer,
        tmp_path: Path) -> Iterator[Run]:
    r = Run(koji_stack_fresh, bodhi_server, oidc_provider, temporal, tmp_path)
    try:
        yield r
    finally:
        r.close()


def tag_event(seeded: Seeded, run_id: str) -> TagEvent:
    """What the bus bridge signals for a buildsys.tag message into the trigger tag."""
    return TagEvent(component=seeded.name, nvr=seeded.nvr, build_id=seeded.build_id,
                    tag=TRIGGER_TAG, event_id=f"{run_id}:{seeded.name}",
                    tagged_at=time.time())


def tag_history(session: koji.ClientSession, nvr: str) -> list[str]:
    """The tags `nvr` was ever tagged into (Koji's tag_listing history)."""
    rows = session.queryHistory(tables=["tag_listing"], build=nvr)["tag_listing"]
    return sorted({r["tag.name"] for r in rows})


def side_tags_of_ebs(stack: KojiStack) -> set[str]:
    """The side tags the Koji user ebs owns now (other tests' included)."""
    admin = stack.admin()
    try:
        return {t["name"] for t in admin.listSideTags(user=EBS_USER)}
    finally:
        admin.logout()


def batch_settings(config: Path) -> Any:
    holder = ConfigHolder(str(config))
    holder.load()
    return holder.batch_settings()


# ------------------------------------------------------------------ the batch
@pytest.mark.timeout(480)
async def test_a_batch_goes_from_rawhide_tags_to_eln_stable(
        run: Run, bodhi_signer: Any, unique: str) -> None:
    stack = run.stack
    names = {role: f"{unique}{role}" for role in
             ("ok", "skip", "flaky", "broken", "early", "late")}
    seeded = await run.koji(lambda: seed_rawhide(stack, list(names.values())))
    side_tags_before = await run.koji(lambda: side_tags_of_ebs(stack))
    stack.builder.script(names["flaky"], "fail", "succeed")
    stack.builder.script(names["broken"], "fail")
    run.configure(list(names.values()),
                  skip_tag=[f"^{names['skip']}$"],
                  ordering={f"^{names['early']}$": 500, f"^{names['late']}$": 2000})
    run.start_worker()
    client = await run.connect()

    # As the bus bridge does for each buildsys.tag message: signal-with-start.
    for s in seeded.values():
        await client.start_workflow(
            "BatchCollector", CollectorState(), id=COLLECTOR_WORKFLOW_ID,
            task_queue=run.queue, start_signal=SIGNAL_TAG,
            start_signal_args=[tag_event(s, run.queue)])
    collector = client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)

    async def current_batch() -> str:
        st = await collector.query(QUERY_STATUS, result_type=CollectorStatus)
        return st.current_batch_id

    batch_id = await run.until(current_batch, 60, "the collector to start a batch")
    batch: WorkflowHandle[Any, BatchResult] = client.get_workflow_handle(
        batch_id, result_type=BatchResult)

    # Bodhi's own path to stable: the signer signs, approve_testing pushes.
    seen_side_tags: set[str] = set()

    async def filed() -> BatchResult | None:
        st = await batch.query(QUERY_STATUS, result_type=BatchResult)
        seen_side_tags.update(st.side_tags)
        seen_side_tags.update(st.errata_tags)
        return st if st.updates and st.errata_tags else None

    status = await run.until(filed, 300, "the Bodhi update")
    errata = status.errata_tags[-1]
    update_nvrs = sorted(p.nvr for p in status.packages if p.update_alias)
    signer = bodhi_signer
    await run.koji(lambda: run.bodhi.sign(signer, errata, update_nvrs))
    pushed = await run.koji(run.bodhi.approve_testing)
    assert any(f"Automatically marking {status.updates[0]} as stable" in line
               for line in pushed), pushed
    result = await asyncio.wait_for(batch.result(), timeout=150)

    pkgs = {p.component: p for p in result.packages}
    states = {role: pkgs[n].state for role, n in names.items()}
    assert states == {"ok": "stable", "skip": "stable", "flaky": "stable",
                      "broken": "failed", "early": "stable", "late": "stable"}, (
        result, run.worker.log_tail())
    assert result.outcome == "partial"
    assert pkgs[names["flaky"]].attempts == 2
    assert pkgs[names["broken"]].attempts == 3  # stops once the failures stop shrinking

    admin = await run.koji(stack.admin)
    try:
        build_side = [t for t in seen_side_tags if t != errata]
        assert len(build_side) == 1, seen_side_tags
        side = build_side[0]
        # Side tag seeded from the Rawhide builds, except the skip_tag one.
        for role, n in names.items():
            history = tag_history(admin, seeded[n].nvr)
            assert (side in history) is (role != "skip"), (role, history)
        # Two ordering slices (and the default one between): every build of a
        # lower slice closed before the next slice's first task was created.
        def task(tid: int) -> dict[str, Any]:
            info: dict[str, Any] = admin.getTaskInfo(tid)
            return info
        first = {role: min(task(t)["create_ts"] for t in pkgs[n].task_ids)
                 for role, n in names.items()}
        last_done = {role: max(task(t)["completion_ts"] for t in pkgs[n].task_ids)
                     for role, n in names.items()}
        middle = ("ok", "skip", "flaky", "broken")
        assert last_done["early"] <= min(first[r] for r in middle)
        assert max(last_done[r] for r in middle) <= first["late"]
        # Drafts built, promoted, in the errata side tag's update, stable in eln.
        eln = {b["nvr"] for b in admin.listTagged("eln")}
        for role, n in names.items():
            if role == "broken":
                continue
            build = admin.getBuild(pkgs[n].nvr)
            assert build["nvr"].endswith(".eln150") and not build["draft"], build
            assert build["task_id"] == pkgs[n].task_ids[-1]
            assert pkgs[n].nvr in eln
            assert errata in tag_history(admin, pkgs[n].nvr)
        # Every side tag gone: build and errata side tags (Bodhi removed the
        # errata one on stable, ebs the build one).
        for tag in seen_side_tags:
            assert admin.getTag(tag) is None, tag
        assert {t["name"] for t in admin.listSideTags(user=EBS_USER)} <= side_tags_before
        # Nothing built twice: one task per attempt per package.
        for role, n in names.items():
            ours = build_tasks(admin, seeded[n].src)
            assert [t["id"] for t in ours] == sorted(pkgs[n].task_ids), (role, ours)
    finally:
        admin.logout()
    # The update, as Bodhi sees it.
    alias = pkgs[names["ok"]].update_alias
    update = (await run.koji(lambda: run.bodhi.get(f"updates/{alias}")))["update"]
    assert update["status"] == "stable"
    assert update["from_tag"] == errata  # filed from the errata side tag
    assert sorted(b["nvr"] for b in update["builds"]) == update_nvrs
    assert len(update_nvrs) == 5
    final = await collector.query(QUERY_STATUS, result_type=CollectorStatus)
    assert final.recent_batches[-1].batch_id == batch_id
    assert final.recent_batches[-1].outcome == "partial"


# ------------------------------------------------------------------ the crash
async def test_worker_sigkill_right_after_build_accepted_makes_no_duplicate(
        run: Run, unique: str) -> None:
    """The worker reaches the hub through a proxy that keeps the hub's answer
    to the first ``build`` multicall: the hub has accepted the builds, the
    worker is SIGKILLed before it hears so; the next worker's retry of the
    submission finds the tasks (listTasks) instead of submitting again."""
    stack = run.stack
    names = [f"{unique}k{i}" for i in range(3)]
    seeded = await run.koji(lambda: seed_rawhide(stack, names))
    side_tags_before = await run.koji(lambda: side_tags_of_ebs(stack))
    proxy = HoldBuildAnswerProxy(stack.url).start()
    try:
        run.configure(names, scratch=True, hub_url=proxy.url)
        run.start_worker()
        client = await run.connect()
        events = [tag_event(seeded[n], run.queue) for n in names]
        batch_id = f"ebs-batch-e2e-crash-{uuid.uuid4().hex[:6]}"
        handle = await client.start_workflow(
            RebuildBatch.run, BatchRequest(batch_id, events, batch_settings(run.config)),
            id=batch_id, task_queue=run.queue)

        async def accepted() -> bool:
            return proxy.accepted.is_set()

        await run.until(accepted, 120, "the hub to accept the builds")
        run.worker.kill()
        first_log = run.worker.log_tail(100_000)
        run.start_worker()
        result = await asyncio.wait_for(handle.result(), timeout=150)
    finally:
        proxy.stop()
    admin = await run.koji(stack.admin)
    try:
        states = {p.component: p.state for p in result.packages}
        assert states == dict.fromkeys(names, "succeeded"), (result, run.worker.log_tail())
        pkgs = {p.component: p for p in result.packages}
        for n in names:
            tasks = build_tasks(admin, seeded[n].src)
            assert len(tasks) == 1, (n, tasks)
            assert tasks[0]["state"] == CLOSED
            assert pkgs[n].task_ids == [tasks[0]["id"]]
        assert {t["name"] for t in admin.listSideTags(user=EBS_USER)} <= side_tags_before
    finally:
        admin.logout()
    assert "submitted" not in first_log  # the first worker never heard the answer
    assert "submitted 0, reused 3" in run.worker.log_tail(100_000)
    assert proxy.build_requests == 1


# ------------------------------------------------------------------ the cancel
async def test_cancelling_a_batch_cancels_its_koji_tasks(run: Run, unique: str) -> None:
    stack = run.stack
    names = [f"{unique}c{i}" for i in range(2)]
    seeded = await run.koji(lambda: seed_rawhide(stack, names))
    for n in names:
        stack.builder.script(n, "hold")
    run.configure(names, scratch=True)
    run.start_worker()
    client = await run.connect()
    batch_id = f"ebs-batch-e2e-cancel-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow(
        RebuildBatch.run,
        BatchRequest(batch_id, [tag_event(seeded[n], run.queue) for n in names],
                     batch_settings(run.config)),
        id=batch_id, task_queue=run.queue)

    async def holding() -> bool:
        return set(stack.builder.held().values()) == set(names)

    await run.until(holding, 120, "the builds to run on the builder")
    status = await handle.query(QUERY_STATUS, result_type=BatchResult)
    side_tags = list(status.side_tags)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=90)
    assert isinstance(failure.value.cause, CancelledError)
    admin = await run.koji(stack.admin)
    try:
        for n in names:
            tasks = build_tasks(admin, seeded[n].src)
            assert len(tasks) == 1, tasks
            assert tasks[0]["state"] == CANCELED, (n, tasks[0], run.worker.log_tail())
        assert side_tags
        for tag in side_tags:
            assert admin.getTag(tag) is None, tag
    finally:
        admin.logout()
