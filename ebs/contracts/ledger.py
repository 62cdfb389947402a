"""The ComponentLedger's data: the failed-SCM-URL denylist and the compact
per-component record of the last rebuild by ebs ("where is my build?").

ComponentLedger workflows hold both, carried across continue-as-new: the
denylist in the singleton LEDGER_WORKFLOW_ID, the component records spread over
RECORD_SHARDS more (by a stable hash of the name, so that one payload stays far
under Temporal's 2 MB limit for 30,000 components). RebuildBatch reads the
denylist and reports each finished batch through activities (ebs.activities.ledger).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any

LEDGER_WORKFLOW_ID = "ebs-ledger"
LEDGER_WORKFLOW = "ComponentLedger"
RECORD_SHARDS = 8


def record_shard_id(component: str) -> str:
    """The ledger workflow that holds `component`'s record."""
    return f"{LEDGER_WORKFLOW_ID}-records-{zlib.crc32(component.encode()) % RECORD_SHARDS}"


def record_shard_ids() -> list[str]:
    return [f"{LEDGER_WORKFLOW_ID}-records-{n}" for n in range(RECORD_SHARDS)]

SIGNAL_LEDGER_RECORD = "record_batch"  # RebuildBatch (through an activity) -> ledger
SIGNAL_CLEAR_DENIED = "clear_denied"  # component name: forget its failed URLs
QUERY_DENIED = "denied"  # all entries (bounded), newest first
QUERY_DENIED_AMONG = "denied_among"  # list of SCM URLs -> those on the denylist
QUERY_COMPONENTS = "components"  # every component record, as rows (record_rows)

# Bounds on what the ledger carries across continue-as-new (one payload must stay
# well under Temporal's 2 MB limit): the oldest denylist entries go first.
MAX_DENIED = 5000


@dataclass
class DeniedUrl:
    """An SCM URL whose build failed for good; it is never submitted again."""

    url: str
    component: str
    rawhide_nvr: str = ""
    batch_id: str = ""
    failed_at: str = ""  # ISO 8601 workflow time
    reason: str = ""


@dataclass
class ComponentRecord:
    """The last rebuild of one component by ebs (one row of /components)."""

    component: str
    batch_id: str = ""
    state: str = ""  # a PackageState, or "skipped" (denylisted)
    detail: str = ""
    rawhide_nvr: str = ""
    nvr: str = ""  # the ELN build, once known
    task_id: int = 0  # the last Koji task
    finished_at: str = ""  # ISO 8601


def record_fields() -> list[str]:
    return [f.name for f in fields(ComponentRecord)]


def record_rows(records: list[ComponentRecord]) -> list[list[Any]]:
    """Records as plain rows in record_fields() order: a query answer that
    converts fast (10,000 dataclasses through the SDK's converter take seconds)."""
    names = record_fields()
    return [[getattr(r, n) for n in names] for r in records]


def records_from_rows(rows: list[list[Any]]) -> list[ComponentRecord]:
    return [ComponentRecord(*row) for row in rows]


@dataclass
class LedgerPackage:
    """What a finished batch reports for one package."""

    record: ComponentRecord
    scm_url: str = ""
    failed_for_good: bool = False  # add scm_url to the denylist
    keep_record: bool = True  # False: only the denylist entry goes to this ledger


@dataclass
class LedgerBatch:
    batch_id: str
    finished_at: str = ""
    packages: list[LedgerPackage] = field(default_factory=list)


@dataclass
class DeniedLookup:
    urls: list[str] = field(default_factory=list)


@dataclass
class DeniedAnswer:
    denied: list[DeniedUrl] = field(default_factory=list)


@dataclass
class ClearResult:
    component: str
    removed: list[str] = field(default_factory=list)


@dataclass
class LedgerState:
    """Everything the ledger knows; carried across continue-as-new."""

    denied: dict[str, DeniedUrl] = field(default_factory=dict)  # url -> entry
    # component -> record, kept compact: the rows of the per-component view.
    components: dict[str, ComponentRecord] = field(default_factory=dict)
    history_limit: int = 5_000
