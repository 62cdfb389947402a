"""Bus messages as Fedora's koji-fedoramessaging plugin publishes them.

Bodies follow the plugin (fedora-infra/koji-fedoramessaging) field by field:
the hub callback's info dict, timestamps made JSON-friendly, the float fields
weight/start_ts/create_ts/completion_ts scrubbed, and "instance": "primary".
The plugin publishes buildsys.task.state.change only for *scratch* parent
tasks; real builds are announced by buildsys.build.state.change instead. The
simulator does the same (see World.task_messages to widen it for experiments).

The Outbox delivers them in order from its own thread, applying the scripted
drop / duplicate / reorder chaos at the sink boundary.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .sinks import MessageSink

log = logging.getLogger(__name__)

_SCRUBBED = ("weight", "start_ts", "create_ts", "completion_ts")


def scrub(obj: Any) -> Any:
    if isinstance(obj, list | tuple):
        return [scrub(item) for item in obj]
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items() if k not in _SCRUBBED}
    return obj


def tag_body(base_url: str, tag: dict[str, Any], build: dict[str, Any], user: str,
             owner: str) -> dict[str, Any]:
    """buildsys.tag / buildsys.untag."""
    return {
        "base_url": base_url,
        "tag": tag["name"],
        "name": build["name"],
        "version": build["version"],
        "release": build["release"],
        "user": user,
        "owner": owner,
        "tag_id": tag["id"],
        "build_id": build["id"],
        "instance": "primary",
    }


def repo_body(base_url: str, tag: dict[str, Any], repo_id: int) -> dict[str, Any]:
    """buildsys.repo.init / buildsys.repo.done."""
    return {"base_url": base_url, "tag": tag["name"], "tag_id": tag["id"], "repo_id": repo_id,
            "instance": "primary"}


def task_state_body(base_url: str, files_base_url: str, full_info: dict[str, Any], old: str | None,
                    new: str) -> dict[str, Any]:
    """buildsys.task.state.change; full_info as the plugin's get_full_task_info makes it."""
    request = full_info.get("request") or ["/"]
    return scrub({
        "base_url": base_url,
        "files_base_url": files_base_url,
        "info": full_info,
        "method": full_info["method"],
        "attribute": "state",
        "old": old,
        "new": new,
        "id": full_info["id"],
        "owner": full_info["owner"],
        "srpm": str(request[0]).split("/")[-1],
        "instance": "primary",
    })


def build_state_body(base_url: str, files_base_url: str, build: dict[str, Any],
                     old: int | None, new: int, task: dict[str, Any] | None,
                     creation_iso: str, completion_iso: str | None) -> dict[str, Any]:
    """buildsys.build.state.change."""
    return scrub({
        "base_url": base_url,
        "files_base_url": files_base_url,
        "name": build["name"],
        "version": build["version"],
        "release": build["release"],
        "epoch": build.get("epoch"),
        "attribute": "state",
        "old": old,
        "new": new,
        "build_id": build["id"],
        "url": f"{base_url}/koji/buildinfo?buildID={build['id']}",
        "task_id": build.get("task_id"),
        "request": task["request"] if task else None,
        "owner": build.get("owner_name"),
        "instance": "primary",
        "completion_time": completion_iso,
        "creation_time": creation_iso,
        "task": task,
    })


@dataclass
class Delivery:
    topic: str
    body: dict[str, Any]
    fate: str  # delivered | dropped | duplicated | reordered


class Outbox:
    """Ordered, asynchronous delivery to a sink, with scripted chaos."""

    def __init__(self, sink: MessageSink, rng: random.Random,
                 chaos: Callable[[], tuple[float, float, float]]) -> None:
        self.sink = sink
        self._rng = rng
        self._chaos = chaos
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._held: tuple[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self.log: list[Delivery] = []
        self.sink_errors = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ebs-sim-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.flush(timeout=5)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def put(self, topic: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._unfinished += 1
        self._queue.put((topic, body))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message has been handed to the sink (or dropped)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._held is not None and self._queue.empty():
                    # nothing will come to swap with: let the held message go
                    self._queue.put(("__release__", {}))
                    self._unfinished += 1
                self._idle.wait(min(remaining, 0.05))
        return True

    def _send(self, topic: str, body: dict[str, Any], fate: str) -> None:
        self.log.append(Delivery(topic, body, fate))
        try:
            self.sink.publish(topic, body)
        except Exception:
            self.sink_errors += 1
            log.exception("simulator: publishing %s failed", topic)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            topic, body = item
            released: tuple[str, dict[str, Any]] | None = None
            if topic == "__release__":
                with self._lock:
                    released, self._held = self._held, None
                if released is not None:
                    self._send(released[0], released[1], "reordered")
                self._done(1 + (1 if released is not None else 0))
                continue
            drop, duplicate, reorder = self._chaos()
            finished = 1
            if drop and self._rng.random() < drop:
                self.log.append(Delivery(topic, body, "dropped"))
            elif reorder and self._held is None and self._rng.random() < reorder:
                with self._lock:
                    self._held = (topic, body)
                finished = 0  # counted when released
            else:
                self._send(topic, body, "delivered")
                if duplicate and self._rng.random() < duplicate:
                    self._send(topic, body, "duplicated")
                with self._lock:
                    released, self._held = self._held, None
                if released is not None:
                    self._send(released[0], released[1], "reordered")
                    finished += 1
            self._done(finished)

    def _done(self, n: int) -> None:
        with self._idle:
            self._unfinished -= n
            self._idle.notify_all()
