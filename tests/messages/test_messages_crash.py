"""A worker SIGKILLed between the Koji step and the publish of its messages:
no message is lost, a repeat carries the same id (and body)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchRequest
from ebs.contracts.bus import message_id
from ebs.contracts.events import TagEvent
from ebs.devstack.waiting import eventually
from ebs.simulator import ListSink, Simulator
from ebs.workflows.batch import RebuildBatch
from tests.helpers import rabbitmq as rmq
from tests.helpers.processes import WorkerProcess, write_config
from tests.helpers.rabbitmq import RabbitMQ
from tests.messages.test_messages import PREFIX, drain, messaging_toml

rabbitmq = rmq.rabbitmq  # the session broker fixture

pytestmark = [
    pytest.mark.broker,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

PACKAGES = ["bash", "coreutils", "glibc"]


def declare_queue(amqp_url: str) -> str:
    name = f"test-ebs-crash-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.queue_declare(name, durable=True)  # survives the broker's stop
    ch.queue_bind(name, "amq.topic", routing_key=f"{PREFIX}.ebs.#")
    conn.close()
    return name


async def test_worker_sigkill_before_the_publish_loses_no_message(
    dev_server_env: WorkflowEnvironment, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    sim = Simulator(seed=11, sink=ListSink()).start("127.0.0.1", 0)
    sim.bodhi_app.stable_after = 0.05
    for name in PACKAGES:
        sim.set_duration(name, 1.0)
    sim.set_outcomes("glibc", ["FAILED", "CLOSED"])
    address = dev_server_env.client.service_client.config.target_host
    task_queue = f"msgcrash-{uuid.uuid4().hex[:6]}"
    config = write_config(tmp_path / "ebs.yaml", sim, address, task_queue)
    data = yaml.safe_load(config.read_text())
    data["messaging"] = {"config": str(messaging_toml(tmp_path / "fm.toml", rabbitmq.amqp_url))}
    config.write_text(yaml.safe_dump(data))
    queue = declare_queue(rabbitmq.amqp_url)
    log = tmp_path / "worker.log"
    first = WorkerProcess(config, log).start()
    second: WorkerProcess | None = None
    broker_down = False
    try:
        holder = ConfigHolder(str(config))
        holder.load()
        session = sim.session()
        events = [
            TagEvent(n, session.getLatestBuilds(sim.layout.trigger_tag, package=n)[0]["nvr"],
                       event_id=n)
            for n in PACKAGES
        ]
        # The broker goes away before the batch starts (stopping it takes longer
        # than a small batch on a loaded machine): every message must wait.
        await asyncio.to_thread(rabbitmq.stop)
        broker_down = True
        batch_id = f"ebs-batch-msgcrash-{uuid.uuid4().hex[:6]}"
        handle = await dev_server_env.client.start_workflow(
            RebuildBatch.run,
            BatchRequest(batch_id, events, holder.batch_settings()),
            id=batch_id,
            task_queue=task_queue,
        )

        pending: list[Any] = []

        async def builds_done_publish_failing() -> bool:
            pending[:] = (await handle.describe()).raw_description.pending_activities
            return len(sim.builds_submitted) >= 4 and any(
                a.activity_type.name == "publish_messages" and a.attempt >= 2 for a in pending)

        def last_seen() -> str:
            return (f"the builds done and publish_messages failing (builds "
                    f"{len(sim.builds_submitted)}, pending {pending}); worker log:\n"
                    + "\n".join(line for line in log.read_text().splitlines()
                                if "twisted" not in line)[-3000:])

        await eventually(builds_done_publish_failing, 300, last_seen,  # a loaded CI machine
                         interval=0.3)
        # The Koji step is done (bash, coreutils, glibc twice); no message is out.
        assert "published" not in log.read_text()
        first.kill()
        await asyncio.to_thread(rabbitmq.start)
        broker_down = False
        second = WorkerProcess(config, log).start()
        result = await asyncio.wait_for(handle.result(), timeout=240)
    finally:
        if broker_down:
            await asyncio.to_thread(rabbitmq.start)
        first.stop()
        if second is not None:
            second.stop()
        sim.stop()
    got = drain(rabbitmq.amqp_url, queue)
    assert result.outcome == "succeeded", result
    events_seen: dict[str, str] = {}
    for m in got:
        body = json.dumps(m.body, sort_keys=True)
        # A repeat is the same message: same id, same body.
        assert events_seen.setdefault(m.id, body) == body
    expected = {
        message_id(batch_id, e): e
        for e in ["batch.started", "batch.finished", *(f"package.built/{n}" for n in PACKAGES),
                  f"update.filed/{result.updates[0]}", f"update.stable/{result.updates[0]}"]
    }
    assert set(events_seen) == set(expected), (
        [expected.get(i, i) for i in events_seen], [m.topic for m in got])
    built = [m for m in got if m.topic == f"{PREFIX}.ebs.package.built"]
    assert sorted({p for m in built for p in m.packages}) == PACKAGES
