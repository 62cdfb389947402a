"""Where the simulator's bus messages go.

The simulator builds message bodies exactly as Fedora's koji-fedoramessaging
plugin does and hands them to a sink. The AMQP sink (a real broker) lives in
ebs.bus; here are the in-process ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


class MessageSink(Protocol):
    def publish(self, topic: str, body: dict[str, Any]) -> object:
        """Publish one message; topic is e.g. "buildsys.tag". The result is ignored."""


class NullSink:
    """Discards every message."""

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        return None


@dataclass
class Published:
    topic: str
    body: dict[str, Any]
    at: float = field(default_factory=time.time)


class ListSink:
    """Keeps every message in memory, in publication order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Published] = []

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(Published(topic, body))

    @property
    def messages(self) -> list[Published]:
        with self._lock:
            return list(self._messages)

    def bodies(self, topic: str) -> list[dict[str, Any]]:
        return [m.body for m in self.messages if m.topic == topic]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


class FanoutSink:
    """Publishes to several sinks (e.g. the AMQP sink and a ListSink for inspection)."""

    def __init__(self, *sinks: MessageSink) -> None:
        self.sinks = list(sinks)

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.publish(topic, body)
