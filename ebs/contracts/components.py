"""Validation of component (package) names: the API, the CLI and the collector.

The same rule the BatchCollector's `enqueue` validator applies, checked at the
edge so a typo is reported before anything reaches Temporal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
MAX_COMPONENTS = 5000
_SHOWN = 10


class InvalidComponents(ValueError):
    """The request names no component, too many, or something that is not a package name."""


def check_components(names: Iterable[str]) -> list[str]:
    """The names, deduplicated in their original order; InvalidComponents otherwise."""
    unique = list(dict.fromkeys(names))
    if not unique:
        raise InvalidComponents("no components given")
    if len(unique) > MAX_COMPONENTS:
        raise InvalidComponents(
            f"{len(unique)} components given; at most {MAX_COMPONENTS} can be queued at once"
        )
    bad = [n for n in unique if not isinstance(n, str) or not PACKAGE_NAME.match(n)]
    if bad:
        shown = ", ".join(repr(b) for b in bad[:_SHOWN])
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        raise InvalidComponents(
            f"not a package name: {shown}{more}; a package name starts with a letter or "
            "digit, has at most 200 characters and uses only letters, digits and . _ + -"
        )
    return unique


def check_component(name: str) -> str:
    """A single package name (for /history); InvalidComponents otherwise."""
    return check_components([name])[0]
