"""Signals and updates into the workflows: tags, Koji task and repo events, enqueue requests.
"""

# No `from __future__ import annotations`: the SDK resolves every decoded
# dataclass's type hints, and string annotations cost a compile() each time
# (a mass rebuild's history of thousands of tag signals: 1.5x slower decoding).

from dataclasses import dataclass, field
from enum import StrEnum


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
class TagBatch:
    """Tag events that arrived together: one `tags` signal instead of one each."""

    events: list[TagEvent] = field(default_factory=list)


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


@dataclass
class Routing:
    """Where the bridge sends task and repo messages (queried, cached briefly)."""

    batch_workflow_id: str = ""
    side_tags: list[str] = field(default_factory=list)
