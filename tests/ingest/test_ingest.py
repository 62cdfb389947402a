"""The bus bridge end to end: a private RabbitMQ, a Temporal dev server, the
real BatchCollector, Koji messages published with fedora-messaging.

Each test has its own Temporal namespace, task queue and AMQP queue. Failure
scenarios: the bridge SIGKILLed mid-stream, Temporal stopped while messages
arrive, the broker restarted, SIGTERM for a graceful stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
from prometheus_client import REGISTRY
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from ebs.bus import AmqpSink, load_messaging_config
from ebs.config.holder import ConfigHolder
from ebs.contracts.collector import (
    CollectorSettings,
    CollectorState,
    CollectorStatus,
    QueuePage,
    QueueQuery,
)
from ebs.contracts.events import RepoEvent, Routing, SideTagsEvent, TagEvent, TaskStateEvent
from ebs.contracts.names import (
    COLLECTOR_WORKFLOW_ID,
    QUERY_QUEUED,
    QUERY_STATUS,
    SIGNAL_REPO_EVENT,
    SIGNAL_SIDE_TAGS,
    SIGNAL_TASK_STATE,
)
from ebs.devstack.processes import Child
from ebs.devstack.waiting import eventually
from ebs.ingest.bridge import Bridge
from ebs.ingest.decide import SignalRepo
from ebs.ingest.forward import Forwarder, Outcome
from ebs.ingest.sandbox import sandbox_messaging_config
from ebs.ingest.service import serve
from ebs.temporal_client import connect_to
from ebs.workflows.collector import QUEUE_PAGE_MAX, BatchCollector
from tests.helpers import rabbitmq as rmq
from tests.helpers.config import BRIDGE_KOJI_USER, write_bridge_config
from tests.helpers.rabbitmq import RabbitMQ, free_port
from tests.helpers.temporal import start_local

rabbitmq = rmq.rabbitmq  # the session broker fixture

pytestmark = [
    pytest.mark.broker,
    # fedora-messaging and crochet use Twisted APIs that Twisted now deprecates.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = [f"ingest-{i}" for i in range(1, 8)]
KOJI_USER = BRIDGE_KOJI_USER
ATTEMPT = "ebs-test-slice0-attempt1-chunk0"  # a build attempt's workflow id
ROUTING_KEYS = [
    "org.fedoraproject.*.buildsys.tag",
    "org.fedoraproject.*.buildsys.task.state.change",
    "org.fedoraproject.*.buildsys.repo.init",
    "org.fedoraproject.*.buildsys.repo.done",
]
ELIGIBLE = ["bash", "coreutils", "glibc"] + [f"pkg-{i:03d}" for i in range(400)]


# ---- Temporal -------------------------------------------------------------------


class DevServer:
    """`temporal server start-dev` on a fixed port and SQLite file: stop/start
    keeps every workflow."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.db = workdir / "temporal.db"
        self.env: WorkflowEnvironment | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        extra = ["--db-filename", str(self.db)]
        for ns in NAMESPACES:
            extra += ["--namespace", ns]
        self.env = await start_local(
            port=self.port,
            ui=False,
            dev_server_extra_args=extra,
            dev_server_log_level="error",
        )

    async def stop(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None


@pytest.fixture(scope="module")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    server = DevServer(tmp_path_factory.mktemp("temporal"))
    await server.start()
    yield server
    await server.stop()


@activity.defn(name="collector_settings")
async def collector_settings() -> CollectorSettings:
    # A long lull: events stay queued for the test to inspect.
    return CollectorSettings(lull=3600.0)


@workflow.defn(name="IngestTestRecorder")
class Recorder:
    """Stands in for an attempt or batch workflow: records what the bridge sends."""

    def __init__(self) -> None:
        self.tasks: list[TaskStateEvent] = []
        self.repos: list[RepoEvent] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=SIGNAL_TASK_STATE)
    def task_state(self, event: TaskStateEvent) -> None:
        self.tasks.append(event)

    @workflow.signal(name=SIGNAL_REPO_EVENT)
    def repo_event(self, event: RepoEvent) -> None:
        self.repos.append(event)

    @workflow.query(name="tasks")
    def seen_tasks(self) -> list[TaskStateEvent]:
        return self.tasks

    @workflow.query(name="repos")
    def seen_repos(self) -> list[RepoEvent]:
        return self.repos


@dataclass
class Setup:
    """One test's world: namespace, task queue, AMQP queue, config files."""

    server: DevServer
    broker: RabbitMQ
    namespace: str
    config: Path
    messaging: Path
    queue: str
    task_queue: str = field(default_factory=lambda: f"ebs-{uuid.uuid4().hex[:8]}")
    client: Client | None = None

    def sink(self) -> AmqpSink:
        return AmqpSink("prod", amqp_url=self.broker.amqp_url, timeout=30, reconnect_max_delay=1)

    async def status(self) -> CollectorStatus:
        assert self.client is not None
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        return await handle.query(QUERY_STATUS, result_type=CollectorStatus)

    async def queued(self) -> dict[str, TagEvent]:
        """Every queued component (the status query lists only the first ones).
        These tests stay below the collector's `hold_after`, so its own queue is
        all of it, and one `queued` page of QUEUE_PAGE_MAX holds that."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
        try:
            page = await handle.query(QUERY_QUEUED, QueueQuery(limit=QUEUE_PAGE_MAX),
                                      result_type=QueuePage)
        except RPCError:
            return {}
        assert page.total <= QUEUE_PAGE_MAX and not page.holders, "past the holders' threshold"
        return {e.component: e for e in page.events}

    async def queue_length(self) -> int:
        """How many components are queued: one small query, for polling."""
        try:
            return (await self.status()).queue_length
        except RPCError:
            return 0

    def depth(self) -> tuple[int, int]:
        return self.broker.queue_depth(self.queue)

    def declare_queue(self) -> None:
        """The durable queue and its bindings, as a running deployment has them."""
        conn = pika.BlockingConnection(pika.URLParameters(self.broker.amqp_url))
        try:
            channel = conn.channel()
            channel.queue_declare(self.queue, durable=True)
            for topic in ROUTING_KEYS:
                channel.queue_bind(self.queue, "amq.topic", routing_key=topic)
        finally:
            conn.close()


def write_config(path: Path, server: DevServer, namespace: str, task_queue: str) -> None:
    overrides: dict[str, dict[str, Any]] = {"kernel": {}, "ipa": {"upstream_name": "freeipa"}}
    write_bridge_config(path, server.address, task_queue,
                        {**overrides, **{name: {} for name in ELIGIBLE}},
                        namespace=namespace, control={"exclude": ["^kernel$"]})


def write_messaging_config(path: Path, broker: RabbitMQ, queue: str, consumers: int) -> None:
    path.write_text(sandbox_messaging_config(broker.amqp_url, queue=queue, consumers=consumers,
                                             app="ebs tests"))


_namespaces = iter(NAMESPACES)


@pytest.fixture
async def world(temporal: DevServer, rabbitmq: RabbitMQ, tmp_path: Path) -> AsyncIterator[Setup]:
    namespace = next(_namespaces)
    setup = Setup(
        server=temporal,
        broker=rabbitmq,
        namespace=namespace,
        config=tmp_path / "ebs.yaml",
        messaging=tmp_path / "messaging.toml",
        queue=f"ebs-test-{uuid.uuid4().hex[:8]}",
    )
    write_config(setup.config, temporal, namespace, setup.task_queue)
    write_messaging_config(setup.messaging, rabbitmq, setup.queue, consumers=4)
    setup.client = await connect_to(temporal.address, namespace=namespace)
    worker = Worker(
        setup.client,
        task_queue=setup.task_queue,
        workflows=[BatchCollector, Recorder],
        activities=[collector_settings],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        yield setup


@asynccontextmanager
async def bridge_in_process(setup: Setup, consumers: int = 2) -> AsyncIterator[Bridge]:
    """`serve` on this loop (the callbacks hand their signals to it)."""
    load_messaging_config(str(setup.messaging))
    holder = ConfigHolder(str(setup.config))
    await asyncio.to_thread(holder.load)
    stop = asyncio.Event()
    started: asyncio.Future[Bridge] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            holder,
            consumers=consumers,
            stop=stop,
            refresh_config=False,
            reconnect_max_delay=1.0,
            on_started=started.set_result,
        )
    )
    bridge = await asyncio.wait_for(started, 30)
    await asyncio.to_thread(bridge.wait_consuming, 30)
    try:
        yield bridge
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 60) == 0


def counter(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ebs_bridge_messages_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def tag_body(name: str, tag: str = "f45", release: str = "1.fc45") -> dict[str, Any]:
    return {
        "build_id": abs(hash(name)) % 10**7,
        "name": name,
        "tag_id": 7,
        "instance": "primary",
        "tag": tag,
        "user": "bodhi",
        "version": "1.0",
        "release": release,
        "owner": "packager",
    }


def task_body(task_id: int, workflow_id: str, owner: str = KOJI_USER) -> dict[str, Any]:
    opts = {"custom_user_metadata": {"ebs_workflow_id": workflow_id}}
    return {
        "id": task_id,
        "info": {
            "id": task_id,
            "method": "build",
            "host_id": None,
            "arch": "noarch",
            "result": None,
            "request": ["git+https://src.fedoraproject.org/rpms/bash.git#abc", "eln-side-1", opts],
            "children": [],
            "state": 2,
            "create_time": time.time(),
        },
        "method": "build",
        "attribute": "state",
        "old": "OPEN",
        "new": "CLOSED",
        "srpm": "bash",
        "owner": owner,
        "base_url": "https://koji.example",
        "files_base_url": "https://kojipkgs.example",
        "instance": "primary",
    }


def publish_raw(broker: RabbitMQ, routing_key: str, body: bytes, headers: dict[str, Any]) -> None:
    """A message no well-behaved publisher would send."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        conn.channel().basic_publish(
            "amq.topic",
            routing_key,
            body,
            pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                headers=headers,
                message_id=str(uuid.uuid4()),
                delivery_mode=2,
            ),
        )
    finally:
        conn.close()


# ---- tests ----------------------------------------------------------------------


async def test_tag_messages_through_the_broker_reach_the_collector(world: Setup) -> None:
    malformed = counter("tag", "malformed")
    irrelevant = counter("tag", "irrelevant")
    async with bridge_in_process(world):
        with world.sink() as sink:
            bash = sink.send("buildsys.tag", tag_body("bash"))
            sink.send("buildsys.tag", tag_body("bash"), message_id=bash)  # redelivered
            ipa = sink.send("buildsys.tag", tag_body("freeipa"))  # ELN's ipa
            sink.send("buildsys.tag", tag_body("kernel"))  # excluded
            sink.send("buildsys.tag", tag_body("not-in-eln"))
            sink.send("buildsys.tag", tag_body("coreutils", tag="f45-updates-candidate"))
            sink.publish("buildsys.untag", tag_body("glibc"))  # not bound: never delivered
            glibc = sink.send("buildsys.tag", tag_body("glibc"))
        topic = "org.fedoraproject.prod.buildsys.tag"
        schema = {"fedora_messaging_schema": "koji_fedoramessaging.tag.TagV1"}
        publish_raw(world.broker, topic, b'{"name": "bash", "build_id": "x"}', schema)
        publish_raw(world.broker, topic, b"{not json", schema)
        publish_raw(world.broker, topic, b'{"name": 7, "tag": "f45"}', {})  # no schema header

        async def settled() -> bool:
            return len(await world.queued()) == 3 and world.depth() == (0, 0)

        await eventually(settled, 30, "three queued components and an empty queue")
    queued = await world.queued()
    assert sorted(queued) == ["bash", "freeipa", "glibc"]
    assert queued["bash"].event_id == bash
    assert queued["bash"].nvr == "bash-1.0-1.fc45" and queued["bash"].source == "bus"
    assert queued["freeipa"].event_id == ipa and queued["glibc"].event_id == glibc
    assert counter("tag", "malformed") - malformed == 3
    assert counter("tag", "irrelevant") - irrelevant == 3


async def test_task_and_repo_messages_reach_the_workflows_waiting_on_them(world: Setup) -> None:
    assert world.client is not None
    attempt = await world.client.start_workflow(
        Recorder.run, id=ATTEMPT, task_queue=world.task_queue
    )
    batch = await world.client.start_workflow(
        Recorder.run, id="ebs-test-batch", task_queue=world.task_queue
    )
    # The collector's own state says which batch owns which side tag.
    await world.client.start_workflow(
        BatchCollector.run,
        CollectorState(current_batch_id="ebs-test-batch", current_side_tags=["eln-side-42"]),
        id=COLLECTOR_WORKFLOW_ID,
        task_queue=world.task_queue,
    )
    not_found = counter("task", "not_found")
    unrouted = counter("repo", "unrouted")
    async with bridge_in_process(world):
        with world.sink() as sink:
            closed = sink.send("buildsys.task.state.change", task_body(101, ATTEMPT))
            sink.send("buildsys.task.state.change", task_body(102, ATTEMPT, "someone"))
            gone = "ebs-gone-slice0-attempt1-chunk0"  # an attempt long finished
            sink.send("buildsys.task.state.change", task_body(103, gone))
            init = sink.send("buildsys.repo.init", {"repo_id": 5, "tag": "eln-side-42"})
            done = sink.send("buildsys.repo.done", {"repo_id": 5, "tag": "eln-side-42"})
            sink.send("buildsys.repo.done", {"repo_id": 6, "tag": "f45-build-side-99"})
            sink.send("buildsys.repo.done", {"repo_id": 7, "tag": "f45-build"})

        async def settled() -> bool:
            repos = await batch.query("repos", result_type=list[RepoEvent])
            return len(repos) == 2 and world.depth() == (0, 0)

        await eventually(settled, 30, "two repo events and an empty queue")
    tasks = await attempt.query("tasks", result_type=list[TaskStateEvent])
    assert tasks == [TaskStateEvent(task_id=101, state="CLOSED", event_id=closed)]
    repos = await batch.query("repos", result_type=list[RepoEvent])
    assert sorted((r.kind, r.event_id, r.tag, r.repo_id) for r in repos) == sorted(
        [("init", init, "eln-side-42", 5), ("done", done, "eln-side-42", 5)]
    )
    assert counter("task", "not_found") - not_found == 1
    assert counter("repo", "unrouted") - unrouted == 1


class BridgeProcess(Child):
    """`python -m ebs.ingest` as a real process, started at once."""

    def __init__(self, setup: Setup, log: Path) -> None:
        argv = [sys.executable, "-m", "ebs.ingest", "--config", str(setup.config),
                "--messaging-config", str(setup.messaging)]
        super().__init__("bridge", argv, log, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT,
                         new_session=False)
        self.start()


@pytest.fixture
def processes() -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for p in started:
        p.kill()


async def test_bridge_killed_mid_stream_loses_nothing_and_stops_cleanly(
    world: Setup, tmp_path: Path, processes: list[BridgeProcess]
) -> None:
    components = [f"pkg-{i:03d}" for i in range(400)]
    expected: dict[str, str] = {}

    def publish_stream() -> None:
        with world.sink() as sink:
            for i, name in enumerate(components):
                expected[name] = sink.send("buildsys.tag", tag_body(name))
                # Irrelevant traffic in between: other tags, other people's tasks, repos.
                if i % 2 == 0:
                    sink.send("buildsys.tag", tag_body(name, tag="f45-updates-candidate"))
                    sink.send("buildsys.task.state.change", task_body(i, "x", owner="other"))
                    sink.send("buildsys.repo.done", {"repo_id": i, "tag": "f45-build"})

    world.declare_queue()
    await asyncio.to_thread(publish_stream)
    assert sum(world.depth()) == 1000

    count = world.queue_length

    first = BridgeProcess(world, tmp_path / "bridge-1.log")
    processes.append(first)
    await eventually(lambda: _at_least(count, 50), 30, "the first bridge to get going")
    first.kill()
    at_kill = await count()
    assert at_kill < len(components), "the stream had already been consumed: nothing to test"

    # Two replicas compete on the queue; one is stopped (SIGTERM) mid-stream.
    second = BridgeProcess(world, tmp_path / "bridge-2.log")
    third = BridgeProcess(world, tmp_path / "bridge-3.log")
    processes += [second, third]
    await eventually(lambda: _at_least(count, at_kill + 80), 30, "the replicas to go on")
    at_term = await count()
    assert await asyncio.to_thread(second.stop, 30) == 0, second.tail()
    assert at_term < len(components), "the stream had already been consumed: nothing to test"

    async def done() -> bool:
        return await count() == len(components) and world.depth() == (0, 0)

    try:
        await eventually(done, 60, "every eligible message in the collector", interval=0.2)
    except AssertionError:
        pytest.fail(f"stuck at {await count()} queued, {world.depth()}:\n{third.tail()}")
    assert await asyncio.to_thread(third.stop, 30) == 0, third.tail()

    queued = await world.queued()
    assert {name: ev.event_id for name, ev in queued.items()} == expected
    for replica in (second, third):
        assert "-> ebs-collector" in replica.log.read_text(), f"idle replica:\n{replica.tail()}"


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def test_temporal_outage_loses_nothing_and_the_bridge_recovers(world: Setup) -> None:
    requeued = counter("tag", "requeued")
    async with bridge_in_process(world, consumers=4):
        with world.sink() as sink:
            first = sink.send("buildsys.tag", tag_body("bash"))

            async def first_arrived() -> bool:
                return "bash" in await world.queued()

            await eventually(first_arrived, 30, "the first message")
            await world.server.stop()
            during = {name: sink.send("buildsys.tag", tag_body(name)) for name in ELIGIBLE[3:23]}

        async def held_back() -> bool:
            ready, unacked = world.depth()
            return counter("tag", "requeued") > requeued and ready + unacked == len(during)

        await eventually(held_back, 40, "messages requeued while Temporal is down", interval=0.2)
        await world.server.start()

        async def all_arrived() -> bool:
            return len(await world.queued()) == 1 + len(during) and world.depth() == (0, 0)

        await eventually(all_arrived, 60, "every message once Temporal is back", interval=0.2)
    queued = await world.queued()
    assert queued.pop("bash").event_id == first
    assert {name: ev.event_id for name, ev in queued.items()} == during

    # Stopped while Temporal is down and signals are in flight: a clean exit
    # (the context manager checks the exit status), and nothing lost.
    async with bridge_in_process(world, consumers=4):
        await world.server.stop()
        with world.sink() as sink:
            late = {name: sink.send("buildsys.tag", tag_body(name)) for name in ELIGIBLE[23:28]}
        await asyncio.sleep(0.5)  # let the consumers take them
        started = time.monotonic()
    assert time.monotonic() - started < 30
    assert sum(world.depth()) == len(late)
    await world.server.start()
    async with bridge_in_process(world, consumers=4):

        async def late_arrived() -> bool:
            return len(await world.queued()) == 1 + len(during) + len(late)

        await eventually(late_arrived, 60, "the messages held over the restart", interval=0.2)
    queued = await world.queued()
    assert {name: queued[name].event_id for name in late} == late


async def test_broker_restart_the_bridge_reconnects(world: Setup) -> None:
    async with bridge_in_process(world):
        with world.sink() as sink:
            sink.send("buildsys.tag", tag_body("bash"))

        async def arrived(n: int) -> bool:
            return len(await world.queued()) == n and world.depth() == (0, 0)

        await eventually(lambda: arrived(1), 30, "the message before the restart")
        await asyncio.to_thread(world.broker.restart)
        with world.sink() as sink:
            for name in ("coreutils", "glibc"):
                sink.send("buildsys.tag", tag_body(name))
        await eventually(lambda: arrived(3), 60, "the messages after the restart")


async def test_routing_is_cached_briefly_and_new_side_tags_are_found(world: Setup) -> None:
    """The forwarder's routing cache against the real collector's routing query."""
    client = world.client
    assert client is not None
    collector = await client.start_workflow(
        BatchCollector.run,
        CollectorState(current_batch_id="b-1", current_side_tags=["eln-side-1"]),
        id=COLLECTOR_WORKFLOW_ID,
        task_queue=world.task_queue,
    )
    now = [100.0]

    async def connect() -> Client:
        return client

    fw = Forwarder(
        connect,
        world.task_queue,
        routing_ttl=5,
        routing_min_refresh=1,
        routing_failure_ttl=30,
        query_timeout=0.5,
        clock=lambda: now[0],
    )
    queries = 0
    real_query = fw._query_routing

    async def counting_query() -> Routing | None:
        nonlocal queries
        queries += 1
        return await real_query()

    fw._query_routing = counting_query  # type: ignore[method-assign]

    assert (await fw.routing("eln-side-1")).side_tags == ["eln-side-1"] and queries == 1
    await collector.signal(SIGNAL_SIDE_TAGS, SideTagsEvent("b-1", ["eln-side-1", "eln-side-2"]))
    now[0] += 0.5  # a tag not seen yet: re-asked at most every second
    assert "eln-side-2" not in (await fw.routing("eln-side-2")).side_tags and queries == 1
    now[0] += 1.0
    assert (await fw.routing("eln-side-2")).batch_workflow_id == "b-1" and queries == 2
    now[0] += 3.0  # known tags come from the cache for `routing_ttl`
    await fw.routing("eln-side-1")
    assert queries == 2
    now[0] += 3.0
    await fw.routing("eln-side-1")
    assert queries == 3

    # No collector at all: nothing to route to.
    await collector.terminate("test")
    now[0] += 10
    assert await fw.routing("eln-side-1") == Routing() and queries == 4
    # A collector nobody answers for (no worker on its queue): unrouted, and not
    # asked again for `routing_failure_ttl`, so repo traffic does not queue up.
    await client.start_workflow(
        BatchCollector.run,
        CollectorState(),
        id=COLLECTOR_WORKFLOW_ID,
        task_queue="nobody-polls-this",
    )
    now[0] += 10
    event = RepoEvent(tag="eln-side-1", kind="done", event_id="e-1")
    result = await fw.forward(SignalRepo(event))
    assert result.outcome is Outcome.UNROUTED and queries == 5
    now[0] += 20
    assert (await fw.forward(SignalRepo(event))).outcome is Outcome.UNROUTED and queries == 5


async def test_a_missing_namespace_requeues_and_loses_nothing(
    world: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NOT_FOUND for the namespace is a misconfiguration, not "workflow gone"."""
    missing = dataclasses.replace(world, namespace="ingest-no-such-namespace",
                                  config=tmp_path / "missing-ns.yaml")
    write_config(missing.config, world.server, missing.namespace, world.task_queue)
    requeued, not_found = counter("tag", "requeued"), counter("tag", "not_found")
    async with bridge_in_process(missing):
        with world.sink() as sink:
            sent = {name: sink.send("buildsys.tag", tag_body(name)) for name in ELIGIBLE[:3]}

        async def requeued_each() -> bool:
            return counter("tag", "requeued") - requeued >= len(sent)

        await eventually(requeued_each, 30, "every message requeued", interval=0.2)
    assert counter("tag", "not_found") == not_found
    assert sum(world.depth()) == len(sent)  # still on the broker
    errors = [r.getMessage() for r in caplog.records
              if r.name == "ebs.ingest.bridge" and r.levelno == logging.ERROR]
    assert any("event=bridge_requeue" in m and "ingest-no-such-namespace" in m for m in errors)

    # Pointed at the right namespace, the bridge delivers every one of them.
    async with bridge_in_process(world):

        async def delivered() -> bool:
            return len(await world.queued()) == len(sent) and world.depth() == (0, 0)

        await eventually(delivered, 60, "the held messages in the collector", interval=0.2)
    assert {name: ev.event_id for name, ev in (await world.queued()).items()} == sent
