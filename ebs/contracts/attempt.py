"""Input and result of a BuildAttempt child workflow (one slice attempt, one chunk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ebs.contracts.koji import BuildSpec


class AttemptOutcome(StrEnum):
    """What became of one build in an attempt."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the Koji task failed: worth another attempt
    TIMED_OUT = "timed_out"  # ran past task_timeout, cancelled: not retried
    SUBMIT_FAILED = "submit_failed"  # Koji would not take the build


@dataclass
class AttemptRequest:
    batch_id: str
    ordering: int
    attempt: int
    chunk: int
    target: str
    builds: list[BuildSpec]
    scratch: bool = False
    draft: bool = True
    fail_fast: bool = False
    wait_repo: bool = True
    priority: int = 5
    task_poll: float = 300.0
    task_timeout: float = 24 * 3600.0
    # The batch runs its first run (not a reset one), so no earlier child of
    # this id can have submitted builds; False (the default) makes the attempt
    # look for tasks to reuse.
    batch_first_run: bool = False


@dataclass
class BuildOutcome:
    component: str
    outcome: AttemptOutcome
    task_id: int = 0
    reason: str = ""
    retryable: bool = True


@dataclass
class AttemptResult:
    outcomes: list[BuildOutcome] = field(default_factory=list)
    permanent_error: str = ""  # Koji refused for good (auth, unknown target)
