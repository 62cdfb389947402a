"""Input and result of the mail activity.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebs.contracts.batch import BatchResult, BatchSettings


@dataclass
class EmailRequest:
    kind: str  # build_failures | stable_warning | stable_failure | permanent_failure
    result: BatchResult
    settings: BatchSettings
    reason: str = ""


@dataclass
class EmailResult:
    sent: int = 0
    failed: int = 0
