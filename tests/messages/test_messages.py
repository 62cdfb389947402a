"""ebs's own messages (ebs-messages) on a private RabbitMQ: a whole batch's
messages, each validated against its schema by fedora-messaging's consumer
side; a broker that is down delays them without failing the batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from fedora_messaging import config as fm_config
from fedora_messaging.message import Message, get_message

from ebs.config.holder import ConfigHolder
from ebs.config.model import MessagingConfig
from ebs.contracts.bus import message_id
from ebs.devstack.waiting import until
from tests.helpers import rabbitmq as rmq
from tests.helpers.engine import Engine, _package_lists, engine_config
from tests.helpers.rabbitmq import RabbitMQ

rabbitmq = rmq.rabbitmq  # the session broker fixture

pytestmark = [
    pytest.mark.broker,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

PREFIX = "org.fedoraproject.msgtest"


def messaging_toml(path: Path, amqp_url: str, prefix: str = PREFIX) -> Path:
    path.write_text(
        f'amqp_url = "{amqp_url}"\npublish_exchange = "amq.topic"\ntopic_prefix = "{prefix}"\n'
    )
    return path


@pytest.fixture
def global_messaging_config() -> Iterator[None]:
    """The publisher loads fedora-messaging's process-wide config (with our
    topic_prefix); put back what other tests in this process expect."""
    saved, loaded = dict(fm_config.conf), fm_config.conf.loaded
    yield
    fm_config.conf.clear()
    fm_config.conf.update(saved)
    fm_config.conf.loaded = loaded


def get_all(channel: Any, name: str) -> list[Message]:
    """Every message queued, as fedora-messaging's consumer builds it: the
    class named in its headers, its body validated against that schema."""
    out = []
    while True:
        method, props, body = channel.basic_get(name, auto_ack=True)
        if method is None:
            return out
        out.append(get_message(method.routing_key, props, body))


class Queue:
    """A queue bound to every ebs topic under PREFIX, read with pika."""

    def __init__(self, amqp_url: str) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        self.name = f"test-ebs-msgs-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.name, auto_delete=True)
        self.channel.queue_bind(self.name, "amq.topic", routing_key=f"{PREFIX}.ebs.#")

    def drain(self) -> list[Message]:
        return get_all(self.channel, self.name)

    def close(self) -> None:
        self.conn.close()


def publish_to(engine: Engine, toml: Path, **sections: Any) -> None:
    cfg = engine_config(engine.sim, **sections).model_copy(
        update={"messaging": MessagingConfig(config=str(toml))}
    )
    engine.holder._state = ConfigHolder.fixed(  # noqa: SLF001 - test seam
        cfg, _package_lists(engine.sim, cfg), trigger_tag=engine.sim.layout.trigger_tag
    )._state


def drain(amqp_url: str, name: str) -> list[Message]:
    """Every message of queue `name`, which is then deleted."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        got = get_all(ch, name)
        ch.queue_delete(name)
        return got
    finally:
        conn.close()


async def test_a_whole_batch_announces_itself_and_every_message_matches_its_schema(
    engine: Engine, rabbitmq: RabbitMQ, tmp_path: Path, global_messaging_config: None
) -> None:
    queue = Queue(rabbitmq.amqp_url)
    try:
        publish_to(engine, messaging_toml(tmp_path / "fm.toml", rabbitmq.amqp_url),
                   control={"ordering": {"^glibc$": 0}, "skip_tag": ["^coreutils$"]})
        engine.sim.set_outcomes("bash", ["FAILED", "CLOSED"])  # retried, then built
        engine.sim.set_outcomes("rust", ["FAILED"] * 3)  # fails for good
        handle = await engine.start_batch(["bash", "coreutils", "glibc", "rust"])
        result = await handle.result()
        messages = queue.drain()
    finally:
        queue.close()
    assert result.outcome == "partial", result
    batch_id = result.batch_id
    topics = [m.topic.removeprefix(PREFIX + ".") for m in messages]
    assert all(m.topic.startswith(PREFIX + ".ebs.") for m in messages)
    for m in messages:
        m.validate()  # get_message did too; explicit for the reader
        assert m.body["batch_id"] == batch_id
        assert m.body["batch_url"].endswith(f"/workflows/{handle.id}")
        assert m.agent_name == engine.sim.koji_user and m.usernames == [engine.sim.koji_user]
        assert m.app_name == "ebs" and str(m).startswith(m.summary)
    assert topics[0] == "ebs.batch.started" and topics[-1] == "ebs.batch.finished"
    assert sorted(topics) == sorted([
        "ebs.batch.started",
        "ebs.package.built", "ebs.package.built", "ebs.package.built",  # glibc bash coreutils
        "ebs.package.failed",  # rust
        "ebs.update.filed", "ebs.update.stable",
        "ebs.batch.finished",
    ]), topics
    # Maintainers' package names: what FMN matches.
    by_topic: dict[str, list[Message]] = {}
    for m in messages:
        by_topic.setdefault(m.topic.removeprefix(PREFIX + "."), []).append(m)
    assert sorted(p for m in by_topic["ebs.package.built"] for p in m.packages) == [
        "bash", "coreutils", "glibc"]
    failed = by_topic["ebs.package.failed"][0]
    assert failed.packages == ["rust"] and failed.body["attempts"] == 3, (failed.body, result)
    assert failed.body["reason"] and failed.body["task_urls"]
    assert failed.body["rawhide_nvr"].startswith("rust-")
    assert "failed to rebuild" in failed.summary
    results = {p.component: p for p in result.packages}
    for m in by_topic["ebs.package.built"]:
        pkg = results[m.packages[0]]
        assert m.body["eln_nvr"] == pkg.nvr and m.body["rawhide_nvr"] == pkg.rawhide_nvr
        assert m.body["task_urls"] == pkg.task_urls and pkg.task_urls
    update = by_topic["ebs.update.filed"][0]
    assert update.packages == ["bash", "coreutils", "glibc"]
    assert update.body["alias"] == result.updates[0] and update.body["url"]
    finished = by_topic["ebs.batch.finished"][0]
    assert finished.body["outcome"] == "partial" and finished.body["failed"] == ["rust"]
    assert finished.packages == ["bash", "coreutils", "glibc", "rust"]
    # Deterministic ids: batch id + event.
    assert by_topic["ebs.batch.started"][0].id == message_id(batch_id, "batch.started")
    assert failed.id == message_id(batch_id, "package.failed/rust")
    assert len({m.id for m in messages}) == len(messages)


async def test_a_broker_that_is_down_delays_the_messages_but_not_the_batch(
    engine: Engine, rabbitmq: RabbitMQ, tmp_path: Path, global_messaging_config: None
) -> None:
    """Publishing fails while the broker is away; the batch's Koji and Bodhi
    work goes on, and the batch finishes once the messages are out."""
    import asyncio

    name = f"test-ebs-msgs-{uuid.uuid4().hex[:8]}"  # durable: survives the broker stop
    publish_to(engine, messaging_toml(tmp_path / "fm.toml", rabbitmq.amqp_url))
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq.amqp_url))
    ch = conn.channel()
    ch.queue_declare(name, durable=True)
    ch.queue_bind(name, "amq.topic", routing_key=f"{PREFIX}.ebs.#")
    conn.close()
    await asyncio.to_thread(rabbitmq.stop)
    try:
        handle = await engine.start_batch(["bash"])
        # The build happens while the broker is down.
        await until(lambda: engine.sim.builds_submitted, 60, "a build while the broker is down",
                    interval=0.2)
        desc = await handle.describe()
        assert desc.status is not None and desc.status.name == "RUNNING"
    finally:
        await asyncio.to_thread(rabbitmq.start)
    result = await asyncio.wait_for(handle.result(), timeout=180)
    assert result.outcome == "succeeded"
    got = drain(rabbitmq.amqp_url, name)
    topics = [m.topic.removeprefix(PREFIX + ".") for m in got]
    # At least once: every message arrived; a repeat carries the same id and body.
    assert set(topics) == {"ebs.batch.started", "ebs.package.built", "ebs.update.filed",
                           "ebs.update.stable", "ebs.batch.finished"}, topics
    by_id: dict[str, str] = {}
    for m in got:
        assert by_id.setdefault(m.id, json.dumps(m.body, sort_keys=True)) == json.dumps(
            m.body, sort_keys=True)
