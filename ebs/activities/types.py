"""Inputs and results of the ebs activities (Koji, Bodhi, mail, settings).

The Koji and Bodhi adapters (ebs.kojiclient, ebs.bodhiclient) return these
types directly, so an activity is a one-line call into its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebs.workflows.types import BatchResult, BatchSettings


@dataclass
class BuildTarget:
    name: str
    build_tag: str
    dest_tag: str


@dataclass
class BuildLookupRequest:
    nvrs: list[str]


@dataclass
class KojiBuild:
    nvr: str
    found: bool = True
    build_id: int = 0
    component: str = ""  # package name
    source: str = ""  # SCM URL the build was made from (build['source'])
    task_id: int = 0
    draft: bool = False
    creation_ts: float = 0.0
    reason: str = ""  # why not found / unusable


@dataclass
class BuildLookupResult:
    builds: list[KojiBuild] = field(default_factory=list)


@dataclass
class SideTagRequest:
    base_tag: str
    key: str  # idempotency key, e.g. "<batch id>:build:1"; stored in the tag's extra


@dataclass
class SideTag:
    name: str
    tag_id: int = 0
    reused: bool = False  # found from an earlier try of the same request


@dataclass
class TagBuildsRequest:
    tag: str
    nvrs: list[str]


@dataclass
class TagFailure:
    nvr: str
    reason: str


@dataclass
class TagBuildsResult:
    tagged: list[str] = field(default_factory=list)
    failed: list[TagFailure] = field(default_factory=list)
    last_event: int = 0  # Koji event id right after tagging (for repo freshness)


@dataclass
class RepoStateRequest:
    tag: str
    min_event: int = 0  # repo must have been created at or after this event
    nvrs: list[str] = field(default_factory=list)  # must all be tagged in `tag`


@dataclass
class RepoState:
    tag: str
    ready: bool
    repo_id: int = 0
    create_event: int = 0
    missing: list[str] = field(default_factory=list)  # nvrs not (yet) tagged


@dataclass
class BuildSpec:
    component: str
    scm_url: str


@dataclass
class SubmitRequest:
    target: str  # the build side tag (Koji's sidetag plugin makes a target of that name)
    builds: list[BuildSpec]
    not_before: float  # epoch seconds: a task of ours created since then may be reused
    scratch: bool = False
    draft: bool = True
    fail_fast: bool = False
    wait_repo: bool = True
    priority: int = 5
    workflow_id: str = ""  # recorded in custom_user_metadata so the bridge can route
    label: str = ""  # e.g. "slice 1000 attempt 2", for logs


@dataclass
class SubmittedTask:
    component: str
    task_id: int
    reused: bool = False


@dataclass
class SubmitFailure:
    component: str
    reason: str


@dataclass
class SubmitResult:
    submitted: list[SubmittedTask] = field(default_factory=list)
    failed: list[SubmitFailure] = field(default_factory=list)


@dataclass
class TaskPollRequest:
    task_ids: list[int]


@dataclass
class TaskStatus:
    task_id: int
    state: str  # koji.TASK_STATES name
    reason: str = ""  # fault text for FAILED tasks


@dataclass
class TaskPollResult:
    tasks: list[TaskStatus] = field(default_factory=list)


@dataclass
class CancelRequest:
    task_ids: list[int]


@dataclass
class TaskBuild:
    task_id: int
    build_id: int = 0
    nvr: str = ""
    draft: bool = False
    found: bool = True


@dataclass
class TaskBuildsResult:
    builds: list[TaskBuild] = field(default_factory=list)


@dataclass
class PromoteRequest:
    build_ids: list[int]


@dataclass
class Promotion:
    build_id: int
    promoted: bool
    nvr: str = ""  # the final NVR after promotion
    reason: str = ""  # e.g. "NVR already exists"


@dataclass
class PromoteResult:
    promotions: list[Promotion] = field(default_factory=list)


@dataclass
class RemoveSideTagRequest:
    name: str


@dataclass
class StableCheckRequest:
    tag: str
    nvrs: list[str]


@dataclass
class StableCheckResult:
    stable: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


@dataclass
class LatestBuildsRequest:
    tag: str
    components: list[str]


@dataclass
class LatestBuildsResult:
    builds: list[KojiBuild] = field(default_factory=list)  # found=False when none


@dataclass
class TagQuery:
    """Which build of `package` does Koji list as latest in `tag`?"""

    component: str  # the queued component, to match the answer to the package
    tag: str
    package: str = ""  # the Koji package name; the component's when empty


@dataclass
class TagResolveRequest:
    queries: list[TagQuery] = field(default_factory=list)


@dataclass
class TaggedBuild:
    """Koji's answer to one TagQuery: getLatestBuilds(tag, package=...)[0]."""

    component: str
    tag: str
    found: bool = False  # False: the tag holds no build of the package
    nvr: str = ""
    build_id: int = 0
    tag_event: int = 0  # the Koji event that tagged it (tag_listing.create_event)


@dataclass
class TagResolveResult:
    builds: list[TaggedBuild] = field(default_factory=list)  # in query order


@dataclass
class UpdateRequest:
    from_tag: str
    notes: str
    key: str  # idempotency: at most one update per errata side tag
    update_type: str = "unspecified"
    builds: list[str] = field(default_factory=list)  # informational / for fallback


@dataclass
class UpdateInfo:
    alias: str
    url: str = ""
    status: str = ""
    reused: bool = False


@dataclass
class ResolveRequest:
    components: list[str]


@dataclass
class ComponentCandidates:
    """What the manual trigger knows of one requested component."""

    requested: str
    component: str = ""  # the Rawhide (upstream) name queued and tagged
    eln_name: str = ""  # the ELN (downstream) name
    eligible: bool = False
    reason: str = ""  # why not eligible
    rawhide: KojiBuild | None = None  # latest in the trigger tag
    eln: KojiBuild | None = None  # latest in the ELN stable tag


@dataclass
class ResolveResult:
    candidates: list[ComponentCandidates] = field(default_factory=list)
    trigger_tag: str = ""
    stable_tag: str = ""  # where `eln` candidates were found


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
