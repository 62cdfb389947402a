"""The BatchCollector's settings, durable state and status query answer.
"""

# No `from __future__ import annotations`: the SDK resolves every decoded
# dataclass's type hints, and string annotations cost a compile() each time
# (a mass rebuild's history of thousands of tag signals: 1.5x slower decoding).

from dataclasses import dataclass, field

from ebs.contracts.batch import BatchSummary
from ebs.contracts.events import TagEvent


@dataclass
class CollectorSettings:
    lull: float = 60.0
    paused_by_config: bool = False
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
    log_level: str = ""  # set by /loglevel; "" = the workers' own level
    # The last message ids seen, as fixed-width hashes (ebs.contracts.queue.seen_key)
    # concatenated: a redelivered message is a no-op.
    seen_keys: str = ""
    # Queued components beyond this many go to the queue holders before a
    # continue-as-new; while tags stream in, past `hand_over_at` (a whole part).
    hold_after: int = 500
    hand_over_at: int = 4_000
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
