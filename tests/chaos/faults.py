"""Faults injected at the simulated Koji hub's HTTP boundary.

`Interceptor` wraps the hub's `dispatch` (one call per HTTP request to
/kojihub; a multiCall is one request) so a test can:

* `Hang`: hold one chosen request (the nth whose calls match) for `delay`
  seconds, after it took effect (`after=True`: Koji did the work, the client
  never hears back) or before. A worker blocked there is inside that activity:
  killing it then is a crash at a precise point.
* `RandomFaults`: fail a share of all requests with a transient fault drawn
  from HTTP 500, an XML-RPC fault Koji raises during outages, a timeout (504
  after a stall) or a slow answer; seeded, counted per kind.
* `Garble`: answer a chosen call with a value of the wrong shape.

The simulator's own FaultRule script works per method and per package; this
layer also sees the arguments, which is what hitting "the removal of the build
side tag" or "the second submission of glibc" needs.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import koji

from ebs.simulator import Simulator
from ebs.simulator.hub import SimulatedHTTPError, decode_params
from ebs.simulator.script import FaultRule

Call = tuple[str, list[Any], dict[str, Any]]


def calls_of(method: str, params: Any) -> list[Call]:
    """The hub calls one request carries (a multiCall's inner calls)."""
    if method != "multiCall":
        args, kwargs = decode_params(params)
        return [(method, args, kwargs)]
    out: list[Call] = []
    inner = params[0] if params else []
    for call in inner if isinstance(inner, list) else []:
        if isinstance(call, dict) and "methodName" in call:
            args, kwargs = decode_params(call.get("params", []))
            out.append((str(call["methodName"]), args, kwargs))
    return out


def request_name(method: str, calls: list[Call]) -> str:
    """`getBuildTarget`, or `multiCall:getTaskInfo` for a multicall of those."""
    if method != "multiCall":
        return method
    return "multiCall:" + ",".join(sorted({c[0] for c in calls}))


def mentions(call: Call, text: str) -> bool:
    """Any string argument of the call contains `text` (a package name, a tag)."""
    _, args, kwargs = call
    values = list(args) + list(kwargs.values())
    for value in values:
        if isinstance(value, str) and text in value:
            return True
    return False


@dataclass
class Hang:
    """Hold the `nth` request carrying a `method` call that satisfies `match`."""

    method: str
    match: Callable[[Call], bool] = lambda call: True
    nth: int = 1
    after: bool = True
    delay: float = 6.0
    seen: int = 0
    hit: threading.Event = field(default_factory=threading.Event)

    def wants(self, calls: list[Call]) -> bool:
        if self.hit.is_set():
            return False
        if not any(c[0] == self.method and self.match(c) for c in calls):
            return False
        self.seen += 1
        return self.seen == self.nth

    def apply(self, run: Callable[[], Any], stall: Callable[[float], Any]) -> Any:
        self.hit.set()
        if self.after:
            result = run()
            stall(self.delay)
            return result
        stall(self.delay)
        return run()


TRANSIENT_KINDS = ("http500", "fault", "timeout", "slow")


@dataclass
class RandomFaults:
    """A transient fault on `rate` of all requests, of a kind drawn uniformly.

    The draw for a request depends on the seed, the request's method and how
    many requests of that method came before it, not on the arrival order of
    concurrent requests: a seed hits the same calls run after run.
    """

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = TRANSIENT_KINDS
    delay: float = 1.0
    counts: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)  # (request, kind) injected
    requests: int = 0
    _seen: Counter[str] = field(default_factory=Counter)

    def pick(self, request: str) -> str | None:
        self.requests += 1
        self._seen[request] += 1
        rng = random.Random(f"{self.seed}:{request}:{self._seen[request]}")
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        self.counts[kind] += 1
        self.log.append((request, kind))
        return kind

    @property
    def injected(self) -> int:
        return sum(self.counts.values())

    def hit(self, request: str, kinds: tuple[str, ...]) -> int:
        """How many faults of `kinds` hit `request`."""
        return sum(1 for r, k in self.log if r == request and k in kinds)


@dataclass
class Garble:
    """Answer the first `times` requests named `request` (see request_name,
    e.g. `getBuildTarget` or `multiCall:getTaskInfo`) with `value`, after
    Koji did the work."""

    request: str
    value: Any
    times: int = 1
    fired: int = 0


class Interceptor:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.hangs: list[Hang] = []
        self.garbles: list[Garble] = []
        self.random: RandomFaults | None = None
        self._lock = threading.Lock()
        self._dispatch = sim.hub.dispatch
        sim.hub.dispatch = self.dispatch  # type: ignore[method-assign]

    def hang(self, rule: Hang) -> Hang:
        with self._lock:
            self.hangs.append(rule)
        return rule

    def garble(self, rule: Garble) -> Garble:
        with self._lock:
            self.garbles.append(rule)
        return rule

    def randomly(self, rule: RandomFaults) -> RandomFaults:
        with self._lock:
            self.random = rule
        return rule

    def _stall(self, seconds: float) -> None:
        self.sim.app.stopping.wait(seconds)

    def dispatch(self, method: str, params: Any) -> Any:
        calls = calls_of(method, params)

        def run() -> Any:
            return self._dispatch(method, params)

        with self._lock:
            hang = next((h for h in self.hangs if h.wants(calls)), None)
            name = request_name(method, calls)
            garble = next(
                (g for g in self.garbles if g.request == name and g.fired < g.times), None
            )
            if garble is not None:
                garble.fired += 1
            kind = None
            if self.random is not None:
                kind = self.random.pick(name)
        if hang is not None:
            return hang.apply(run, self._stall)
        if garble is not None:
            run()  # Koji did the work; the answer is what is wrong
            return garble.value
        if kind is None or kind == "slow":
            if kind == "slow":
                self._stall(self.random.delay if self.random else 1.0)
            return run()
        if kind == "fault":
            raise koji.ServerOffline("simulated outage: the hub's database is unreachable")
        if kind == "timeout":
            self._stall(self.random.delay if self.random else 1.0)
        raise SimulatedHTTPError(FaultRule(method, kind, message="simulated failure"))
