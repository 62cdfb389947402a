"""What the simulator is told to do: build outcomes, timings, faults, bus chaos.

Everything here is plain data so it can come from Python or from the JSON
control endpoint (see ``Script.update``). Random choices are made by the world
from seeded generators, so a run is reproducible given its seed and calls.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import koji

from .faults import Fault, take_fault

# What a build task ends as. HANG never finishes (until canceled).
OUTCOMES = ("CLOSED", "FAILED", "CANCELED", "HANG")

class FaultRule(Fault):
    """A fault of Koji calls (see ebs.simulator.faults), with presets for the
    faults ebs must tell apart."""

    @classmethod
    def auth_failure(cls, method: str = "*", times: int | None = None) -> FaultRule:
        return cls(method, "error", code=koji.AuthError.faultCode,
                   message="Not logged-in", times=times)

    @classmethod
    def permission_denied(cls, method: str, times: int | None = None) -> FaultRule:
        return cls(method, "error", code=koji.ActionNotAllowed.faultCode,
                   message="policy violation", times=times)

    @classmethod
    def bad_scm_url(cls, package: str, times: int | None = None) -> FaultRule:
        return cls("build", "error", package=package, code=koji.GenericError.faultCode,
                   message=f"Invalid scm url for {package}: not in the list of allowed SCMs",
                   times=times)

    @classmethod
    def transient(cls, method: str, times: int | None = 1) -> FaultRule:
        return cls(method, "error", code=koji.ServerOffline.faultCode,
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
    faults: list[Fault] = field(default_factory=list)
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

    def take_fault(self, method: str, package: str | None,
                   rng: random.Random | None = None) -> Fault | None:
        return take_fault(self.faults, method, package, rng)

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
                self.faults.extend(FaultRule.from_dict(rule) for rule in value)
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
