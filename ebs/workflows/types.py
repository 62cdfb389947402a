"""Inputs, results, signals and queries of the ebs workflows.

Every message crossing a workflow boundary is a dataclass with defaults for all
but its identifying fields, so fields can be added later without breaking
running histories (an old payload simply lacks the new key).
"""

# No `from __future__ import annotations`: the SDK resolves every decoded
# dataclass's type hints, and string annotations cost a compile() each time
# (a mass rebuild's history of thousands of tag signals hit the 2 s deadlock budget).

from dataclasses import dataclass, field
from enum import StrEnum

COLLECTOR_WORKFLOW_ID = "ebs-collector"

# Signal, query and update names, shared with the bridge, the API and the docs
# for the `temporal` CLI.
SIGNAL_TAG = "tag"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_TASK_STATE = "task_state"
SIGNAL_REPO_EVENT = "repo_event"
SIGNAL_SIDE_TAGS = "side_tags"  # RebuildBatch -> BatchCollector
SIGNAL_TASKS_SUBMITTED = "tasks_submitted"  # BuildAttempt -> RebuildBatch
UPDATE_ENQUEUE = "enqueue"
QUERY_STATUS = "status"
QUERY_ROUTING = "routing"
QUERY_QUEUED = "queued"  # a page of the collector's queue
# The collector's queue holders (CollectorQueue workflows, ebs.workflows.queue)
UPDATE_HOLD = "hold"
UPDATE_TAKE = "take"
QUERY_HELD = "held"

# Search attributes registered on the Temporal namespace (see ebs.temporal_setup).
SA_PACKAGES = "EbsPackages"  # KeywordList
SA_PHASE = "EbsPhase"  # Keyword
SA_OUTCOME = "EbsOutcome"  # Keyword
SA_CONFIG_VERSION = "EbsConfigVersion"  # Keyword


class EventSource(StrEnum):
    BUS = "bus"
    API = "api"
    CLI = "cli"


@dataclass
class TagEvent:
    """A build tagged into the trigger tag (or queued by hand)."""

    component: str
    nvr: str
    build_id: int = 0
    tag: str = ""
    source: str = EventSource.BUS.value
    event_id: str = ""  # message id; redelivery of the same id is a no-op
    tagged_at: float | None = None  # epoch seconds from the message, if known
    requested_by: str = ""
    eln_name: str = ""  # the ELN (downstream) name when it differs, for ordering rules


@dataclass
class TaskStateEvent:
    """buildsys.task.state.change for a build task ebs submitted."""

    task_id: int
    state: str  # koji.TASK_STATES name: FREE OPEN CLOSED CANCELED ASSIGNED FAILED
    event_id: str = ""


@dataclass
class RepoEvent:
    """buildsys.repo.init / buildsys.repo.done for a side tag."""

    tag: str
    kind: str = "done"  # "init" | "done"
    repo_id: int = 0
    event_id: str = ""


@dataclass
class SideTagsEvent:
    """The side tags a running batch holds (for routing repo messages)."""

    batch_id: str
    side_tags: list[str] = field(default_factory=list)


@dataclass
class TasksSubmitted:
    """The Koji tasks an attempt submitted, so the batch shows them while they run."""

    tasks: dict[str, int] = field(default_factory=dict)  # component -> task id


@dataclass
class EnqueueRequest:
    components: list[str]
    source: str = EventSource.API.value
    requested_by: str = ""


@dataclass
class Rejection:
    component: str
    reason: str


@dataclass
class EnqueueResult:
    queued: list[TagEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class PackageState(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    SUCCEEDED = "succeeded"  # built (scratch) or built and promoted/filed
    FAILED = "failed"
    STABLE = "stable"


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
    build_id: int = 0
    update_alias: str = ""
    update_url: str = ""
    reason: str = ""  # why it failed, human readable


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
    bodhi_warn_timeout: float = 7 * 24 * 3600.0
    bodhi_stable_timeout: float = 14 * 24 * 3600.0
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
class CollectorSettings:
    lull: float = 60.0
    paused_by_config: bool = False
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
    outcome: str = ""  # succeeded | unstable | failed | partial | cancelled | error
    packages: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_components: list[str] = field(default_factory=list)
    config_version: str = ""


@dataclass
class BatchResult:
    batch_id: str
    outcome: str
    packages: list[PackageResult] = field(default_factory=list)
    side_tags: list[str] = field(default_factory=list)
    errata_tags: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    config_version: str = ""


@dataclass
class BatchTotals:
    """Running totals since the collector first started (carried across
    continue-as-new), for /metrics: counters that survive every process restart."""

    batches_started: int = 0
    batches_finished: dict[str, int] = field(default_factory=dict)  # outcome -> count
    packages_built: int = 0
    packages_failed: int = 0


@dataclass
class CollectorState:
    """Everything the BatchCollector knows; carried across continue-as-new.

    Bounded whatever the queue's size: `queue` holds only the components
    queued since the last hand-over to the queue holders (at most about
    `hold_after`); the rest are in CollectorQueue workflows, counted in `held`.
    """

    queue: dict[str, TagEvent] = field(default_factory=dict)
    # Before the holders: every message id seen. Read once into `seen_keys`.
    seen_event_ids: list[str] = field(default_factory=list)
    paused: bool = False
    last_event_at: str = ""  # ISO 8601 workflow time of the last queued event
    batch_seq: int = 0
    current_batch_id: str = ""
    current_batch_packages: list[str] = field(default_factory=list)
    current_side_tags: list[str] = field(default_factory=list)
    recent_batches: list[BatchSummary] = field(default_factory=list)
    totals: BatchTotals = field(default_factory=BatchTotals)
    # Continue-as-new past this many history events (well under Temporal's limits).
    history_limit: int = 3_000  # a replay decodes every signal: keep it short
    # The last message ids seen, as fixed-width hashes (ebs.workflows.queue.seen_key)
    # concatenated: a redelivered message is a no-op.
    seen_keys: str = ""
    # Queued components beyond this many go to the queue holders.
    hold_after: int = 500
    held: dict[str, int] = field(default_factory=dict)  # holder partition -> components
    held_seq: int = 0  # the sequence number of the last event handed to a holder
    # ... or continue-as-new past this many bytes of history
    history_bytes_limit: int = 4_000_000


@dataclass
class CollectorStatus:
    queued: list[TagEvent] = field(default_factory=list)
    paused: bool = False
    paused_by_config: bool = False
    lull_deadline: str = ""  # ISO 8601, empty when nothing queued
    current_batch_id: str = ""
    current_batch_packages: list[str] = field(default_factory=list)
    recent_batches: list[BatchSummary] = field(default_factory=list)
    # The config version the collector read last (git commit or content hash).
    config_version: str = ""
    # All queued components; `queued` lists the first STATUS_QUEUED by name of
    # those the collector holds itself (a query answer must stay small); the
    # `queued` query pages through all of them.
    queue_length: int = 0
    totals: BatchTotals = field(default_factory=BatchTotals)
    held: int = 0  # of queue_length, how many the queue holders keep


@dataclass
class QueueQuery:
    """A page of the queue, by component name."""

    offset: int = 0
    limit: int = 100


@dataclass
class QueuePage:
    total: int = 0
    events: list[TagEvent] = field(default_factory=list)
    # holder workflow ids that keep the rest of the queue (query them with `held`)
    holders: list[str] = field(default_factory=list)


@dataclass
class HeldEvent:
    """A queued event in a queue holder; `seq` orders hand-overs."""

    seq: int
    event: TagEvent


@dataclass
class HolderState:
    """A CollectorQueue workflow's state: one partition of a collector's queue."""

    collector_id: str
    partition: int = 0
    queue: dict[str, HeldEvent] = field(default_factory=dict)
    floor: int = 0  # events up to this sequence number were handed over before a take
    last_take: str = ""
    taken: list[HeldEvent] = field(default_factory=list)  # what `last_take` took


@dataclass
class TakeOrder:
    take_id: str
    picks: dict[str, int] = field(default_factory=dict)  # component -> seq
    floor: int = 0


@dataclass
class TakeAnswer:
    taken: list[HeldEvent] = field(default_factory=list)
    size: int = 0


@dataclass
class HeldContents:
    queue: list[HeldEvent] = field(default_factory=list)
    taken: list[HeldEvent] = field(default_factory=list)  # for the take asked about


@dataclass
class HoldRequest:
    collector_id: str
    events: list[HeldEvent] = field(default_factory=list)


@dataclass
class HoldResult:
    sizes: dict[str, int] = field(default_factory=dict)  # partition -> components


@dataclass
class TakeRequest:
    collector_id: str
    take_id: str
    partitions: list[str] = field(default_factory=list)
    cap: int = 0  # 0: everything
    floor: int = 0
    ordering: dict[str, int] = field(default_factory=dict)
    default_ordering: int = 1000


@dataclass
class TakeResult:
    events: list[TagEvent] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass
class Routing:
    """Where the bridge sends task and repo messages (queried, cached briefly)."""

    batch_workflow_id: str = ""
    side_tags: list[str] = field(default_factory=list)


# ---- periodic jobs (ebs.schedules): the side-tag sweep and the config refresh ----

SWEEP_WORKFLOW = "SideTagSweep"
CONFIG_REFRESH_WORKFLOW = "ConfigRefresh"


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


@dataclass
class ConfigRefreshRequest:
    sync_schedules: bool = True  # re-apply timers.* to the schedules afterwards


@dataclass
class WorkerRefresh:
    """One worker process's answer to a scheduled config refresh."""

    worker: str  # the worker's Temporal identity
    ok: bool = True
    version: str = ""  # the config version it runs now
    previous_version: str = ""
    error: str = ""  # why the refresh failed (the previous config is kept)


@dataclass
class ConfigRefreshReport:
    workers: list[WorkerRefresh] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # listed but did not answer
    schedules: list[str] = field(default_factory=list)  # schedule changes made afterwards
