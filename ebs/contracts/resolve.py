"""What the manual trigger asks the worker about requested components.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebs.contracts.koji import KojiBuild


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
    eln: KojiBuild | None = None  # latest in the build target's destination tag


@dataclass
class ResolveResult:
    candidates: list[ComponentCandidates] = field(default_factory=list)
    trigger_tag: str = ""
    eln_tag: str = ""  # where the `eln` candidates were found (the target's destination tag)
