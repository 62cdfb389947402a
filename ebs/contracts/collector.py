"""The BatchCollector's settings, durable state and status query answer.
"""

from __future__ import annotations

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
    """Everything the BatchCollector knows; carried across continue-as-new."""

    queue: dict[str, TagEvent] = field(default_factory=dict)
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
    history_limit: int = 10_000
    log_level: str = ""  # set by /loglevel; "" = the workers' own level


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
    # `queued` lists the first STATUS_QUEUED (a query answer must stay small).
    queue_length: int = 0
    totals: BatchTotals = field(default_factory=BatchTotals)
