"""The fedora-messaging side of the bridge: consume, decide, forward, settle.

Each message is settled only after its fate is certain:

* forwarded and accepted by Temporal -> ack;
* irrelevant, stale (workflow gone) or malformed -> Drop (nack, no requeue),
  counted in ebs_bridge_messages; malformed ones also log one line;
* Temporal unreachable -> Nack (requeue) after a backoff, so an outage neither
  loses messages nor spins; logged at WARNING, or at ERROR when Temporal's
  answer means a misconfiguration (a missing namespace, the collector "not
  found" by its own signal-with-start), which must not drop messages either.

fedora-messaging consumes serially per connection, and a signal takes a few
milliseconds, so the bridge opens `consumers` connections on the same queue
(competing consumers, like replicas of the bridge). A queue that is exclusive
or server-named cannot be shared: then there is one consumer.

Callbacks run in Twisted's thread pool; the Temporal client lives on the
asyncio loop given to the bridge, and callbacks hand their signal to it.

Metrics: ebs_bridge_messages_total{kind=tag|task|repo|other, outcome=...} with
outcome signalled, irrelevant, malformed, not_found (workflow gone), unrouted
(repo event no batch waits on), rejected (Temporal refused the request),
requeued (Temporal unavailable or misconfigured; counted per attempt) or
error (a bug).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import crochet
from fedora_messaging import config as fm_config
from fedora_messaging.exceptions import Drop as DropMessage
from fedora_messaging.exceptions import Nack, ValidationError
from twisted.internet import defer

from ebs.bus import install_schema_cache
from ebs.ingest.decide import KIND_OTHER, Decision, Drop, Incoming, Rules, decide, kind_of
from ebs.ingest.forward import Forwarder, Outcome, Result
from ebs.metrics import BRIDGE_MESSAGES

log = logging.getLogger(__name__)

DEFAULT_CONSUMERS = 32  # see TAGS_MIN_INTERVAL in ebs.ingest.forward

# ebs_bridge_messages outcomes
IRRELEVANT = "irrelevant"
MALFORMED = "malformed"
REQUEUED = "requeued"
ERROR = "error"


def kv(**fields: Any) -> str:
    """`key=value ...` for one structured log line (values JSON-quoted when needed)."""
    parts = []
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if not text or any(c in text for c in ' "=\n\t'):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class Backoff:
    """Exponential backoff with jitter shared by all consumers; reset on success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._delay = 0.0
        self._lock = threading.Lock()

    def failed(self) -> float:
        """Record a failure; how long to wait before retrying."""
        with self._lock:
            self._delay = min(self.maximum, self._delay * 2 if self._delay else self.initial)
            return self._delay * random.uniform(0.75, 1.25)

    def succeeded(self) -> None:
        with self._lock:
            self._delay = 0.0


_counting_installed = False


def _log_malformed(routing_key: str, properties: Any, err: BaseException) -> None:
    kind = kind_of(routing_key or "")
    BRIDGE_MESSAGES.labels(kind, MALFORMED).inc()
    log.warning(
        kv(
            event="bridge_drop",
            outcome=MALFORMED,
            kind=kind,
            topic=routing_key,
            message_id=getattr(properties, "message_id", None),
            reason=" ".join(f"{type(err).__name__}: {err}".split())[:300],
        )
    )


def _install_validation_counter() -> None:
    """Count (and log once) the messages fedora-messaging itself drops because
    they fail their schema, before any callback sees them.

    A schema class may also choke on a body before validating it (TagV1's
    constructor reads body["tag"] of a body that is a list): fedora-messaging
    lets that error kill the consumer, and the message, redelivered, kills the
    next bridge too. Such a body is malformed like any other: it becomes a
    ValidationError, which fedora-messaging drops (nack, no requeue).
    """
    global _counting_installed
    if _counting_installed:
        return
    from fedora_messaging.twisted import consumer as fm_consumer

    original = fm_consumer.get_message

    def get_message(routing_key: str, properties: Any, body: bytes) -> Any:
        try:
            return original(routing_key, properties, body)
        except ValidationError as err:
            _log_malformed(routing_key, properties, err)
            raise
        except Exception as err:
            _log_malformed(routing_key, properties, err)
            raise ValidationError(err) from err

    fm_consumer.get_message = get_message
    _counting_installed = True


class Bridge:
    """Consumes the configured queue and forwards what matters to Temporal."""

    def __init__(
        self,
        rules: Callable[[], Rules],
        forwarder: Forwarder,
        loop: asyncio.AbstractEventLoop,
        *,
        consumers: int = DEFAULT_CONSUMERS,
        forward_timeout: float = 60.0,
        backoff: Backoff | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        reconnect_max_delay: float = 30.0,
    ) -> None:
        self._rules = rules
        self._forwarder = forwarder
        self._loop = loop
        self.forward_timeout = forward_timeout
        self.backoff = backoff or Backoff()
        self._on_fatal = on_fatal
        # Twisted's default reconnect backoff grows to an hour; a bridge should not.
        self.reconnect_max_delay = reconnect_max_delay
        self._stopping = threading.Event()
        self._connections: list[_Connection] = []
        self._consumers: list[Any] = []
        self.queues: dict[str, Any] = dict(fm_config.conf["queues"])
        self.bindings: list[dict[str, Any]] = list(fm_config.conf["bindings"])
        self.consumers = self._consumer_count(consumers)

    def _consumer_count(self, wanted: int) -> int:
        if wanted < 1:
            raise ValueError("consumers must be at least 1")
        private = [
            name or "(server-named)"
            for name, settings in self.queues.items()
            if not name or settings.get("exclusive")
        ]
        if private and wanted > 1:
            log.warning(
                "queue %s is exclusive or server-named, so it cannot be shared: one consumer",
                ", ".join(private),
            )
            return 1
        return wanted

    # ---- the callback (Twisted thread pool) ----------------------------------

    def handle(self, message: Any) -> None:
        """fedora-messaging callback: returns to ack, raises Drop or Nack."""
        incoming = Incoming.from_message(message)
        try:
            decision = decide(incoming, self._rules())
        except Exception:
            # A bug (in decide or the rules), not the message: keep it, loudly.
            log.exception("bridge cannot decide on message %s", incoming.message_id)
            self._count(kind_of(incoming.topic), ERROR)
            self._wait_then_requeue()
        if isinstance(decision, Drop):
            self._drop(incoming, decision)
        result = self._forward(decision)
        self._settle(incoming, decision, result)

    def _drop(self, msg: Incoming, decision: Drop) -> NoReturn:
        if decision.malformed:
            self._count(decision.kind, MALFORMED)
            log.warning(
                kv(
                    event="bridge_drop",
                    outcome=MALFORMED,
                    kind=decision.kind,
                    topic=msg.topic,
                    message_id=msg.message_id,
                    reason=decision.reason,
                )
            )
        else:
            self._count(decision.kind, IRRELEVANT)
            log.debug("drop %s %s: %s", msg.message_id, msg.topic, decision.reason)
        raise DropMessage()

    def _forward(self, decision: Decision) -> Result:
        try:
            future = asyncio.run_coroutine_threadsafe(self._forwarder.forward(decision), self._loop)
        except RuntimeError as err:  # the loop is closed: shutting down
            return Result(Outcome.UNAVAILABLE, f"event loop gone: {err}")
        try:
            return future.result(timeout=self.forward_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return Result(Outcome.UNAVAILABLE, f"no answer within {self.forward_timeout:.0f} s")
        except Exception as err:
            log.exception("forwarding %s failed unexpectedly", type(decision).__name__)
            return Result(Outcome.UNAVAILABLE, f"{type(err).__name__}: {err}")

    def _settle(self, msg: Incoming, decision: Decision, result: Result) -> None:
        kind = getattr(decision, "kind", KIND_OTHER)
        outcome = result.outcome
        if outcome is Outcome.UNAVAILABLE:
            self._count(kind, REQUEUED)
            log.log(
                result.level,
                kv(
                    event="bridge_requeue",
                    kind=kind,
                    message_id=msg.message_id,
                    reason=result.detail,
                )
            )
            self._wait_then_requeue()
        self.backoff.succeeded()
        self._count(kind, outcome.value)
        if outcome is Outcome.SIGNALLED:
            log.info(
                "%s %s -> %s (%s)", kind, msg.message_id, result.workflow_id, _summary(decision)
            )
            return
        if outcome is Outcome.REJECTED:
            log.error(
                kv(
                    event="bridge_drop",
                    outcome=outcome.value,
                    kind=kind,
                    message_id=msg.message_id,
                    workflow_id=result.workflow_id,
                    reason=result.detail,
                )
            )
        else:
            log.debug("drop %s %s: %s", msg.message_id, outcome.value, result.detail)
        raise DropMessage()

    def _wait_then_requeue(self) -> NoReturn:
        delay = self.backoff.failed()
        if not self._stopping.is_set():
            self._stopping.wait(delay)
        raise Nack()

    @staticmethod
    def _count(kind: str, outcome: str) -> None:
        BRIDGE_MESSAGES.labels(kind, outcome).inc()

    # ---- lifecycle (any thread but the reactor's) ------------------------------

    def start(self) -> None:
        """Connect and start consuming; returns at once (consumers register as
        soon as the broker answers, and again after every reconnection)."""
        install_schema_cache()
        _install_validation_counter()
        crochet.setup()
        amqp_url = str(fm_config.conf["amqp_url"])
        for _ in range(self.consumers):
            self._connections.append(_start_consumer(amqp_url, self).wait(30))
        log.info(
            "bridge consuming %s with %d consumer(s)",
            ", ".join(name or "(server-named)" for name in self.queues),
            self.consumers,
        )

    def wait_consuming(self, timeout: float) -> None:
        """Block until every consumer is registered with the broker (tests, tools)."""
        _wait_consuming(self._connections).wait(timeout)

    def _registered(self, consumers: list[Any]) -> None:
        """Called in the reactor when one connection's consumers are registered."""
        self._consumers.extend(consumers)
        for consumer in consumers:
            consumer.result.addErrback(self._consumer_failed)

    def _consumer_failed(self, failure: Any) -> None:
        if self._stopping.is_set():
            return None
        err = failure.value
        log.error("a consumer stopped for good: %r", err)
        if self._on_fatal is not None:
            self._on_fatal(err)
        return None

    def stop(self, timeout: float = 60.0) -> None:
        """Stop consuming, let in-flight messages settle, close the connections."""
        self._stopping.set()
        connections, self._connections = self._connections, []
        if connections:
            try:
                _stop_services(connections).wait(timeout)
            except crochet.TimeoutError:
                log.warning("the AMQP connections did not close within %.0f s", timeout)
        log.info("bridge stopped")


@dataclass
class _Connection:
    service: Any  # FedoraMessagingServiceV2: one AMQP connection
    consuming: defer.Deferred[Any]  # fires once its consumers are registered


@crochet.run_in_reactor
def _start_consumer(amqp_url: str, bridge: Bridge) -> _Connection:
    from fedora_messaging.twisted.service import FedoraMessagingServiceV2
    from twisted.internet import reactor

    reactor.suggestThreadPoolSize(max(10, bridge.consumers + 4))  # type: ignore[attr-defined]
    service = FedoraMessagingServiceV2(amqp_url)
    service.factory.maxDelay = bridge.reconnect_max_delay  # type: ignore[assignment]
    service.startService()
    bindings: Any = bridge.bindings
    consuming = service.factory.consume(bridge.handle, bindings, bridge.queues)

    def registered(consumers: list[Any]) -> list[Any]:
        bridge._registered(consumers)
        return consumers

    def failed(failure: Any) -> None:
        log.error("cannot consume: %s", failure.getErrorMessage())
        bridge._consumer_failed(failure)

    consuming.addCallbacks(registered, failed)
    return _Connection(service, consuming)


@crochet.run_in_reactor
def _wait_consuming(connections: list[_Connection]) -> Any:
    return defer.gatherResults([c.consuming for c in connections])


@crochet.run_in_reactor
def _stop_services(connections: list[_Connection]) -> Any:
    return defer.gatherResults([defer.maybeDeferred(c.service.stopService) for c in connections])


def _summary(decision: Decision) -> str:
    event = getattr(decision, "event", None)
    if event is None:
        return ""
    for attr in ("nvr", "state", "tag"):
        value = getattr(event, attr, None)
        if value:
            return str(value)
    return ""
