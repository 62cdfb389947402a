"""Activities that read the worker's current configuration.

Workflows never read config themselves: they ask for a snapshot here, so a
config refresh reaches the next batch, never one that is running.
"""

from __future__ import annotations

from temporalio import activity

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchSettings
from ebs.contracts.collector import CollectorSettings
from ebs.contracts.koji import LatestBuildsRequest
from ebs.contracts.resolve import ComponentCandidates, ResolveRequest, ResolveResult
from ebs.koji.adapter import KojiAdapter


class SettingsActivities:
    def __init__(self, holder: ConfigHolder, koji: KojiAdapter) -> None:
        self._holder = holder
        self._koji = koji

    @activity.defn(name="collector_settings")
    def collector_settings(self) -> CollectorSettings:
        return self._holder.collector_settings()

    @activity.defn(name="batch_settings")
    def batch_settings(self) -> BatchSettings:
        return self._holder.batch_settings()

    @activity.defn(name="resolve_components")
    @fail_fast
    def resolve_components(self, req: ResolveRequest) -> ResolveResult:
        """Eligibility and the latest Rawhide and ELN builds of each component;
        the workflow chooses between them."""
        state = self._holder.current()
        eligibility = state.eligibility
        trigger_tag = state.trigger_tag
        candidates = []
        for requested in req.components:
            names = eligibility.resolve(requested)
            upstream = names.upstream if names else requested
            why = eligibility.why_not(upstream)
            candidates.append(
                ComponentCandidates(
                    requested=requested,
                    component=upstream,
                    eln_name=names.downstream if names else "",
                    eligible=why is None,
                    reason=why or "",
                )
            )
        wanted = [c for c in candidates if c.eligible]
        eln_tag = ""
        if wanted:
            rawhide = self._koji.latest_builds(
                LatestBuildsRequest(trigger_tag, [c.component for c in wanted])
            )
            # As the original: ELN's latest build is the one in the build
            # target's destination tag (where builds land), not stable_tag.
            target = self._koji.get_build_target(
                state.config.configuration.koji.build_target
            )
            eln_tag = target.dest_tag
            eln = self._koji.latest_builds(
                LatestBuildsRequest(
                    eln_tag,
                    [c.eln_name or c.component for c in wanted],
                )
            )
            for cand, rb, eb in zip(wanted, rawhide.builds, eln.builds, strict=True):
                cand.rawhide = rb if rb.found else None
                cand.eln = eb if eb.found else None
        return ResolveResult(candidates=candidates, trigger_tag=trigger_tag, eln_tag=eln_tag)

    def all(self) -> list:
        return [self.collector_settings, self.batch_settings, self.resolve_components]
