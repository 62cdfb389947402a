"""Pure name rules from the control section: exclude, skip_tag and ordering.

Imported by Temporal workflow code, so: stdlib only, no I/O, deterministic.
Every pattern is applied with ``re.search`` (unanchored), as in the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

DEFAULT_ORDERING = 1000


@lru_cache(maxsize=2048)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def first_match(patterns: Iterable[str], name: str) -> str | None:
    """The first pattern that matches `name`, or None."""
    for pattern in patterns:
        if _compiled(pattern).search(name):
            return pattern
    return None


def matches_any(patterns: Iterable[str], name: str) -> bool:
    return first_match(patterns, name) is not None


def is_skip_tag(patterns: Iterable[str], name: str) -> bool:
    """True when the Rawhide build must not be tagged into the ELN buildroot
    before its ELN rebuild exists (the component is rebuilt without it)."""
    return matches_any(patterns, name)


def ordering_for(ordering: Mapping[str, int], name: str, default: int = DEFAULT_ORDERING) -> int:
    """The value of the first pattern (in the mapping's order) matching `name`.

    Lower values build earlier; unmatched components get `default`.
    """
    pattern = first_match(ordering, name)
    return default if pattern is None else ordering[pattern]
