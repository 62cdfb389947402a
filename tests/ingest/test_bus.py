"""ebs.bus: Koji message classes, topics, the schema cache and the AMQP sink."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import jsonschema
import pika
import pytest
from fedora_messaging.exceptions import ValidationError
from fedora_messaging.message import get_message

from ebs.bus import (
    KOJI_MESSAGE_CLASSES,
    AmqpSink,
    _cached_validate,
    full_topic,
    install_schema_cache,
    koji_message,
    koji_topic,
)
from tests.helpers import rabbitmq as rmq
from tests.helpers.rabbitmq import RabbitMQ

rabbitmq = rmq.rabbitmq  # the session broker fixture

pytestmark = [
    # fedora-messaging and crochet use Twisted APIs that Twisted now deprecates.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:(crochet|fedora_messaging|twisted)"),
]

TAG = {
    "build_id": 1,
    "name": "bash",
    "tag_id": 2,
    "instance": "primary",
    "tag": "f45",
    "user": "bodhi",
    "version": "5.2",
    "release": "1.fc45",
    "owner": "someone",
}


def test_topics() -> None:
    assert full_topic("prod", "buildsys.tag") == "org.fedoraproject.prod.buildsys.tag"
    with pytest.raises(ValueError):
        full_topic("prod.x", "buildsys.tag")
    assert koji_topic("org.fedoraproject.stg.buildsys.repo.done") == "buildsys.repo.done"
    assert koji_topic("buildsys.tag") == "buildsys.tag"
    assert koji_topic("org.fedoraproject.prod.bodhi.update.comment") is None
    assert koji_topic("com.example.prod.buildsys.tag") is None
    assert {
        "buildsys.tag",
        "buildsys.task.state.change",
        "buildsys.repo.init",
        "buildsys.repo.done",
    } <= set(KOJI_MESSAGE_CLASSES)


def test_koji_message_uses_the_real_class_and_headers() -> None:
    msg = koji_message("buildsys.tag", TAG, env="stg")
    assert type(msg).__name__ == "TagV1"
    assert msg.topic == "org.fedoraproject.stg.buildsys.tag"
    assert msg._headers["fedora_messaging_schema"] == "koji_fedoramessaging.tag.TagV1"
    assert msg._headers["fedora_messaging_rpm_bash"] is True
    with pytest.raises(ValidationError):
        koji_message("buildsys.tag", {**TAG, "build_id": "one"})
    with pytest.raises(ValueError, match="no topic"):
        koji_message("buildsys.nope", TAG)


def test_schema_cache_validates_exactly_like_jsonschema() -> None:
    install_schema_cache()
    install_schema_cache()  # idempotent
    schema = KOJI_MESSAGE_CLASSES["buildsys.task.state.change"].body_schema
    bad = {"id": "x"}
    with pytest.raises(jsonschema.exceptions.ValidationError) as ours:
        _cached_validate(bad, schema)
    with pytest.raises(jsonschema.exceptions.ValidationError) as theirs:
        jsonschema.validate(bad, schema)
    assert ours.value.message == theirs.value.message
    _cached_validate(TAG, KOJI_MESSAGE_CLASSES["buildsys.tag"].body_schema)


@pytest.fixture
def bound_queue(
    rabbitmq: RabbitMQ,
) -> Iterator[tuple[pika.adapters.blocking_connection.BlockingChannel, str]]:
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq.amqp_url))
    channel = conn.channel()
    queue = f"test-bus-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, auto_delete=True)
    channel.queue_bind(queue, "amq.topic", routing_key="org.fedoraproject.bustest.#")
    yield channel, queue
    conn.close()


@pytest.mark.broker
def test_amqp_sink_publishes_koji_messages_a_consumer_can_read(
    rabbitmq: RabbitMQ,
    bound_queue: tuple[pika.adapters.blocking_connection.BlockingChannel, str],
) -> None:
    channel, queue = bound_queue
    with AmqpSink("bustest", amqp_url=rabbitmq.amqp_url, timeout=20) as sink:
        mid = sink.send("buildsys.tag", TAG)
        sink.publish("buildsys.repo.done", {"repo_id": 3, "tag": "eln-build-side-1", "tag_id": 4})
    method, props, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None
    assert method.routing_key == "org.fedoraproject.bustest.buildsys.tag"
    assert props.message_id == mid and props.delivery_mode == 2
    assert json.loads(body) == TAG
    # What fedora-messaging's consumer makes of it: the real class, validated.
    msg = get_message(method.routing_key, props, body)
    assert type(msg).__name__ == "TagV1" and msg.id == mid
    method, props, body = channel.basic_get(queue, auto_ack=True)
    assert method.routing_key == "org.fedoraproject.bustest.buildsys.repo.done"
    assert type(get_message(method.routing_key, props, body)).__name__ == "DoneV1"


@pytest.mark.broker
def test_amqp_sink_refuses_invalid_bodies_before_sending(rabbitmq: RabbitMQ) -> None:
    sink = AmqpSink("bustest", amqp_url=rabbitmq.amqp_url, timeout=20)
    with pytest.raises(ValidationError):
        sink.publish("buildsys.tag", {**TAG, "tag_id": "x"})
    with pytest.raises(ValueError):
        sink.publish("nope", TAG)
    sink.close()
