"""A stand-in for Koji 1.35's kojira: it serves repo REQUESTS only.

Since 1.35 the hub keeps a repo queue (``repo.request``, ``repoInfo``,
``koji wait-repo --request``; tags with ``repo.auto`` get automatic requests).
Kojira's loop asks the hub to make automatic requests (``repo.autoRequests``),
to turn waiting requests into newRepo tasks (``repo.checkQueue``) and to
update end events (``repo.updateEndEvents``); the newRepo tasks are run by
builders (here StandInBuilder). It does NOT regenerate every tag whose
content changed, as kojira before 1.35 did: a tag nobody asked a repo for
gets none.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import koji

    from tests.realstack.koji_hub import KojiHub

log = logging.getLogger(__name__)


class StandInKojira:
    user = "kojira"

    def __init__(self, hub: KojiHub, poll: float = 0.2,
                 on_pass: Callable[[], None] | None = None) -> None:
        """on_pass: called after each pass (the stack wakes its builder, which
        runs the newRepo tasks checkQueue made)."""
        self.hub = hub
        self.on_pass = on_pass
        self.poll = poll
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: koji.ClientSession | None = None
        self.passes = 0

    def start(self) -> StandInKojira:
        self.hub.add_user(self.user, perms=("repo",))
        self._session = self.hub.session(self.user)
        self._thread = threading.Thread(target=self._run, name="kojira", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        """Serve no requests until resume() (requests stay queued)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def run_once(self) -> None:
        assert self._session is not None
        self._session.repo.autoRequests()
        self._session.repo.checkQueue()
        self._session.repo.updateEndEvents()
        self.passes += 1
        if self.on_pass is not None:
            self.on_pass()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._paused.is_set():
                try:
                    self.run_once()
                except Exception as exc:
                    if not self._stop.is_set():
                        log.warning("kojira stand-in: %s", exc)
            self._stop.wait(self.poll)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._session is not None:
            try:
                self._session.logout()
            except Exception:
                log.debug("kojira logout failed", exc_info=True)
