"""Input and report of the SideTagSweep workflow and its activity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebs.contracts.names import COLLECTOR_WORKFLOW_ID


@dataclass
class SweepRequest:
    """Input of SideTagSweep; the schedule starts it with the defaults."""

    grace: float = 0.0  # seconds; 0: timers.sidetag_grace of the current config
    dry_run: bool = False  # report what would go, remove nothing
    collector_workflow_id: str = COLLECTOR_WORKFLOW_ID


@dataclass
class RunningSideTags:
    """The side tags running batches hold: the sweep never removes these."""

    batch_ids: list[str] = field(default_factory=list)
    side_tags: list[str] = field(default_factory=list)  # build and errata side tags
    sources: list[str] = field(default_factory=list)  # how they were found, for the report


@dataclass
class SweepPlan:
    """Input of the sweep_side_tags activity."""

    grace: float  # seconds: only side tags that existed this long ago are stale
    keep: RunningSideTags = field(default_factory=RunningSideTags)
    dry_run: bool = False


@dataclass
class SideTagNote:
    name: str
    reason: str


@dataclass
class SweepReport:
    """What one sweep did; the SideTagSweep result, shown in the Web UI."""

    cutoff: str = ""  # ISO 8601: side tags created after this were left alone (Koji time)
    grace: float = 0.0
    dry_run: bool = False
    removed: list[str] = field(default_factory=list)  # (would be, with dry_run)
    kept: list[SideTagNote] = field(default_factory=list)
    failed: list[SideTagNote] = field(default_factory=list)
    running_batches: list[str] = field(default_factory=list)
    running_batches_from: list[str] = field(default_factory=list)  # what was asked, and its answer
    error: str = ""  # why nothing was swept, when the sweep had to give up
