"""What the simulator is told to do: build outcomes, timings, faults, bus chaos.

Everything here is plain data so it can come from Python or from the JSON
control endpoint (see ``Script.update``). Random choices are made by the world
from seeded generators, so a run is reproducible given its seed and calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import koji

# What a build task ends as. HANG never finishes (until canceled).
OUTCOMES = ("CLOSED", "FAILED", "CANCELED", "HANG")

# Submission fault kinds.
#   http500  the hub answers HTTP 500 (the whole request, even a multicall)
#   fault    the call raises an XML-RPC fault with `code`/`message`
#            (inside a multicall only that entry faults, like Koji)
#   timeout  the hub stalls `delay` seconds before answering (a client with a
#            shorter timeout sees a read timeout)
#   slow     same as timeout; a name for "slow but answers"
FAULT_KINDS = ("http500", "fault", "timeout", "slow")


@dataclass
class FaultRule:
    """Fail calls of one hub method (optionally only for one package).

    `times` is how many calls it hits (None: all of them). With `after` the call
    takes effect before the response fails (lost response: the task exists but
    the client never hears its id), for http500/timeout.
    """

    method: str
    kind: str = "fault"
    package: str | None = None
    code: int = koji.GenericError.faultCode
    message: str = "simulated fault"
    times: int | None = 1
    delay: float = 0.0
    after: bool = False
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, package: str | None) -> bool:
        if self.exhausted:
            return False
        if self.method not in ("*", method):
            return False
        return self.package is None or self.package == package

    # Presets for the faults ebs must tell apart.
    @classmethod
    def auth_failure(cls, method: str = "*", times: int | None = None) -> FaultRule:
        return cls(method, "fault", code=koji.AuthError.faultCode,
                   message="Not logged-in", times=times)

    @classmethod
    def permission_denied(cls, method: str, times: int | None = None) -> FaultRule:
        return cls(method, "fault", code=koji.ActionNotAllowed.faultCode,
                   message="policy violation", times=times)

    @classmethod
    def bad_scm_url(cls, package: str, times: int | None = None) -> FaultRule:
        return cls("build", "fault", package=package, code=koji.GenericError.faultCode,
                   message=f"Invalid scm url for {package}: not in the list of allowed SCMs",
                   times=times)

    @classmethod
    def transient(cls, method: str, times: int | None = 1) -> FaultRule:
        return cls(method, "fault", code=koji.ServerOffline.faultCode,
                   message="database outage", times=times)


@dataclass
class Script:
    outcomes: dict[str, list[str]] = field(default_factory=dict)  # package -> sequence
    default_outcome: str = "CLOSED"
    fail_reasons: dict[str, str] = field(default_factory=dict)  # package -> fault text
    durations: dict[str, float] = field(default_factory=dict)  # package -> build seconds
    default_duration: float = 0.0
    start_delay: float = 0.0  # FREE -> OPEN
    tag_task_delay: float = 0.0  # tagBuild task run time
    repo_delay: float = 0.01  # repo.init -> repo.done
    # Koji 1.35 makes repos only on request (repo.request); False keeps pre-1.35
    # kojira, regenerating every changed build tag, which ebs's adapter still
    # needs until issue 17 #1 is fixed. The contract tests run with True.
    repos_on_request: bool = False
    # The real hub's listBuilds rows carry the build id as build_id only (no
    # `id`); False brings back the simulator's old rows.
    listbuilds_without_id: bool = True
    faults: list[FaultRule] = field(default_factory=list)
    drop: float = 0.0  # message chaos probabilities, applied at the sink boundary
    duplicate: float = 0.0
    reorder: float = 0.0

    def next_outcome(self, package: str) -> str:
        seq = self.outcomes.get(package)
        if seq:
            return seq.pop(0)
        return self.default_outcome

    def duration(self, package: str) -> float:
        return self.durations.get(package, self.default_duration)

    def take_fault(self, method: str, package: str | None) -> FaultRule | None:
        for rule in self.faults:
            if rule.matches(method, package):
                rule.fired += 1
                return rule
        return None

    def update(self, data: dict[str, Any]) -> None:
        """Apply a JSON-ish dict (the control endpoint's body); unknown keys are errors."""
        for key, value in data.items():
            if key == "outcomes":
                for pkg, seq in dict(value).items():
                    seq = [seq] if isinstance(seq, str) else list(seq)
                    for outcome in seq:
                        _check_outcome(outcome)
                    self.outcomes[pkg] = seq
            elif key == "default_outcome":
                _check_outcome(value)
                self.default_outcome = value
            elif key in ("fail_reasons", "durations"):
                getattr(self, key).update(dict(value))
            elif key == "faults":
                self.faults.extend(FaultRule(**rule) for rule in value)
            elif key in ("default_duration", "start_delay", "tag_task_delay", "repo_delay",
                         "drop", "duplicate", "reorder"):
                setattr(self, key, float(value))
            elif key in ("repos_on_request", "listbuilds_without_id"):
                setattr(self, key, bool(value))
            else:
                raise ValueError(f"unknown script key {key!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
