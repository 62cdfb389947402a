"""The collector's queue holders (CollectorQueue workflows, ebs.workflows.queue):
their ids and partitions, their state, and the hold/take requests and answers
of the activities `hold_queued` and `take_queued`.
"""

# No `from __future__ import annotations`: the SDK resolves every decoded
# dataclass's type hints, and string annotations cost a compile() each time.

import zlib
from dataclasses import dataclass, field

from ebs.contracts.events import TagEvent

PARTITIONS = 64


def partition_of(component: str) -> str:
    """The holder partition ("00".."63") that keeps `component`."""
    return f"{zlib.crc32(component.encode()) % PARTITIONS:02d}"


def holder_id(collector_id: str, partition: str) -> str:
    return f"{collector_id}-queue-{partition}"


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
