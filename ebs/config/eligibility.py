"""Which components ebs rebuilds, and why not: the one implementation shared by
the message bridge, the API/CLI and the worker."""

from __future__ import annotations

from dataclasses import dataclass

from ebs.config.model import ControlConfig
from ebs.config.packages import PackageLists
from ebs.config.rules import first_match

NOT_LISTED = "not in the ELN package lists"


@dataclass(frozen=True)
class ComponentNames:
    upstream: str  # the Fedora (Rawhide) name
    downstream: str  # the ELN name


class Eligibility:
    """Eligible = in the package lists (under the name's side) and matching no
    `exclude` pattern.

    Exclude patterns are tried on both the upstream and the downstream name of
    a component, so a rule written with either name holds for renamed packages.
    """

    def __init__(self, package_lists: PackageLists, control: ControlConfig) -> None:
        self.package_lists = package_lists
        self.control = control

    def why_not(self, component: str, downstream: bool = False) -> str | None:
        """None when `component` is eligible, else the reason in words."""
        names = self._names(component, downstream)
        if names is None:
            return NOT_LISTED
        for name in dict.fromkeys((names.upstream, names.downstream)):
            pattern = first_match(self.control.exclude, name)
            if pattern is not None:
                return f"excluded by pattern '{pattern}'"
        return None

    def is_eligible(self, component: str, downstream: bool = False) -> bool:
        return self.why_not(component, downstream) is None

    def downstream_name(self, upstream: str) -> str | None:
        return self.package_lists.downstream_name(upstream)

    def upstream_name(self, downstream: str) -> str | None:
        return self.package_lists.upstream_name(downstream)

    def resolve(self, name: str) -> ComponentNames | None:
        """Both names of a component given by either one (a person asking for a
        rebuild may use the ELN or the Fedora name); the ELN name wins."""
        return self._names(name, downstream=True) or self._names(name, downstream=False)

    def _names(self, component: str, downstream: bool) -> ComponentNames | None:
        if downstream:
            upstream = self.package_lists.upstream_name(component)
            return None if upstream is None else ComponentNames(upstream, component)
        down = self.package_lists.downstream_name(component)
        return None if down is None else ComponentNames(component, down)
