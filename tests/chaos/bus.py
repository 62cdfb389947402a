"""The bus side of the chaos suite: the simulator publishing real Koji topics to
a private RabbitMQ, `ebs ingest` bridges consuming them, and the BatchCollector
turning tag events into batches.

How the bridge is run with a private broker follows tests/ingest/test_ingest.py
(the bridge's own tests: messages through the broker, bridge SIGKILL, Temporal
outage, broker restart, replicas). Here the whole pipeline runs: simulator ->
broker -> bridge -> collector -> batch -> worker -> simulator.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pika
from temporalio.client import Client
from temporalio.service import RPCError

from ebs.bus import BRIDGE_TOPICS, AmqpSink, full_topic
from ebs.contracts.batch import BatchResult
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS
from ebs.devstack.rabbitmq import RabbitMQ
from ebs.ingest.sandbox import sandbox_messaging_config
from ebs.simulator import FanoutSink, ListSink
from tests.chaos.harness import Process, TemporalServer, World, ebs_argv, until


def write_messaging_config(path: Path, broker: RabbitMQ, queue: str, consumers: int = 4) -> Path:
    path.write_text(sandbox_messaging_config(broker.amqp_url, queue=queue, consumers=consumers,
                                             app="ebs chaos tests"))
    return path


def declare_queue(broker: RabbitMQ, queue: str) -> None:
    """The durable queue and its bindings, as a deployment has them before any
    bridge runs (messages published meanwhile wait in it)."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        for topic in BRIDGE_TOPICS:
            routing_key = full_topic("prod", topic).replace(".prod.", ".*.")
            channel.queue_bind(queue, "amq.topic", routing_key=routing_key)
    finally:
        conn.close()


def publish_raw(broker: RabbitMQ, routing_key: str, body: bytes,
                headers: dict[str, Any] | None = None, message_id: str | None = None) -> None:
    """A message no well-behaved publisher would send (bad JSON, wrong schema...)."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        conn.channel().basic_publish(
            "amq.topic", routing_key, body,
            pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8",
                headers=headers or {}, message_id=message_id or str(uuid.uuid4()),
                delivery_mode=2,
            ),
        )
    finally:
        conn.close()


class BusWorld(World):
    """A World whose simulator publishes to `broker`, with bridges on `queue`,
    in its own Temporal namespace (the collector's workflow id is fixed)."""

    def __init__(self, name: str, server: TemporalServer, workdir: Path, broker: RabbitMQ,
                 namespace: str, **kwargs: Any) -> None:
        self.broker = broker
        self.amqp = AmqpSink("prod", amqp_url=broker.amqp_url, timeout=120,
                             reconnect_max_delay=1)
        self.published = ListSink()
        self.queue = f"ebs-chaos-{uuid.uuid4().hex[:8]}"
        declare_queue(broker, self.queue)
        super().__init__(name, server, workdir, sink=FanoutSink(self.amqp, self.published),
                         namespace=namespace, **kwargs)
        self.messaging = write_messaging_config(workdir / "messaging.toml", broker, self.queue)
        self.bridges: list[Process] = []

    def start_bridge(self) -> Process:
        n = len(self.bridges) + 1
        bridge = Process(
            ebs_argv("ingest", "--config", str(self.config),
                     "--messaging-config", str(self.messaging)),
            self.workdir / f"bridge-{n}.log",
        ).start()
        self.bridges.append(bridge)
        return bridge

    async def start_bridge_ready(self, within: float = 60.0) -> Process:
        before = self.broker.consumers(self.queue)
        bridge = self.start_bridge()
        await until(lambda: self.broker.consumers(self.queue) > before or not bridge.alive(),
                    within, "the bridge to consume", interval=0.2)
        if not bridge.alive():
            raise AssertionError(f"the bridge exited:\n{bridge.tail()}")
        return bridge

    def live_bridges(self) -> list[Process]:
        return [b for b in self.bridges if b.alive()]

    def depth(self) -> tuple[int, int]:
        return self.broker.queue_depth(self.queue)

    def bridge_logs(self, lines: int = 30) -> str:
        return "\n".join(f"--- {b.log.name}\n{b.tail(lines)}" for b in self.bridges)

    def tagged(self) -> dict[str, str]:
        """Component -> the last NVR tagged into the trigger tag (as published)."""
        trigger = self.sim.layout.trigger_tag
        out: dict[str, str] = {}
        for body in self.published.bodies("buildsys.tag"):
            if body.get("tag") == trigger:
                out[body["name"]] = f"{body['name']}-{body['version']}-{body['release']}"
        return out

    def close(self) -> None:
        for bridge in self.bridges:
            bridge.stop(30)
        super().close()
        self.amqp.close()


async def collector_status(client: Client) -> CollectorStatus | None:
    try:
        return await client.get_workflow_handle(COLLECTOR_WORKFLOW_ID).query(
            QUERY_STATUS, result_type=CollectorStatus
        )
    except RPCError:
        return None


async def batch_results(client: Client, batch_ids: Iterable[str]) -> list[BatchResult]:
    return [
        await client.get_workflow_handle(b, result_type=BatchResult).result()
        for b in batch_ids
    ]


def rebuilt(results: Iterable[BatchResult]) -> dict[str, list[str]]:
    """Component -> the Rawhide NVRs batches rebuilt (successfully or not)."""
    out: dict[str, list[str]] = {}
    for result in results:
        for p in result.packages:
            out.setdefault(p.component, []).append(p.rawhide_nvr)
    return out
