"""The engine under test: a real worker on the time-skipping Temporal server,
talking to the simulator over HTTP through the real Koji and Bodhi adapters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.config.model import EbsConfig
from ebs.config.packages import build_package_lists
from ebs.contracts.batch import BatchRequest, BatchResult, BatchSettings
from ebs.contracts.collector import CollectorState
from ebs.contracts.events import TagEvent
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID
from ebs.devstack.waiting import eventually
from ebs.koji.adapter import KojiAdapter
from ebs.simulator import ListSink, Simulator
from ebs.worker import build_worker
from ebs.workflows.batch import RebuildBatch
from ebs.workflows.collector import BatchCollector


def engine_config(sim: Simulator, **sections: Any) -> EbsConfig:
    """A sandbox-like config pointing at `sim`; `sections` overrides, e.g.
    control={"skip_tag": [...]}, bodhi={"batch_size": 2}, timers={...}."""
    koji = {
        "server": sim.hub_url,
        "weburl": sim.weburl,
        "trigger_tag": sim.layout.trigger_tag,
        "build_target": "eln",
        "stable_tag": "eln",
        "fail_fast": True,
        "username": sim.koji_user,
        **sections.pop("koji", {}),
    }
    bodhi = {"url": sim.bodhi_url, "auth": {"method": "none"}, **sections.pop("bodhi", {})}
    data: dict[str, Any] = {
        "configuration": {
            "koji": koji,
            "bodhi": bodhi,
            "control": sections.pop("control", {}),
            "email": sections.pop("email", None),
        },
        "timers": {
            "lull": 60,
            "task_poll": 300,
            "repo_poll": 60,
            "stable_poll": 600,
            **sections.pop("timers", {}),
        },
    }
    assert not sections, f"unknown sections {sections}"
    return EbsConfig.model_validate(data)


@dataclass
class Engine:
    env: WorkflowEnvironment
    sim: Simulator
    holder: ConfigHolder
    koji: KojiAdapter
    task_queue: str
    _worker: Any = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        return self.env.client

    def configure(self, **sections: Any) -> None:
        """Replace the running config (as a refresh would)."""
        cfg = engine_config(self.sim, **sections)
        self.holder._state = ConfigHolder.fixed(  # noqa: SLF001 - test seam
            cfg, _package_lists(self.sim, cfg), trigger_tag=self.sim.layout.trigger_tag
        )._state

    def mail_to(self, port: int, **sections: Any) -> None:
        """Configure email to a local SMTP server on `port`."""
        self.configure(
            email={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_username": "",
                "from": "ebs@example.org",
                "recipients": ["eln-list@example.org"],
                "starttls": False,
            },
            **sections,
        )

    def settings(self) -> BatchSettings:
        return self.holder.batch_settings()

    def tag_event(self, name: str) -> TagEvent:
        builds = self.sim.session().getLatestBuilds(self.sim.layout.trigger_tag, package=name)
        nvr = builds[0]["nvr"] if builds else f"{name}-0-0.missing"
        return TagEvent(component=name, nvr=nvr, tag=self.sim.layout.trigger_tag,
                          event_id=f"test-{uuid.uuid4()}")

    async def start_batch(self, names: list[str], batch_id: str | None = None
                          ) -> WorkflowHandle[Any, BatchResult]:
        batch_id = batch_id or f"ebs-batch-test-{uuid.uuid4().hex[:8]}"
        return await self.client.start_workflow(
            RebuildBatch.run,
            BatchRequest(batch_id, [self.tag_event(n) for n in names], self.settings()),
            id=batch_id,
            task_queue=self.task_queue,
        )

    async def run_batch(self, names: list[str]) -> BatchResult:
        handle = await self.start_batch(names)
        return await handle.result()

    async def batch_status_until(self, handle: WorkflowHandle[Any, Any],
                                 pred: Callable[[BatchResult], bool],
                                 within: float = 60.0) -> BatchResult:
        """Query the batch's status until `pred` holds on it (returned), moving
        the test server's clock 5 s between queries: queries do not unlock time
        skipping, so a timer (the 60 s repo poll) would otherwise run in real time."""

        async def check() -> BatchResult | None:
            status = await handle.query(RebuildBatch.status)
            if pred(status):
                return status
            await self.env.sleep(5)
            return None

        return await eventually(check, within, "the batch's status")

    async def start_collector(self, state: CollectorState | None = None
                              ) -> WorkflowHandle[Any, None]:
        return await self.client.start_workflow(
            BatchCollector.run,
            state or CollectorState(),
            id=f"{COLLECTOR_WORKFLOW_ID}-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
        )


def _package_lists(sim: Simulator, cfg: EbsConfig) -> Any:
    names = {n: "sim" for (n, _v, _r) in sim.layout.packages}
    return build_package_lists(names, cfg.components.overrides)


@pytest.fixture
def engine_sim() -> Iterator[Simulator]:
    s = Simulator(seed=7, sink=ListSink())
    s.start("127.0.0.1", 0)
    s.bodhi_app.stable_after = 0.05  # Bodhi pushes at once; tests that need a wait say so
    try:
        yield s
    finally:
        s.stop()


@pytest_asyncio.fixture
async def engine(time_skipping_env: WorkflowEnvironment, engine_sim: Simulator
                 ) -> AsyncIterator[Engine]:
    cfg = engine_config(engine_sim)
    holder = ConfigHolder.fixed(
        cfg, _package_lists(engine_sim, cfg), trigger_tag=engine_sim.layout.trigger_tag
    )
    koji = KojiAdapter(cfg.configuration.koji, timeout=30, tag_wait=10)
    bodhi = BodhiAdapter(cfg.configuration.bodhi)
    queue = f"ebs-test-{uuid.uuid4().hex[:8]}"
    eng = Engine(time_skipping_env, engine_sim, holder, koji, queue)
    worker = build_worker(
        time_skipping_env.client, holder=holder, koji=koji, bodhi=bodhi, task_queue=queue
    )
    async with worker:
        eng._worker = worker
        yield eng
    koji.close()
