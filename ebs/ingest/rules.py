"""The bridge's view of the configuration: the current snapshot of a
ConfigHolder, with the shared eligibility code (ebs.config.eligibility)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ebs.config.eligibility import Eligibility
from ebs.config.holder import ConfigHolder, ConfigState


@dataclass(frozen=True)
class ConfigRules:
    """decide.Rules over one ConfigState."""

    trigger_tag: str
    koji_user: str | None
    eligibility: Eligibility

    @classmethod
    def of(cls, state: ConfigState) -> ConfigRules:
        return cls(
            trigger_tag=state.trigger_tag,
            koji_user=state.config.configuration.koji.username,
            eligibility=state.eligibility,
        )

    def is_eligible(self, component: str) -> bool:
        # Tag messages carry the Fedora (upstream) package name.
        return self.eligibility.is_eligible(component, downstream=False)

    def eln_name(self, component: str) -> str | None:
        """The ELN name of a Fedora component (ordering rules use it)."""
        return self.eligibility.downstream_name(component)


def rules_of(holder: ConfigHolder) -> Callable[[], ConfigRules]:
    """A cheap per-message accessor that follows the holder's refreshes."""
    cache: dict[int, tuple[ConfigState, ConfigRules]] = {}

    def current() -> ConfigRules:
        state = holder.current()
        hit = cache.get(id(state))
        if hit is not None and hit[0] is state:
            return hit[1]
        rules = ConfigRules.of(state)
        cache.clear()
        cache[id(state)] = (state, rules)
        return rules

    return current
