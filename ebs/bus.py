"""The Fedora Messaging bus: Koji message classes, topics and the AMQP publishers.

Everything ebs sends to or reads from AMQP goes through fedora-messaging with
the message classes of koji-fedoramessaging-messages, so headers and schemas
are the ones Fedora's Koji really publishes. The consumer side lives in
:mod:`ebs.ingest.bridge`; this module holds what both sides share, and
:class:`EbsPublisher`, which sends ebs's own messages (the `ebs-messages`
schema package in messages/) under the deployment's `topic_prefix`.

fedora-messaging runs on Twisted; ebs drives it through crochet (the reactor
in a background thread), as fedora-messaging's own synchronous API does, so a
publisher and the bridge can live in one process next to asyncio code.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Mapping
from typing import Any

import crochet
import jsonschema
import jsonschema.exceptions
from fedora_messaging import config as fm_config
from fedora_messaging import message as fm_message
from fedora_messaging.message import Message
from koji_fedoramessaging_messages import build, package, repo, rpm, tag, task

log = logging.getLogger(__name__)

TOPIC_ROOT = "org.fedoraproject"
ENVIRONMENTS = ("prod", "stg")

TOPIC_TAG = "buildsys.tag"
TOPIC_TASK_STATE = "buildsys.task.state.change"
# Fedora's koji plugin sends task.state.change only for scratch builds; real
# and draft builds announce themselves with build.state.change.
TOPIC_BUILD_STATE = "buildsys.build.state.change"
TOPIC_REPO_INIT = "buildsys.repo.init"
TOPIC_REPO_DONE = "buildsys.repo.done"
# What the bridge consumes (and binds in the example configurations).
BRIDGE_TOPICS = (
    TOPIC_TAG, TOPIC_TASK_STATE, TOPIC_BUILD_STATE, TOPIC_REPO_INIT, TOPIC_REPO_DONE,
)

# Koji topic (without the org.fedoraproject.<env> prefix) -> message class.
KOJI_MESSAGE_CLASSES: dict[str, type[Message]] = {
    cls.topic: cls
    for cls in (
        tag.TagV1,
        tag.UntagV1,
        task.TaskStateChangeV1,
        repo.InitV1,
        repo.DoneV1,
        build.BuildStateChangeV1,
        package.ListChangeV1,
        rpm.SignV1,
    )
}


def full_topic(env: str, topic: str) -> str:
    """`buildsys.tag` in `prod` -> `org.fedoraproject.prod.buildsys.tag`."""
    if not env or "." in env:
        raise ValueError(f"not a bus environment name: {env!r}")
    return f"{TOPIC_ROOT}.{env}.{topic}"


def koji_topic(routing_key: str) -> str | None:
    """The Koji part of a routing key (`org.fedoraproject.<env>.buildsys.tag`
    -> `buildsys.tag`), or None when it is not a Koji topic at all."""
    start = routing_key.find("buildsys.")
    if start < 0:
        return None
    if start > 0:
        prefix = routing_key[:start]
        if not prefix.startswith(TOPIC_ROOT + ".") or prefix.count(".") != 3:
            return None
    return routing_key[start:]


def koji_message(topic: str, body: Mapping[str, Any], env: str = "prod") -> Message:
    """A Koji message of the right class for `topic`, validated against its schema.

    Raises ValueError for a topic Koji does not publish and
    fedora_messaging.exceptions.ValidationError for a body its schema rejects.
    """
    from fedora_messaging.exceptions import ValidationError

    install_schema_cache()
    cls = _message_class(KOJI_MESSAGE_CLASSES, topic, "Koji")
    msg = cls(body=dict(body), topic=full_topic(env, topic))
    try:
        msg.validate()
    except jsonschema.exceptions.ValidationError as err:
        raise ValidationError(err) from err
    return msg


# ---- schema validation speed-up ------------------------------------------

_validators: dict[int, tuple[object, Any]] = {}
_validators_lock = threading.Lock()


def _cached_validate(instance: Any, schema: Mapping[str, Any]) -> None:
    """jsonschema.validate, minus re-checking the schema itself on every call.

    fedora-messaging validates every message it sends or receives with
    `jsonschema.validate`, which first validates the (constant, class-level)
    schema against its meta-schema: ~3 ms for a Koji tag message and ~10 ms for
    a task message, enough to cap a consumer below 100 messages/s. The result
    is the same: same validator class, same best-match error.
    """
    key = id(schema)
    entry = _validators.get(key)
    if entry is None or entry[0] is not schema:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        entry = (schema, cls(schema))
        with _validators_lock:
            _validators[key] = entry
    error = jsonschema.exceptions.best_match(entry[1].iter_errors(instance))
    if error is not None:
        raise error


def install_schema_cache() -> None:
    """Make fedora-messaging's message validation use cached validators.

    Only the `jsonschema` name inside fedora_messaging.message is replaced (by a
    namespace with the same `validate` and `exceptions`); nothing else in the
    process changes. Idempotent.
    """
    current = fm_message.jsonschema
    if getattr(current, "ebs_cached", False):
        return
    fm_message.jsonschema = types.SimpleNamespace(  # type: ignore[assignment]
        validate=_cached_validate,
        exceptions=jsonschema.exceptions,
        ebs_cached=True,
    )


# ---- configuration -------------------------------------------------------

_config_lock = threading.Lock()


def load_messaging_config(path: str | None = None, amqp_url: str | None = None) -> None:
    """Load fedora-messaging's TOML configuration (`path`, else
    $FEDORA_MESSAGING_CONF, else /etc/fedora-messaging/config.toml) and
    optionally override its broker URL. Raises ConfigurationException."""
    with _config_lock:
        if path is not None or not fm_config.conf.loaded:
            fm_config.conf.load_config(path)
        if amqp_url:
            fm_config.conf["amqp_url"] = amqp_url


# ---- publishing ----------------------------------------------------------


class AmqpSink:
    """Publishes Koji messages to the broker (the simulator's sink, tests, tools).

    `publish(topic, body)` builds the koji-fedoramessaging-messages class for
    `topic`, sends it as `org.fedoraproject.<env>.<topic>` with publisher
    confirms, and returns once the broker has accepted it (`send` also returns
    the message id).
    Reconnects by itself; a publish waits for the broker up to `timeout`
    seconds, then raises fedora_messaging.exceptions.PublishTimeout.
    """

    def __init__(
        self,
        env: str = "prod",
        *,
        amqp_url: str | None = None,
        messaging_config: str | None = None,
        exchange: str | None = None,
        timeout: float = 30.0,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        full_topic(env, "x")  # validates env
        self.env = env
        self.timeout = timeout
        self.reconnect_max_delay = reconnect_max_delay
        install_schema_cache()
        load_messaging_config(messaging_config)
        self.exchange = exchange or str(fm_config.conf["publish_exchange"])
        self._amqp_url = amqp_url or str(fm_config.conf["amqp_url"])
        self._service: Any = None
        self._lock = threading.Lock()

    def _ensure_service(self) -> Any:
        with self._lock:
            if self._service is None:
                crochet.setup()
                self._service = _start_service(self._amqp_url, self.reconnect_max_delay).wait(
                    self.timeout
                )
            return self._service

    def publish(self, topic: str, body: Mapping[str, Any]) -> None:
        """The simulator's sink interface (ebs.simulator.sinks.MessageSink)."""
        self.send(topic, body)

    def send(self, topic: str, body: Mapping[str, Any], message_id: str | None = None) -> str:
        """Publish; returns the message id (`message_id` reuses one: a redelivery)."""
        msg = koji_message(topic, body, self.env)
        if message_id:
            msg.id = message_id
        self.publish_message(msg)
        return msg.id

    def publish_message(self, msg: Message) -> None:
        """Publish an already built message (any class; its topic is the routing key)."""
        from fedora_messaging.exceptions import PublishTimeout

        service = self._ensure_service()
        result = _publish(service, msg, self.exchange)
        try:
            result.wait(self.timeout)
        except crochet.TimeoutError as err:
            result.cancel()
            raise PublishTimeout(f"broker did not confirm within {self.timeout} s") from err

    def close(self) -> None:
        """Disconnect (idempotent)."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            _stop_service(service).wait(self.timeout)

    def __enter__(self) -> AmqpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@crochet.run_in_reactor
def _start_service(amqp_url: str, reconnect_max_delay: float) -> Any:
    from fedora_messaging.twisted.service import FedoraMessagingServiceV2

    service = FedoraMessagingServiceV2(amqp_url)
    service.factory.maxDelay = reconnect_max_delay  # type: ignore[assignment]
    service.startService()
    return service


@crochet.run_in_reactor
def _publish(service: Any, msg: Message, exchange: str) -> Any:
    return service.factory.publish(msg, exchange)


@crochet.run_in_reactor
def _stop_service(service: Any) -> Any:
    return service.stopService()


# ---- ebs's own messages ----------------------------------------------------


def ebs_message(topic: str, body: Mapping[str, Any], message_id: str = "") -> Message:
    """An ebs-messages message for `topic` (e.g. `ebs.package.built`), validated.

    `topic` is without the deployment's prefix: fedora-messaging adds the
    configured `topic_prefix` (e.g. `org.fedoraproject.prod`) when it publishes.
    Raises ValueError for an unknown topic and
    fedora_messaging.exceptions.ValidationError for a body its schema rejects.
    """
    from ebs_messages import MESSAGE_CLASSES
    from fedora_messaging.exceptions import ValidationError

    install_schema_cache()
    cls = _message_class(MESSAGE_CLASSES, topic, "ebs")
    msg = cls(body=dict(body))
    if message_id:
        msg.id = message_id
    try:
        msg.validate()
    except jsonschema.exceptions.ValidationError as err:
        raise ValidationError(err) from err
    return msg


class EbsPublisher:
    """Publishes ebs's messages with publisher confirms to the broker of a
    fedora-messaging configuration (`path`, else $FEDORA_MESSAGING_CONF, else
    /etc/fedora-messaging/config.toml).

    `publish` returns once the broker has confirmed the message, and raises
    fedora_messaging.exceptions.PublishTimeout (or ConnectionException) when it
    has not within `timeout` seconds: the caller retries with the same id.
    """

    def __init__(self, messaging_config: str | None = None, *, timeout: float = 10.0) -> None:
        self._sink = AmqpSink(messaging_config=messaging_config, timeout=timeout,
                              reconnect_max_delay=10.0)

    @property
    def topic_prefix(self) -> str:
        return str(fm_config.conf["topic_prefix"] or "")

    def publish(self, topic: str, body: Mapping[str, Any], message_id: str) -> Message:
        msg = ebs_message(topic, body, message_id)
        self._sink.publish_message(msg)
        return msg

    def close(self) -> None:
        self._sink.close()


def _message_class(classes: Mapping[str, type[Any]], topic: str, publisher: str) -> type[Any]:
    """The schema class of `topic`; ValueError naming the known topics if none."""
    try:
        return classes[topic]
    except KeyError:
        known = ", ".join(sorted(classes))
        raise ValueError(f"{publisher} publishes no topic {topic!r}; known: {known}") from None
