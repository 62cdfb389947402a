"""The publish activity: ebs's messages to the bus, at least once.

Thin: the batch decides what to announce (ebs.workflows.announcer); this sends
it with ebs.bus.EbsPublisher, in order, and heartbeats after each confirmed
message so a retry after a crash resumes after the last one confirmed (a
message may still go out twice, with the same id). A broker that does not
confirm fails the attempt; Temporal retries it without a maximum.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ebs.config.model import MessagingConfig
from ebs.contracts.bus import PublishRequest, PublishResult

log = logging.getLogger(__name__)


class MessageActivities:
    """`messaging()` gives the current messaging config (None: publishing
    disabled) and `agent()` the account ebs acts as (the Koji user)."""

    def __init__(self, messaging: Callable[[], MessagingConfig | None],
                 agent: Callable[[], str] = lambda: "") -> None:
        self._messaging = messaging
        self._agent = agent
        self._lock = threading.Lock()
        self._publisher: object | None = None
        self._publisher_for: str | None = None

    def _get_publisher(self, cfg: MessagingConfig) -> object:
        from ebs.bus import EbsPublisher

        with self._lock:
            if self._publisher is None or self._publisher_for != (cfg.config or ""):
                if isinstance(self._publisher, EbsPublisher):
                    self._publisher.close()
                self._publisher = EbsPublisher(cfg.config, timeout=cfg.publish_timeout)
                self._publisher_for = cfg.config or ""
            return self._publisher

    @activity.defn(name="publish_messages")
    def publish_messages(self, req: PublishRequest) -> PublishResult:
        from fedora_messaging.exceptions import (
            ConnectionException,
            PublishException,
            ValidationError,
        )

        from ebs.bus import EbsPublisher

        cfg = self._messaging()
        if cfg is None or not cfg.publish:
            activity.logger.info("messaging disabled; not publishing %d message(s)",
                                 len(req.messages))
            return PublishResult(disabled=True)
        details = activity.info().heartbeat_details
        start = int(details[0]) if details else 0  # confirmed by an earlier attempt
        publisher = self._get_publisher(cfg)
        assert isinstance(publisher, EbsPublisher)
        agent = self._agent()
        for n in range(start, len(req.messages)):
            m = req.messages[n]
            body = dict(m.body)
            if not body.get("agent"):
                body["agent"] = agent
            try:
                msg = publisher.publish(m.topic, body, m.id)
            except (ValueError, ValidationError) as err:
                raise ApplicationError(f"{m.topic} {m.id}: {err}", type="InvalidMessage",
                                       non_retryable=True) from err
            except (ConnectionException, PublishException) as err:
                # PublishTimeout, PublishReturned, PublishForbidden: retried.
                activity.heartbeat(n)
                raise ApplicationError(
                    f"the broker did not take {m.topic} {m.id}: {err}; will retry",
                    type="BrokerUnavailable",
                ) from err
            activity.logger.info("published %s %s: %s", msg.topic, msg.id, msg.summary)
            activity.heartbeat(n + 1)
        return PublishResult(published=len(req.messages) - start)

    def all(self) -> list:
        return [self.publish_messages]
