"""A timer thread: runs callbacks at (real-clock) deadlines, in deadline order."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, name: str = "ebs-sim-scheduler") -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._running = False
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._heap.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq), fn))
            self._cond.notify_all()

    def idle(self) -> bool:
        """No callback due now or running (future ones may still be pending)."""
        with self._cond:
            due = bool(self._heap) and self._heap[0][0] <= time.monotonic()
            return not due and self._busy == 0

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if not self._running:
                    return
                _, _, fn = heapq.heappop(self._heap)
                self._busy += 1
            try:
                fn()
            except Exception:
                log.exception("simulator scheduled action failed")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
