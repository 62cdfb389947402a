"""Input, settings, per-package results and summary of a RebuildBatch.
"""

# No `from __future__ import annotations`: the SDK resolves every decoded
# dataclass's type hints, and string annotations cost a compile() each time
# (a mass rebuild's history of thousands of tag signals: 1.5x slower decoding).

from dataclasses import dataclass, field
from enum import StrEnum

from ebs.contracts.events import TagEvent


class PackageState(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    SUCCEEDED = "succeeded"  # built (scratch) or built and promoted/filed
    FAILED = "failed"
    STABLE = "stable"
    # Left out at batch start: the trigger tag no longer holds any build of the
    # component (untagged since the message); `reason` says so.
    DROPPED = "dropped"
    SKIPPED = "skipped"  # its SCM URL is on the failed-URL denylist: not built


class BatchOutcome(StrEnum):
    """How a batch ended (BatchResult.outcome once finished, the EbsOutcome search attribute)."""

    SUCCEEDED = "succeeded"
    UNSTABLE = "unstable"  # built, but an update did not reach the stable tag in time
    FAILED = "failed"  # every package failed
    PARTIAL = "partial"  # some packages failed
    CANCELLED = "cancelled"
    ERROR = "error"  # stopped early (Koji refused for good) or crashed


# The states of a package that was rebuilt (scratch, or promoted and filed).
BUILT_STATES = frozenset({PackageState.SUCCEEDED.value, PackageState.STABLE.value})


@dataclass
class PackageResult:
    component: str
    rawhide_nvr: str
    state: str = PackageState.PENDING.value
    ordering: int = 1000
    skip_tag: bool = False
    attempts: int = 0
    task_ids: list[int] = field(default_factory=list)
    task_urls: list[str] = field(default_factory=list)
    nvr: str = ""  # the ELN build's NVR once known
    scm_url: str = ""  # the source rebuilt: the Rawhide build's SCM URL
    build_id: int = 0
    update_alias: str = ""
    update_url: str = ""
    reason: str = ""  # why it failed or was dropped, human readable
    # What the tag message (or manual trigger) named; rawhide_nvr is the build
    # Koji listed as latest in the trigger tag when the batch started.
    message_nvr: str = ""
    message_build_id: int = 0
    rawhide_build_id: int = 0
    # Not rebuilt: Koji already had this rebuild (nvr/build_id); released as is.
    existing_build: bool = False


@dataclass
class BatchSettings:
    """The config snapshot a batch runs with: a config change never reaches a
    running batch, only the next one."""

    build_target: str
    stable_tag: str
    trigger_tag: str = ""
    scratch: bool = False
    fail_fast: bool = True
    draft_builds: bool = True
    wait_repo: bool = True
    priority: int = 5
    skip_tag: list[str] = field(default_factory=list)
    ordering: dict[str, int] = field(default_factory=dict)
    default_ordering: int = 1000
    bodhi_batch_size: int = 0
    bodhi_max_single_batch_size: int = 0
    bodhi_warn_timeout: float = 180 * 60.0  # seconds here (minutes in the config); 0: none
    bodhi_stable_timeout: float = 24 * 3600.0
    task_poll: float = 300.0
    repo_poll: float = 60.0
    task_timeout: float = 24 * 3600.0
    tag_timeout: float = 3600.0
    stable_poll: float = 600.0
    attempt_chunk_size: int = 1000
    max_batch_packages: int = 0  # 0: no cap (the collector splits bigger queues)
    koji_weburl: str = ""
    bodhi_url: str = ""
    temporal_ui_url: str = ""
    email_enabled: bool = False
    config_version: str = ""


@dataclass
class BatchRequest:
    batch_id: str
    packages: list[TagEvent]
    settings: BatchSettings


@dataclass
class BatchSummary:
    batch_id: str
    started_at: str = ""  # ISO 8601
    finished_at: str = ""
    outcome: str = ""  # a BatchOutcome
    packages: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_components: list[str] = field(default_factory=list)
    config_version: str = ""


@dataclass
class BatchResult:
    batch_id: str
    outcome: str  # a BatchOutcome once finished; the phase while running
    packages: list[PackageResult] = field(default_factory=list)
    side_tags: list[str] = field(default_factory=list)
    errata_tags: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    config_version: str = ""
    # Draft builds the batch made but did not promote (it ended before); they
    # take no NVR, a later batch rebuilds the package (issue 17 #4).
    drafts_left: list[str] = field(default_factory=list)


@dataclass
class PackageIndexRequest:
    """A PackageIndex child of a large batch (its names are in its EbsPackages)."""

    batch_id: str
    part: int = 0
    packages: int = 0
