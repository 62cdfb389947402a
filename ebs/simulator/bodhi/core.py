"""The Bodhi simulator's state: releases, updates, faults, logins and the
timers that push side-tag updates to stable; scripting and saved state."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ..faults import Fault
from .model import (
    OPERATIONS,
    UPDATE_DATES,
    KojiView,
    SimCall,
    SimRelease,
    SimUpdate,
    default_releases,
)
from .state import parse_state, validate_settings

log = logging.getLogger(__name__)


class BodhiCore:
    """The state every part of the Bodhi simulator shares, behind one lock.

    auth: ``"none"`` accepts writes without a login (the sandbox's
    ``auth: none``); ``"oidc"`` needs a bearer token from the built-in
    provider or the ``auth_tkt`` cookie.  kerberos: ``"accept"`` makes the
    authorization endpoint answer as Ipsilon does for a Kerberos-authenticated
    client; ``"reject"`` answers 401 Negotiate, which no client can satisfy
    here (a failed Kerberos login).
    """

    def __init__(
        self,
        koji: KojiView,
        *,
        seed: int = 0,
        releases: Iterable[SimRelease] | None = None,
        stable_after: float | None = 1.0,
        auth: str = "none",
        kerberos: str = "accept",
        username: str = "elnbuildsync",
        token_lifetime: int = 3600,
    ) -> None:
        self._koji = koji
        self._lock = threading.RLock()
        # Called (without arguments) after a change worth saving (ebs.simulator.persist).
        self.on_change: Callable[[], None] | None = None
        self._rng = random.Random(seed)
        self._secret = hashlib.sha256(f"bodhi-sim-{seed}".encode()).digest()
        self._releases: dict[str, SimRelease] = {}
        for release in default_releases() if releases is None else releases:
            self.add_release(release)
        self._updates: dict[str, SimUpdate] = {}
        self._faults: list[Fault] = []
        self._calls: list[SimCall] = []
        self._timers: dict[str, threading.Timer] = {}
        self._stable_due: dict[str, float] = {}  # alias -> wall-clock time it goes stable
        self._codes: dict[str, dict[str, str]] = {}
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._auth_tickets: dict[str, str] = {}
        self._closed = False
        self.stable_after = stable_after
        self.username = username
        self.token_lifetime = token_lifetime
        self.auth = auth
        self.kerberos = kerberos
        self._check_settings()

    # ---- scripting and inspection ------------------------------------------

    def add_release(self, release: SimRelease) -> None:
        with self._lock:
            if release.name in self._releases:
                raise ValueError(f"release {release.name} already exists")
            self._releases[release.name] = release
        self._changed()

    def release(self, name: str) -> SimRelease:
        with self._lock:
            return self._releases[name]

    def add_fault(self, operation: str, kind: str = "error", **options: Any) -> Fault:
        """Script a fault (ebs.simulator.faults) of one operation or of "*"."""
        if operation != "*" and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {OPERATIONS} or '*'")
        fault = Fault(operation, kind, **options)
        with self._lock:
            self._faults.append(fault)
        self._changed()
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self._changed()

    def calls(self, operation: str | None = None) -> list[SimCall]:
        with self._lock:
            return [c for c in self._calls if operation is None or c.operation == operation]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def updates(self) -> list[SimUpdate]:
        with self._lock:
            return list(self._updates.values())

    def update(self, alias: str) -> SimUpdate:
        with self._lock:
            return self._updates[alias]

    def revoke_logins(self) -> None:
        """Forget every token and session ticket, as after a server-side expiry."""
        with self._lock:
            self._access_tokens.clear()
            self._refresh_tokens.clear()
            self._auth_tickets.clear()
        self._changed()

    def make_stable(self, alias: str) -> SimUpdate:
        """Push an update to stable now: tag its builds into the release's stable
        tag and remove its side tag.  Koji errors propagate."""
        with self._lock:
            update = self._updates[alias]
            timer = self._timers.pop(alias, None)
            if timer is not None:
                timer.cancel()
            self._stable_due.pop(alias, None)
            if update.status == "stable":
                return update
            tagged = set(self._koji.tagged_nvrs(update.release.stable_tag))
            for nvr in update.builds:
                if nvr not in tagged:
                    self._koji.tag_nvr(update.release.stable_tag, nvr)
            if update.from_tag and self._koji.tag_exists(update.from_tag):
                self._koji.remove_side_tag(update.from_tag)
            now = datetime.now(UTC)
            update.status, update.request = "stable", None
            update.date_testing = update.date_testing or now
            update.date_stable = update.date_modified = now
            self._changed()
            log.info("bodhi sim: %s is stable in %s", alias, update.release.stable_tag)
            return update

    def close(self) -> None:
        """Cancel pending stable timers; no new ones start after this.  Their due
        times stay in :meth:`state`, so a restored simulator resumes them."""
        with self._lock:
            self._closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    # ---- saved state (ebs.simulator.persist) -------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while the state changes; take it before the Koji world's lock."""
        return self._lock

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def state(self) -> dict[str, Any]:
        """Releases, updates, faults, settings, logins and pending stable pushes
        as JSON-able data (the call log is not kept)."""
        def date(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        with self._lock:
            version, internal, gauss = self._rng.getstate()
            return {
                "rng": [version, list(internal), gauss],
                "releases": [asdict(r) for r in self._releases.values()],
                "updates": [{**{k: v for k, v in asdict(u).items() if k != "release"},
                             "release": u.release.name,
                             **{k: date(getattr(u, k)) for k in UPDATE_DATES}}
                            for u in self._updates.values()],
                "faults": [asdict(f) for f in self._faults],
                "stable_due": dict(self._stable_due),
                "settings": {"stable_after": self.stable_after, "auth": self.auth,
                             "kerberos": self.kerberos, "username": self.username,
                             "token_lifetime": self.token_lifetime},
                "codes": {k: dict(v) for k, v in self._codes.items()},
                "access_tokens": {k: list(v) for k, v in self._access_tokens.items()},
                "refresh_tokens": dict(self._refresh_tokens),
                "auth_tickets": dict(self._auth_tickets),
            }

    @staticmethod
    def check_state(data: dict[str, Any]) -> None:
        """Raise ValueError if `data` (from :meth:`state`) cannot be restored."""
        parse_state(data)

    def restore_state(self, data: dict[str, Any]) -> None:
        """Replace this simulator's state with `data` (from :meth:`state`);
        updates that were waiting to go stable go stable when their time comes
        (at once if it has passed).  ValueError if `data` is malformed."""
        parsed = parse_state(data)
        releases = parsed.release_map()
        updates = parsed.update_map(releases)
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._stable_due.clear()
            version, internal, gauss = parsed.rng
            self._rng.setstate((version, internal, gauss))
            self._releases, self._updates = releases, updates
            self._faults = parsed.faults
            self._codes, self._access_tokens = parsed.codes, parsed.access_tokens
            self._refresh_tokens = parsed.refresh_tokens
            self._auth_tickets = parsed.auth_tickets
            for key, value in parsed.settings.model_dump(exclude_unset=True).items():
                setattr(self, key, value)
            now = time.time()
            for alias, due in parsed.stable_due.items():
                update = self._updates.get(alias)
                if update is not None and update.status != "stable":
                    self._schedule_stable(alias, max(0.0, due - now))

    def _check_settings(self) -> None:
        validate_settings(self.auth, self.kerberos, self.stable_after)

    def _schedule_stable(self, alias: str, delay: float | None = None) -> None:
        delay = self.stable_after if delay is None else delay
        if delay is None or self._closed:
            return
        timer = threading.Timer(delay, self._auto_stable, args=(alias,))
        timer.daemon = True
        self._timers[alias] = timer
        self._stable_due[alias] = time.time() + delay
        self._changed()
        timer.start()

    def _auto_stable(self, alias: str) -> None:
        with self._lock:
            if self._closed or self._timers.get(alias) is None:
                return
            try:
                self.make_stable(alias)
            except Exception:
                log.exception("bodhi sim: pushing %s to stable failed; retrying later", alias)
                self._timers.pop(alias, None)
                self._schedule_stable(alias)
