"""Inputs and results of the Koji activities; the Koji adapter (ebs.koji) returns these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KojiTaskState(StrEnum):
    """koji.TASK_STATES names, as Koji's messages and getTaskInfo carry them."""

    FREE = "FREE"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    CANCELED = "CANCELED"
    ASSIGNED = "ASSIGNED"
    FAILED = "FAILED"


# A task in one of these states will not change again.
TERMINAL_TASK_STATES = frozenset(
    {KojiTaskState.CLOSED, KojiTaskState.FAILED, KojiTaskState.CANCELED}
)
# The terminal states of a task that built nothing.
UNSUCCESSFUL_TASK_STATES = frozenset({KojiTaskState.FAILED, KojiTaskState.CANCELED})


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
class RebuildLookupRequest:
    """Rawhide NVRs whose rebuild (same name-version-release but for the
    dist tag, and not a draft) may exist in Koji already (issue 17 #6)."""

    nvrs: list[str] = field(default_factory=list)


@dataclass
class RebuildLookupResult:
    # one per asked NVR, in order: found=True with the existing rebuild's
    # nvr/build_id (component: the Rawhide NVR asked about), else found=False
    builds: list[KojiBuild] = field(default_factory=list)


@dataclass
class SideTagRequest:
    base_tag: str
    key: str  # idempotency key, e.g. "<batch id>:build:1"; stored in the tag's extra
    # When the request was first made (epoch s; 0: unknown). The activity sets it
    # from Temporal's first scheduling of the call: a side tag of ours created
    # since then is this request's, found again without extra (issue 17 #7).
    not_before: float = 0.0


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
    request_id: int = 0  # the Koji 1.35 repo request being waited on (0: none)


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
    # No earlier try of this request can have reached Koji (the first run of the
    # workflow, the activity's first attempt): no listTasks for tasks to reuse.
    # The default (False) always looks, as before the field existed.
    first_submission: bool = False


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
    state: str  # a KojiTaskState
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
class ListTaggedRequest:
    """Every build in a tag, in one call (listTagged); `latest`: the newest per package."""

    tag: str
    latest: bool = True
    inherit: bool = False


@dataclass
class TagListing:
    """One row of a whole-tag listing (ListTaggedResult)."""

    name: str
    nvr: str
    build_id: int = 0


@dataclass
class ListTaggedResult:
    tag: str
    builds: list[TagListing] = field(default_factory=list)
