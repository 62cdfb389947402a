"""Input and result of the mail activity, and the kinds of mail ebs sends."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ebs.contracts.batch import BatchResult, BatchSettings


class MailKind(StrEnum):
    """Also the value of the elnbuildsync-kind header and the metrics label."""

    BUILD_FAILURES = "build_failures"
    STABLE_WARNING = "stable_warning"
    STABLE_FAILURE = "stable_failure"
    PERMANENT_FAILURE = "permanent_failure"


@dataclass
class EmailRequest:
    kind: MailKind
    result: BatchResult
    settings: BatchSettings
    reason: str = ""


@dataclass
class EmailResult:
    sent: int = 0
    failed: int = 0  # always 0 since a failure raises; kept for recorded histories
