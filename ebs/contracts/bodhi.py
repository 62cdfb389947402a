"""Input and result of the Bodhi update activity; the Bodhi adapter (ebs.bodhi) returns these.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
