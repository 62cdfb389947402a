"""What every ebs benchmark runs on: a Temporal dev server, the simulator and
an `ebs worker`, each measurable on its own.

* the dev server is `temporal server start-dev` as a child process (in-memory
  store), so its CPU time can be read;
* the simulator (Koji + Bodhi over HTTP) lives in the benchmark's process,
  with N synthetic packages, zero-time builds and a small repo delay;
* the worker is `python -m ebs worker --config FILE` as a child process, so
  its peak RSS is the worker's alone (sampled every 50 ms with psutil).

A batch is started directly as a RebuildBatch (no collector, no lull), like
tests/engine/test_worker_crash.py does, and measured from start to result.

Koji load comes from the simulator's call log: every top-level call it
records is one HTTP request to /kojihub (a multiCall is one request, whatever
it holds), with its time, so requests can be counted inside any time window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from temporalio.client import Client, WorkflowHandle  # noqa: E402

from ebs.config.holder import ConfigHolder  # noqa: E402
from ebs.contracts.batch import BatchRequest, BatchResult, BatchSettings  # noqa: E402
from ebs.contracts.events import TagEvent  # noqa: E402
from ebs.devstack import processes as devstack  # noqa: E402
from ebs.devstack.processes import free_port, port_open  # noqa: E402
from ebs.devstack.temporal import dev_server_argv  # noqa: E402
from ebs.devstack.waiting import eventually, wait_until  # noqa: E402
from ebs.simulator import NullSink, Simulator, WorldLayout  # noqa: E402
from ebs.simulator.hub import CallRecord  # noqa: E402
from ebs.simulator.seed import synthetic_packages  # noqa: E402
from ebs.simulator.sinks import MessageSink  # noqa: E402
from ebs.temporal_client import register_search_attributes  # noqa: E402
from ebs.workflows.batch import RebuildBatch  # noqa: E402
from tests.helpers.config import write_config  # noqa: E402

__all__ = ["Child", "free_port", "port_open", "wait_until", "write_config"]

RAWHIDE = 45


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        # other work on the machine skews wall times: the 1-minute load when measured
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


# ---- processes ----------------------------------------------------------------


class Sampler:
    """Peak RSS and CPU time of one process, sampled on a thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self._cpu_start = self._cpu()
        self._cpu_end: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"sampler-{pid}")
        self._thread.start()

    def _cpu(self) -> float:
        try:
            c = self.proc.cpu_times()
            return float(c.user + c.system)
        except psutil.Error:
            return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def reset(self) -> None:
        """Start counting CPU (and peak RSS) from now."""
        self._cpu_start = self._cpu()
        try:
            self.peak_rss = self.proc.memory_info().rss
        except psutil.Error:
            self.peak_rss = 0

    def stop(self) -> None:
        self._cpu_end = self._cpu()
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def cpu_seconds(self) -> float:
        end = self._cpu_end if self._cpu_end is not None else self._cpu()
        return end - self._cpu_start


class Child(devstack.Child):
    """A child process with its output in a log file, run from the checkout
    (or from `cwd`, another checkout)."""

    def __init__(self, name: str, argv: list[str], log: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        super().__init__(name, argv, log, env=env or {}, cwd=cwd or ROOT, new_session=False)


def start_dev_server(workdir: Path, dynamic_config: Iterable[str] = ()) -> tuple[Child, str]:
    """`temporal server start-dev` (in memory, no UI) with ebs's search attributes;
    `dynamic_config`: extra KEY=VALUE settings (the defaults are production's)."""
    port = free_port()
    argv = dev_server_argv(port, dynamic_config=dynamic_config)
    child = Child("temporal", argv, workdir / "temporal.log").start()
    wait_until(lambda: port_open(port) or not child.alive(), 60, "the Temporal dev server")
    if not child.alive():
        raise RuntimeError(f"the dev server exited:\n{child.tail()}")
    return child, f"127.0.0.1:{port}"


# ---- the stack ------------------------------------------------------------------


@dataclass
class StackOptions:
    packages: int = 1000
    task_poll: float = 2.0  # the poll path's interval (the fallback for lost messages)
    repo_delay: float = 0.2  # Koji repo regeneration, seconds
    stable_after: float = 0.05  # Bodhi pushes an update to stable after this many seconds
    stable_poll: float = 0.5  # the batch checks the stable tag this often
    multicall_chunk: int = 500
    attempt_chunk_size: int | None = None  # BatchSettings.attempt_chunk_size (None: default)
    scratch: bool = False
    task_messages: str = "scratch"  # the simulator: "scratch" (like Fedora) or "all"
    sink: MessageSink | None = None  # where the simulator publishes (default: nowhere)
    seed: int = 1
    worker_args: list[str] = field(default_factory=list)
    # Run the worker from another checkout (a scratch copy with a design change
    # to measure); the benchmark itself keeps using this one.
    engine: Path | None = None
    temporal_dynamic_config: list[str] = field(default_factory=list)
    keep_workdir: bool = False


@dataclass
class Stack:
    opts: StackOptions
    workdir: Path
    sim: Simulator
    temporal: Child
    address: str
    client: Client
    worker: Child
    worker_sampler: Sampler
    temporal_sampler: Sampler
    task_queue: str
    config_path: Path
    # sizes of payloads over Temporal's 512 KB warning limit (from the worker's log)
    payload_warnings: list[int] = field(default_factory=list)

    def settings(self) -> BatchSettings:
        holder = ConfigHolder(str(self.config_path))
        holder.load()
        s = holder.batch_settings()
        s = replace(s, scratch=self.opts.scratch)
        if self.opts.attempt_chunk_size is not None:
            s = replace(s, attempt_chunk_size=self.opts.attempt_chunk_size)
        return s

    def tag_events(self, count: int | None = None) -> list[TagEvent]:
        """The Rawhide builds of the first `count` packages, as the collector
        would hand them over."""
        pkgs = self.sim.layout.packages[: count or len(self.sim.layout.packages)]
        return [TagEvent(component=n, nvr=f"{n}-{v}-{r}.fc{RAWHIDE}",
                           tag=self.sim.layout.trigger_tag, event_id=f"bench-{n}")
                for (n, v, r) in pkgs]

    async def start_batch(self, events: list[TagEvent], batch_id: str | None = None,
                          settings: BatchSettings | None = None
                          ) -> WorkflowHandle[Any, BatchResult]:
        batch_id = batch_id or f"ebs-batch-bench-{uuid.uuid4().hex[:8]}"
        return await self.client.start_workflow(
            RebuildBatch.run,
            BatchRequest(batch_id, events, settings or self.settings()),
            id=batch_id,
            task_queue=self.task_queue,
        )


def engine_data_converter(engine: Path | None) -> Any:
    """The data converter the engine's clients use: an engine with
    ebs/payload_codec.py (a prototype under --engine) brings its own
    DATA_CONVERTER; else the default."""
    from temporalio.converter import DataConverter

    module = (engine or ROOT) / "ebs" / "payload_codec.py"
    if not module.exists():
        return DataConverter.default
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_engine_payload_codec", module)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DATA_CONVERTER


async def connect_when_healthy(address: str, data_converter: Any,
                               within: float = 60.0) -> Client:
    """Connect to a dev server just started: its port opens before its
    frontend is healthy ("Frontend is not healthy yet"), so try again."""
    last: list[Exception] = []

    async def attempt() -> Client | None:
        try:
            return await Client.connect(address, data_converter=data_converter)
        except RuntimeError as err:
            last[:] = [err]
            return None

    return await eventually(attempt, within, lambda: f"Temporal at {address}: {last}",
                            interval=0.2)


def tag_sender(handle: WorkflowHandle[Any, Any]) -> Any:
    """Signals tag events to a collector as the bridge does: those that come
    while a signal is in flight go together in one `tags` signal
    (ebs.ingest.forward.GroupSender); `await sender.submit(event)`."""
    from ebs.ingest.forward import TAGS_MIN_INTERVAL, TAGS_PER_SIGNAL, GroupSender, tag_signal

    async def send(events: list[TagEvent]) -> None:
        await handle.signal(*tag_signal(events))

    return GroupSender(send, TAGS_PER_SIGNAL, TAGS_MIN_INTERVAL)


@contextlib.asynccontextmanager
async def stack(opts: StackOptions) -> AsyncIterator[Stack]:
    """Dev server + simulator + worker process, torn down on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="ebs-bench-"))
    sim = Simulator(seed=opts.seed, sink=opts.sink or NullSink(),
                    layout=WorldLayout(packages=synthetic_packages(opts.packages)),
                    task_messages=opts.task_messages)
    sim.start("127.0.0.1", 0)
    sim.set_duration(None, 0.0)
    sim.set_repo_delay(opts.repo_delay)
    if sim.bodhi_app is not None:
        sim.bodhi_app.stable_after = opts.stable_after
    temporal: Child | None = None
    worker: Child | None = None
    samplers: list[Sampler] = []
    try:
        temporal, address = start_dev_server(workdir, opts.temporal_dynamic_config)
        client = await connect_when_healthy(address, engine_data_converter(opts.engine))
        await register_search_attributes(client, "default")
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        if isinstance(opts.sink, DirectBridge):
            opts.sink.attach(client, queue)
        config = write_config(workdir / "ebs.yaml", sim, address, queue,
                              koji={"multicall_chunk": opts.multicall_chunk},
                              timers={"task_poll": opts.task_poll,
                                      "stable_poll": opts.stable_poll})
        env = {"PYTHONPATH": str(opts.engine)} if opts.engine else None
        worker = Child("worker", [sys.executable, "-m", "ebs", "worker", "--config", str(config),
                                  *opts.worker_args], workdir / "worker.log", env=env,
                       cwd=opts.engine).start()
        await asyncio.to_thread(
            wait_until, lambda: " on task queue " in worker.tail(100_000)
            or not worker.alive(), 60, "the worker")
        if not worker.alive():
            raise RuntimeError(f"the worker exited:\n{worker.tail()}")
        samplers = [Sampler(worker.pid), Sampler(temporal.pid)]
        yield Stack(opts, workdir, sim, temporal, address, client, worker, samplers[0],
                    samplers[1], queue, config)
    finally:
        for s in samplers:
            s.stop()
        if worker is not None:
            worker.stop()
        if temporal is not None:
            temporal.stop()
        sim.stop()
        if not opts.keep_workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


class EngineError(RuntimeError):
    """The engine hit a wall (a Temporal limit, a failed workflow): the figure is
    "does not work at this size", with the reason."""


LIMIT_MARKERS = ("exceeded the error limit", "exceeds size limit", "BadSearchAttributes")
WARNING_MARKER = "exceeded the warning limit"


async def await_result(st: Stack, handle: WorkflowHandle[Any, Any] | Awaitable[Any],
                       timeout: float) -> Any:
    """The batch's result (or what `handle`, an awaitable, gives); raises
    EngineError as soon as the worker's log shows a Temporal size limit being
    hit (the SDK retries those for minutes)."""
    task = asyncio.ensure_future(
        handle.result() if isinstance(handle, WorkflowHandle) else handle)
    deadline = time.monotonic() + timeout
    offset = st.worker.log.stat().st_size
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                try:
                    return task.result()
                except Exception as err:
                    cause: BaseException = err
                    while cause.__cause__ is not None:
                        cause = cause.__cause__
                    raise EngineError(f"the batch failed: {cause}") from err
            with st.worker.log.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            for line in chunk.decode(errors="replace").splitlines():
                if WARNING_MARKER in line:
                    m = re.search(r"size=(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
                    st.payload_warnings.append(int(m.group(1)) if m else -1)
                if any(m in line for m in LIMIT_MARKERS):
                    raise EngineError(f"Temporal limit hit: {line.strip()[-300:]}")
            if time.monotonic() > deadline:
                raise EngineError(f"no result within {timeout:.0f} s")
    finally:
        task.cancel()


# ---- task messages without a broker ----------------------------------------------


@dataclass(frozen=True)
class _AllEligible:
    trigger_tag: str
    koji_user: str | None = None

    def is_eligible(self, component: str) -> bool:
        return True


@dataclass
class Delivery:
    """One task message: when the simulator published it, when Temporal accepted
    the signal (epoch seconds), and where it went."""

    task_id: int
    state: str
    workflow_id: str
    published: float
    signalled: float = 0.0
    outcome: str = ""


class DirectBridge:
    """A simulator sink that does the bus bridge's job in this process, without a
    broker: the bridge's own decision (ebs.ingest.decide) and forwarder
    (ebs.ingest.forward), `consumers` signals in flight at most, like the
    bridge's competing consumers. For runs where RabbitMQ is not the point."""

    def __init__(self, trigger_tag: str, koji_user: str, consumers: int = 8) -> None:
        self.trigger_tag = trigger_tag
        self.koji_user = koji_user
        self.consumers = consumers
        self.deliveries: list[Delivery] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forwarder: Any = None
        self._sem: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def attach(self, client: Client, task_queue: str) -> None:
        """Start forwarding (call on the event loop that owns `client`)."""
        from ebs.ingest.forward import Forwarder

        async def connect() -> Client:
            return client

        self._loop = asyncio.get_running_loop()
        self._forwarder = Forwarder(connect, task_queue)
        self._sem = asyncio.Semaphore(self.consumers)

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        from ebs.bus import full_topic
        from ebs.ingest.decide import Incoming, SignalTask, decide

        if self._loop is None:
            return
        decision = decide(Incoming(full_topic("prod", topic), str(uuid.uuid4()), body),
                          _AllEligible(self.trigger_tag, self.koji_user))
        if not isinstance(decision, SignalTask):
            return
        d = Delivery(decision.event.task_id, decision.event.state, decision.workflow_id,
                     time.time())
        with self._lock:
            self.deliveries.append(d)
        asyncio.run_coroutine_threadsafe(self._forward(decision, d), self._loop)

    async def _forward(self, decision: Any, d: Delivery) -> None:
        assert self._sem is not None
        async with self._sem:
            result = await self._forwarder.forward(decision)
        d.signalled = time.time()
        d.outcome = result.outcome.value


# ---- histories ----------------------------------------------------------------------


@dataclass
class HistoryStats:
    workflow_id: str
    events: int
    bytes: int  # len(history.to_json()), as `temporal workflow show --output json` prints it
    start: float  # epoch seconds
    close: float
    # protobuf bytes and seconds by what the events are about (activity type,
    # child workflow, signal, timer, workflow task ...)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    seconds_by_activity: dict[str, float] = field(default_factory=dict)
    activities: dict[str, int] = field(default_factory=dict)  # scheduled, by type


def _ts(event: Any) -> float:
    return float(event.event_time.ToDatetime().timestamp())


def _kind(event: Any, scheduled: dict[int, str]) -> str:
    which = event.WhichOneof("attributes") or "unknown"
    attrs = getattr(event, which, None)
    name = which.removesuffix("_event_attributes")
    if name == "activity_task_scheduled":
        return f"activity:{attrs.activity_type.name}"
    if name.startswith("activity_task_"):
        return scheduled.get(attrs.scheduled_event_id, "activity:?")
    if "child_workflow" in name:
        return "child workflows"
    if name == "workflow_execution_signaled":
        return f"signal:{attrs.signal_name}"
    if name.startswith("workflow_task_"):
        return "workflow tasks"
    if name.startswith("timer_"):
        return "timers"
    return name


def analyse_history(workflow_id: str, history: Any) -> HistoryStats:
    events = list(history.events)
    scheduled: dict[int, str] = {}
    started_at: dict[int, float] = {}
    sizes: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for e in events:
        kind = _kind(e, scheduled)
        if e.HasField("activity_task_scheduled_event_attributes"):
            scheduled[e.event_id] = kind
            count[kind] += 1
            started_at[e.event_id] = _ts(e)
        elif e.HasField("activity_task_completed_event_attributes"):
            sid = e.activity_task_completed_event_attributes.scheduled_event_id
            seconds[kind] += _ts(e) - started_at.get(sid, _ts(e))
        sizes[kind] += e.ByteSize()
    return HistoryStats(
        workflow_id,
        len(events),
        len(history.to_json()),
        _ts(events[0]) if events else 0.0,
        _ts(events[-1]) if events else 0.0,
        dict(sizes.most_common()),
        {k: round(v, 2) for k, v in seconds.most_common()},
        dict(count),
    )


async def history_stats(client: Client, workflow_id: str) -> HistoryStats:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return analyse_history(workflow_id, history)


async def child_ids(client: Client, batch_id: str) -> list[str]:
    """The batch's child workflows (BuildAttempts), from visibility."""
    ids = []
    async for wf in client.list_workflows(f"ParentWorkflowId = '{batch_id}'"):
        ids.append(wf.id)
    return sorted(ids)


async def all_history_stats(client: Client, batch_id: str,
                            expected_children: int | None = None) -> list[HistoryStats]:
    """The batch's history and its children's (visibility is eventually consistent:
    wait up to 10 s for the expected number of children)."""
    deadline = time.monotonic() + 10
    ids = await child_ids(client, batch_id)
    while expected_children is not None and len(ids) < expected_children \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        ids = await child_ids(client, batch_id)
    return [await history_stats(client, wid) for wid in [batch_id, *ids]]


def count_children_started(history_json: dict[str, Any]) -> int:
    return sum(1 for e in history_json.get("events", [])
               if e.get("eventType") in ("EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED",
                                          "StartChildWorkflowExecutionInitiated"))


# ---- Koji requests -------------------------------------------------------------------


def request_label(rec: CallRecord) -> str:
    """`method`, or `multiCall(getTaskInfo)` with the methods a multicall carried."""
    if rec.method != "multiCall":
        return rec.method
    calls = rec.args[0] if rec.args and isinstance(rec.args[0], list) else []
    inner = sorted({c.get("methodName", "?") for c in calls if isinstance(c, dict)})
    return f"multiCall({','.join(inner)})"


def hub_requests(calls: Iterable[CallRecord], start: float = 0.0,
                 end: float = float("inf")) -> Counter[str]:
    """HTTP requests to the hub in [start, end], by label."""
    return Counter(request_label(c) for c in calls
                   if not c.in_multicall and start <= c.at <= end)


def inner_calls(calls: Iterable[CallRecord], start: float = 0.0,
                end: float = float("inf")) -> Counter[str]:
    """Hub methods run in [start, end], multicalled or not."""
    return Counter(c.method for c in calls if c.method != "multiCall" and start <= c.at <= end)


# ---- command line -----------------------------------------------------------------


def add_common_options(p: Any) -> None:
    p.add_argument("--out", type=Path, help="append the JSON line to this file")
    p.add_argument("--engine", type=Path,
                   help="run the worker from this checkout (a scratch copy with a change "
                   "to measure) instead of this one")
    p.add_argument("--temporal-config", action="append", default=[], metavar="KEY=VALUE",
                   help="dev server dynamic config (repeatable), e.g. "
                   "limit.searchAttributesSizeOfValue=65536")
    p.add_argument("--keep", action="store_true", help="keep the logs' temporary directory")


def common_options(a: Any) -> dict[str, Any]:
    return {"engine": a.engine, "temporal_dynamic_config": list(a.temporal_config),
            "keep_workdir": a.keep}


# ---- output ---------------------------------------------------------------------------


def emit(result: dict[str, Any], summary: str, out: Path | None = None) -> None:
    """One JSON line (machine-readable) and a human summary."""
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    print(summary, flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(line + "\n")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def iso_ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def mb(n: int) -> float:
    return round(n / 2**20, 1)
