"""The one fault vocabulary of the simulator, for Koji calls and Bodhi requests alike.

A :class:`Fault` names what to hit (``operation``: a Koji method such as
``build``, a Bodhi operation such as ``create_update``, or ``"*"``) and how the
answer goes wrong (``kind``):

==============  =============================================================
``error``       the server's own error answer: a Koji XML-RPC fault (``code``,
                ``message``; inside a multicall only that entry), Bodhi's error
                JSON (``status``, default 400)
``http_error``  an HTTP error page instead of an answer (``status``, default 500)
``timeout``     stall ``delay`` seconds, then HTTP 504 (a client with a shorter
                timeout sees a read timeout)
``slow``        answer, but only after ``delay`` seconds
==============  =============================================================

``after``: the call takes effect before the answer fails or stalls (a lost
response: the task or update exists, the client never hears of it).
``times``: how many matching requests it hits (``None``: all); ``probability``:
the chance per matching request, drawn from the simulator's seeded generator;
``package``: only Koji calls about this component.

The older names stay accepted wherever a fault is read (Python, the control
routes, saved state): Koji's ``fault`` and ``http500``, Bodhi's
``bodhi_error`` and ``lost_response`` (``http_error`` after the work, 502),
and ``method`` for ``operation``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

KINDS = ("error", "http_error", "timeout", "slow")

# Older spellings -> (kind, defaults they imply).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "fault": ("error", {}),  # Koji
    "http500": ("http_error", {"status": 500}),  # Koji
    "bodhi_error": ("error", {}),  # Bodhi
    "lost_response": ("http_error", {"after": True, "status": 502}),  # Bodhi
}
DEFAULT_KOJI_CODE = 1000  # koji.GenericError.faultCode

T = TypeVar("T")


@dataclass
class Fault:
    """A scripted failure (see the module docstring for the fields)."""

    operation: str
    kind: str = "error"
    package: str | None = None
    code: int = DEFAULT_KOJI_CODE
    message: str = ""
    times: int | None = 1
    delay: float = 0.0
    after: bool = False
    probability: float = 1.0
    status: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind in ALIASES:
            self.kind, implied = ALIASES[self.kind]
            for key, value in implied.items():
                if key == "status" and self.status:
                    continue
                setattr(self, key, value)
        if self.kind not in KINDS:
            names = KINDS + tuple(ALIASES)
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {names}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        if self.delay < 0:
            raise ValueError("delay must be >= 0 seconds")
        if not self.status:
            self.status = {"error": 400, "timeout": 504}.get(self.kind, 500)
        if self.status not in HTTPStatus._value2member_map_:
            raise ValueError(f"status {self.status} is not an HTTP status")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from JSON (control routes, saved state); ``method`` is read as
        ``operation``. Unknown keys are a TypeError, as for the constructor."""
        row = dict(data)
        if "method" in row:
            if "operation" in row:
                raise TypeError("give 'operation' or 'method', not both")
            row["operation"] = row.pop("method")
        return cls(**row)

    @property
    def label(self) -> str:
        """The kind, and "after" for a lost response (call logs say this)."""
        return f"{self.kind} after" if self.after else self.kind

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, operation: str, package: str | None = None) -> bool:
        if self.exhausted or self.operation not in ("*", operation):
            return False
        return self.package is None or self.package == package


class FaultAnswer(Exception):
    """A scripted HTTP-level failure (an error page, a stalled 504) for the
    server to render in its protocol's shape."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault

    @property
    def rule(self) -> Fault:  # the Koji side's older name
        return self.fault


def take_fault(faults: list[Fault], operation: str, package: str | None,
               rng: random.Random | None) -> Fault | None:
    """The first fault that hits this request, counted as fired (a fault with
    probability < 1 draws from `rng`)."""
    for fault in faults:
        if not fault.matches(operation, package):
            continue
        if fault.probability < 1.0 and (rng or random).random() >= fault.probability:
            continue
        fault.fired += 1
        return fault
    return None


def play(fault: Fault | None, run: Callable[[], T], stall: Callable[[float], Any],
         error: Callable[[Fault], Exception]) -> T:
    """Run a request under `fault`: `error(fault)` makes the protocol's own
    error; HTTP-level failures raise :class:`FaultAnswer`; `stall` waits."""
    if fault is None:
        return run()
    if fault.kind == "error":
        raise error(fault)
    if not fault.after:
        if fault.kind in ("slow", "timeout"):
            stall(fault.delay)
        if fault.kind == "slow":
            return run()
        raise FaultAnswer(fault)
    result = run()
    if fault.kind in ("slow", "timeout"):
        stall(fault.delay)
    if fault.kind == "slow":
        return result
    raise FaultAnswer(fault)


__all__ = ["ALIASES", "KINDS", "Fault", "FaultAnswer", "play", "take_fault"]
