"""The chaos suite's stack: real processes, killable at chosen moments.

* `TemporalServer`: `temporal server start-dev` as a child process on a fixed
  port with a SQLite file, so it can be SIGKILLed and restarted with every
  workflow intact.
* `World`: one simulator (Koji + Bodhi over HTTP, in this process so faults
  can be scripted and its state read), one ebs config file, one task queue and
  `ebs worker` subprocesses on it. Several worlds share one Temporal server
  without seeing each other.
* `Outcome`: what a finished run did to Koji and Bodhi, counted from the
  simulator: duplicate build tasks, side tags left behind, builds filed in
  more than one Bodhi update, packages without a final state.

A batch is started directly as a RebuildBatch (no collector, no lull) unless
a scenario is about the collector or the bridge.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import koji
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import (
    BatchRequest,
    BatchResult,
    BatchSettings,
    PackageResult,
    PackageState,
)
from ebs.contracts.events import TagEvent
from ebs.devstack.processes import Child, ebs_command, free_port, port_open
from ebs.devstack.temporal import dev_server_argv
from ebs.devstack.waiting import eventually, until
from ebs.simulator import ListSink, Simulator
from ebs.simulator.sinks import MessageSink
from ebs.temporal_client import connect_to
from ebs.workflows.batch import RebuildBatch
from tests.helpers.config import write_config

ROOT = Path(__file__).resolve().parents[2]

# The standard chaos batch: two slices (llvm first), a retry that succeeds
# (glibc), a package that fails every attempt (rust), one that is built but not
# tagged into the side tag (fedora-release), and a Bodhi update.
STANDARD_PACKAGES = ["bash", "coreutils", "fedora-release", "glibc", "llvm", "rust"]
STANDARD_OUTCOMES = {"glibc": ["FAILED", "CLOSED"], "rust": ["FAILED"] * 3}
STANDARD_CONTROL: dict[str, Any] = {
    "ordering": {"^llvm$": 0},
    "skip_tag": ["^fedora-release$"],
}
# What an undisturbed run of the standard batch ends with, per package:
# (state, attempts, build tasks, ELN NVR, filed in Bodhi); see `signature`.
# The crash tests check their undisturbed run against it.
STANDARD_EXPECTED: dict[str, tuple[Any, ...]] = {
    "bash": ("stable", 1, 1, "bash-5.2.37-1.eln150", True),
    "coreutils": ("stable", 1, 1, "coreutils-9.6-2.eln150", True),
    "fedora-release": ("stable", 1, 1, "fedora-release-45-0.4.eln150", True),
    "glibc": ("stable", 2, 2, "glibc-2.41.9000-5.eln150", True),
    "llvm": ("stable", 1, 1, "llvm-20.1.3-1.eln150", True),
    "rust": ("failed", 3, 3, "", False),
}
BUILD_SECONDS = 1.5  # long enough to find the batch waiting on its tasks


# ---- Temporal ---------------------------------------------------------------------


class TemporalServer:
    """`temporal server start-dev --db-filename F` on a fixed port: `kill()` is a
    crash (SIGKILL), `start()` again resumes from the SQLite file."""

    def __init__(self, workdir: Path, namespaces: Sequence[str] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db = workdir / "temporal.db"
        self.log = workdir / "temporal.log"
        self.namespaces = list(namespaces)
        self.child = Child("temporal", self.argv(), self.log)
        self.kills = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return dev_server_argv(self.port, db=self.db, namespaces=self.namespaces)

    async def start(self, timeout: float = 60.0) -> None:
        if self.alive():
            return
        self.child.start()
        await until(lambda: port_open(self.port) or not self.alive(), timeout, "Temporal's port")
        if not self.alive():
            raise RuntimeError(f"temporal exited: {self.log.read_text()[-2000:]}")

        async def answers() -> bool:
            try:
                client = await connect_to(self.address)
                for ns in ["default", *self.namespaces]:
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=ns)
                    )
                return True
            except Exception:
                return False

        await eventually(answers, timeout, "Temporal to answer", interval=0.1)

    def alive(self) -> bool:
        return self.child.alive()

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown."""
        if self.alive():
            self.child.kill()
            self.kills += 1

    def stop(self) -> None:
        self.child.stop()


# ---- ebs processes ------------------------------------------------------------------


class Process(Child):
    """An `ebs` subcommand (or any argv) in a child process with its own log,
    run from the checkout (cwd and PYTHONPATH)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(log.stem, argv, log, env={"PYTHONPATH": str(ROOT), **(env or {})},
                         cwd=ROOT, new_session=False)


ebs_argv = ebs_command


# ---- what a run did -----------------------------------------------------------------


@dataclass
class Outcome:
    """Invariants counted from the simulator after a run."""

    packages: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    batch_outcome: str = ""
    duplicate_tasks: int = 0
    leaked_side_tags: list[str] = field(default_factory=list)
    duplicate_updates: int = 0
    lost_packages: list[str] = field(default_factory=list)
    build_tasks: int = 0
    updates: int = 0

    @property
    def duplicates(self) -> int:
        return self.duplicate_tasks + self.duplicate_updates

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.leaked_side_tags or self.lost_packages)

    def problems(self) -> str:
        return (
            f"duplicate tasks {self.duplicate_tasks}, duplicate updates "
            f"{self.duplicate_updates}, leaked side tags {self.leaked_side_tags}, "
            f"lost packages {self.lost_packages}"
        )


FINAL_STATES = {PackageState.STABLE.value, PackageState.FAILED.value,
                PackageState.SUCCEEDED.value}


def signature(p: PackageResult) -> tuple[Any, ...]:
    """What 'the same per-package result' means: state, attempts, tasks used,
    the ELN NVR and whether it went to Bodhi (update aliases differ per run)."""
    return (p.state, p.attempts, len(p.task_ids), p.nvr, bool(p.update_alias))


def live_side_tags(sim: Simulator) -> list[str]:
    return sorted(sim.summary()["side_tags"])


def duplicate_build_tasks(sim: Simulator) -> int:
    """Build tasks beyond the first for one source in one attempt workflow."""
    keys = Counter(
        (b["src"], (b["opts"].get("custom_user_metadata") or {}).get("ebs_workflow_id"))
        for b in sim.builds_submitted
    )
    return sum(n - 1 for n in keys.values())


def duplicate_update_builds(sim: Simulator) -> int:
    """Builds filed in more than one Bodhi update."""
    seen = Counter(nvr for u in sim.bodhi_app.updates() for nvr in u.builds)
    return sum(n - 1 for n in seen.values())


def outcome_of(sim: Simulator, requested: Iterable[str], result: BatchResult | None) -> Outcome:
    packages = {p.component: signature(p) for p in (result.packages if result else [])}
    finished = {p.component for p in (result.packages if result else [])
                if p.state in FINAL_STATES}
    return Outcome(
        packages=packages,
        batch_outcome=result.outcome if result else "",
        duplicate_tasks=duplicate_build_tasks(sim),
        leaked_side_tags=live_side_tags(sim),
        duplicate_updates=duplicate_update_builds(sim),
        lost_packages=sorted(set(requested) - finished),
        build_tasks=len(sim.builds_submitted),
        updates=len(sim.bodhi_app.updates()),
    )


# ---- a world: simulator + config + workers on one task queue ------------------------


class World:
    def __init__(
        self,
        name: str,
        server: TemporalServer,
        workdir: Path,
        *,
        seed: int = 7,
        sink: MessageSink | None = None,
        task_messages: str = "scratch",
        namespace: str = "default",
        control: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
        koji: dict[str, Any] | None = None,
        timers: dict[str, float] | None = None,
        stable_after: float = 1.0,
    ) -> None:
        self.name = name
        self.server = server
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.list_sink = ListSink()
        self.sim = Simulator(seed=seed, sink=sink or self.list_sink, task_messages=task_messages)
        self.sim.start("127.0.0.1", 0)
        self.sim.bodhi_app.stable_after = stable_after
        self.namespace = namespace
        self.task_queue = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
        self.config = write_config(
            workdir / "ebs.yaml", self.sim, server.address, self.task_queue,
            namespace=namespace, control=control, email=email, koji=koji, timers=timers,
        )
        self.workers: list[Process] = []
        self.kills = 0
        self._client: Client | None = None

    # -- Temporal
    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect_to(self.server.address, namespace=self.namespace)
        return self._client

    # -- workers
    def start_worker(self) -> Process:
        n = len(self.workers) + 1
        worker = Process(
            ebs_argv("worker", "--config", str(self.config)), self.workdir / f"worker-{n}.log"
        ).start()
        self.workers.append(worker)
        return worker

    async def start_worker_ready(self, within: float = 60.0) -> Process:
        """Start a worker and wait until it polls its task queue."""
        worker = self.start_worker()
        await until(
            lambda: " on task queue " in worker.tail(200) or not worker.alive(),
            within, f"{self.name}: the worker to start", interval=0.05,
        )
        if not worker.alive():
            raise AssertionError(f"{self.name}: the worker exited:\n{worker.tail()}")
        return worker

    def live_workers(self) -> list[Process]:
        return [w for w in self.workers if w.alive()]

    def kill_worker(self) -> None:
        """SIGKILL every live worker of this world."""
        for worker in self.live_workers():
            worker.kill()
            self.kills += 1

    def crash_and_restart(self) -> Process:
        self.kill_worker()
        return self.start_worker()

    def worker_logs(self, lines: int = 30) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.tail(lines)}" for w in self.workers)

    # -- batches
    def settings(self) -> BatchSettings:
        holder = ConfigHolder(str(self.config))
        holder.load()
        return holder.batch_settings()

    def latest_nvr(self, name: str) -> str:
        """The latest build of `name` in the trigger tag, read from the simulated
        world directly (not over the hub, which a test may be making fail)."""
        for nvr in self.sim.koji_view().tagged_nvrs(self.sim.layout.trigger_tag):
            if koji.parse_NVR(nvr)["name"] == name:
                return nvr
        raise LookupError(f"no build of {name} in {self.sim.layout.trigger_tag}")

    def tag_event(self, name: str) -> TagEvent:
        return TagEvent(component=name, nvr=self.latest_nvr(name),
                          tag=self.sim.layout.trigger_tag, event_id=f"chaos-{uuid.uuid4()}")

    def script_standard(self, build_seconds: float = BUILD_SECONDS) -> None:
        self.sim.set_duration(None, build_seconds)
        for name, outcomes in STANDARD_OUTCOMES.items():
            self.sim.set_outcomes(name, list(outcomes))

    async def start_batch(self, names: Sequence[str]) -> WorkflowHandle[Any, BatchResult]:
        settings = await asyncio.to_thread(self.settings)
        events = await asyncio.to_thread(lambda: [self.tag_event(n) for n in names])
        batch_id = f"ebs-batch-{self.name}-{uuid.uuid4().hex[:8]}"
        client = await self.client()
        return await client.start_workflow(
            RebuildBatch.run, BatchRequest(batch_id, events, settings),
            id=batch_id, task_queue=self.task_queue,
        )

    async def result(self, handle: WorkflowHandle[Any, BatchResult], within: float
                     ) -> BatchResult:
        try:
            return await asyncio.wait_for(handle.result(), within)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: batch not finished after {within:.0f} s\n{self.worker_logs()}"
            ) from None

    def outcome(self, names: Iterable[str], result: BatchResult | None) -> Outcome:
        return outcome_of(self.sim, names, result)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(20)
        self.sim.stop()


# ---- where a workflow stands ------------------------------------------------------


async def quiescent(client: Client, workflow_id: str) -> bool:
    """No activity and no workflow task in flight in the workflow or its running
    children: a worker killed now dies between activities."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return False
    raw = desc.raw_description
    if raw.pending_activities or raw.HasField("pending_workflow_task"):
        return False
    for child in raw.pending_children:
        if not await quiescent(client, child.workflow_id):
            return False
    return True


async def children(client: Client, workflow_id: str) -> list[str]:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return [c.workflow_id for c in desc.raw_description.pending_children]


async def closed(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return desc.status != WorkflowExecutionStatus.RUNNING
