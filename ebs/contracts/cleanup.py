"""Input, facts and report of the PeriodicCleanup workflow (the original's
12-hourly cleanup.py), started by the ``<task queue>-cleanup`` schedule."""

from __future__ import annotations

from dataclasses import dataclass, field

from ebs.contracts.names import COLLECTOR_WORKFLOW_ID

CLEANUP_WORKFLOW = "PeriodicCleanup"


@dataclass
class CleanupRequest:
    """The schedule starts it with `untagging` as the worker's --untagging says."""

    untagging: bool = False  # the original's --untagging: untag old builds of the stable tag
    dry_run: bool = False  # report what would be queued/untagged, change nothing
    collector_workflow_id: str = COLLECTOR_WORKFLOW_ID


@dataclass
class CleanupFacts:
    """What the cleanup decides on, read in bulk from the config and Koji."""

    stable_tag: str
    desired: dict[str, str] = field(default_factory=dict)  # ELN name -> Rawhide name
    latest_tagged: dict[str, str] = field(default_factory=dict)  # name -> NVR (stable tag)
    all_tagged: list[str] = field(default_factory=list)  # every NVR in the stable tag
    # Only filled for the components missing from the stable tag:
    rawhide_latest: dict[str, str] = field(default_factory=dict)  # Rawhide name -> NVR
    denied_nvrs: dict[str, list[str]] = field(default_factory=dict)  # component -> Rawhide NVRs


@dataclass
class CollectorPause:
    paused: bool = False
    why: str = ""
    collector_running: bool = True


@dataclass
class CleanupEnqueue:
    collector_workflow_id: str
    components: list[str]


@dataclass
class Skipped:
    component: str
    reason: str


@dataclass
class CleanupEnqueued:
    queued: list[str] = field(default_factory=list)
    rejected: list[Skipped] = field(default_factory=list)


@dataclass
class CleanupReport:
    paused: bool = False
    desired: int = 0
    in_stable_tag: int = 0
    queued: list[str] = field(default_factory=list)
    rejected: list[Skipped] = field(default_factory=list)  # by the collector (not eligible...)
    skipped: list[Skipped] = field(default_factory=list)  # e.g. its build is denylisted
    to_untag: list[str] = field(default_factory=list)
    untagged: list[str] = field(default_factory=list)
    untagging: bool = False
    dry_run: bool = False
    error: str = ""


@dataclass
class UntagRequest:
    tag: str
    nvrs: list[str]


@dataclass
class UntagResult:
    untagged: list[str] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)
