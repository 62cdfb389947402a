"""The simulator's state file: JSON, written atomically, saved soon after changes.

The file is one JSON object::

    {"format": "ebs-simulator-state", "version": 1, "saved_at": <epoch>,
     "seed": ..., "layout": {...}, "koji": {...}, "bodhi": {...} | null}

(see ebs.simulator.snapshot for "layout" and "koji", BodhiSim.state for
"bodhi"). Values XML-RPC can carry but JSON cannot (dateTime.iso8601, base64)
are written as ``{"$xmlrpc": type, "value": text}``. A file that is not JSON,
not this format or another version is refused with a :class:`StateFileError`
naming it; nothing is overwritten then.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .bodhi.state import summary

log = logging.getLogger(__name__)

FORMAT = "ebs-simulator-state"
VERSION = 1


class StateFileError(Exception):
    """The state file cannot be read, understood or written (a one-line message)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, xmlrpc.client.DateTime):
        return {"$xmlrpc": "dateTime.iso8601", "value": obj.value}
    if isinstance(obj, xmlrpc.client.Binary):
        return {"$xmlrpc": "base64", "value": base64.b64encode(obj.data).decode("ascii")}
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"cannot save a {type(obj).__name__} in the simulator state")


def _decode(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"$xmlrpc", "value"}:
        if obj["$xmlrpc"] == "dateTime.iso8601":
            return xmlrpc.client.DateTime(obj["value"])
        if obj["$xmlrpc"] == "base64":
            return xmlrpc.client.Binary(base64.b64decode(obj["value"]))
    return obj


def encode_state(data: dict[str, Any]) -> str:
    return json.dumps(data, default=_encode, separators=(",", ":"))


def wrap_state(seed: Any, layout: dict[str, Any], koji: dict[str, Any],
               bodhi: dict[str, Any] | None) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "saved_at": time.time(), "seed": seed,
            "layout": layout, "koji": koji, "bodhi": bodhi}


def load_state(path: Path) -> dict[str, Any] | None:
    """The saved state, or None if there is no file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise StateFileError(f"simulator state file {path} is corrupt (not UTF-8 text); "
                             "move it away to start from a fresh world") from None
    except OSError as exc:
        raise StateFileError(f"cannot read simulator state file {path}: "
                             f"{exc.strerror or exc}") from None
    try:
        data = json.loads(text, object_hook=_decode)
    except ValueError as exc:
        raise StateFileError(f"simulator state file {path} is corrupt (not JSON: {exc}); "
                             "move it away to start from a fresh world") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateFileError(f"{path} is not an ebs simulator state file "
                             f"(no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise StateFileError(f"simulator state file {path} has format version "
                             f"{data.get('version')!r}; this ebs reads version {VERSION}")
    try:
        StateFile.model_validate(data)
    except ValidationError as exc:
        raise StateFileError(f"simulator state file {path} is corrupt ({summary(exc)})") from None
    return data


class StateFile(BaseModel):
    """The file's envelope; "layout", "koji" and "bodhi" are validated by
    ebs.simulator.snapshot and ebs.simulator.bodhi.state as they are restored."""

    format: Literal["ebs-simulator-state"]
    version: Literal[1]
    saved_at: float = 0.0
    seed: int | str = 0
    layout: dict[str, Any]
    koji: dict[str, Any]
    bodhi: dict[str, Any] | None = None


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, fsync it, then rename it
    over `path`: a reader (or a crash) sees the old file or the new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StateFileError(f"cannot write simulator state file {path}: "
                             f"{exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StateFileError(f"cannot write simulator state file {path}: "
                             f"{exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Persister:
    """Saves `snapshot()` to `path` at most every `interval` seconds while
    changes are marked, and once more on stop."""

    def __init__(self, path: Path, snapshot: Callable[[], str], interval: float = 0.5) -> None:
        self.path = path
        self._snapshot = snapshot
        self.interval = interval
        self._cond = threading.Condition()
        self._dirty = False
        self._running = False
        self._last = 0.0
        self._thread: threading.Thread | None = None
        self.saves = 0

    def mark(self) -> None:
        """Something changed: save within `interval` seconds."""
        with self._cond:
            if not self._dirty:
                self._dirty = True
                self._cond.notify_all()

    def save_now(self) -> None:
        """Save at once (StateFileError if the file cannot be written)."""
        write_atomic(self.path, self._snapshot())
        self.saves += 1
        with self._cond:
            self._last = time.monotonic()

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name="ebs-sim-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the saver thread and save the final state (errors are logged)."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.save_now()
        except Exception as exc:
            log.error("simulator: final save failed: %s", exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._dirty:
                    self._cond.wait()
                while self._running and time.monotonic() < self._last + self.interval:
                    self._cond.wait(self._last + self.interval - time.monotonic())
                if not self._running:
                    return
                self._dirty = False
            try:
                self.save_now()
            except Exception as exc:
                log.error("simulator: saving the state failed (retrying on the next "
                          "change): %s", exc)
                with self._cond:
                    self._last = time.monotonic()
