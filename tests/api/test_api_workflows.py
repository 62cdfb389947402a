"""Workflow and activities the operator-surface tests run beside the real BatchCollector.

No tests here: this module only holds code the Temporal worker of those tests
hosts (workflow code must live in an importable module, free of pytest).

- The real BatchCollector (ebs.workflows.collector) runs unchanged, and so does
  its `resolve_components` activity (ebs.activities.settings) on a fixed
  config, with Koji's answers from a fixed set of builds (`RawhideKoji`).
- The settings activities answer with what the test sets (e.g. a short lull).
- Its RebuildBatch child is `ScriptedBatch`: it keeps the message contract of
  the real batch (search attributes, the `status` query returning a
  BatchResult) while the test decides what the batch reports and when it ends.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from ebs.activities.settings import SettingsActivities
    from ebs.config.holder import ConfigHolder
    from ebs.config.rules import ordering_for
    from ebs.contracts.batch import BatchRequest, BatchResult, BatchSettings, PackageResult
    from ebs.contracts.collector import CollectorSettings
    from ebs.contracts.koji import (
        BuildTarget,
        KojiBuild,
        LatestBuildsRequest,
        LatestBuildsResult,
    )
    from ebs.contracts.names import QUERY_STATUS
    from ebs.contracts.search import OUTCOME_KEY, PACKAGES_KEY, PHASE_KEY

SIGNAL_SCRIPT = "test_script"
SIGNAL_FINISH = "test_finish"


class RawhideKoji:
    """Stands in for ebs.koji.adapter.KojiAdapter where the enqueue path asks Koji:
    the latest build of each component in a tag."""

    def __init__(self, builds: dict[str, dict[str, str]]) -> None:
        self.builds = builds  # tag -> component -> NVR

    def get_build_target(self, name: str) -> BuildTarget:
        return BuildTarget(name, f"{name}-build", "eln")  # destination tag: eln

    def latest_builds(self, req: LatestBuildsRequest, on_progress: object = None
                      ) -> LatestBuildsResult:
        out = []
        for component in req.components:
            nvr = self.builds.get(req.tag, {}).get(component)
            out.append(
                KojiBuild(nvr=nvr, build_id=zlib.crc32(nvr.encode()) % 100000,
                          component=component, creation_ts=1.7e9)
                if nvr else KojiBuild(nvr="", found=False, component=component)
            )
        return LatestBuildsResult(builds=out)


@dataclass
class World:
    """What the activities answer: the real settings activities on a fixed
    config, with Koji's latest builds from `koji`; `lull` set by the test."""

    holder: ConfigHolder
    koji: RawhideKoji
    settings: BatchSettings
    lull: float = 3600.0

    def activities(self) -> list:
        world = self
        real = SettingsActivities(self.holder, self.koji)  # type: ignore[arg-type]

        @activity.defn(name="collector_settings")
        async def collector_settings() -> CollectorSettings:
            return CollectorSettings(lull=world.lull, config_version="test")

        @activity.defn(name="batch_settings")
        async def batch_settings() -> BatchSettings:
            return world.settings

        return [collector_settings, batch_settings, real.resolve_components]


@workflow.defn(name="RebuildBatch")
class ScriptedBatch:
    """A RebuildBatch whose progress the test scripts (see module docstring)."""

    @workflow.init
    def __init__(self, req: BatchRequest) -> None:
        s = req.settings
        self._snapshot = BatchResult(
            batch_id=req.batch_id,
            outcome="starting",
            packages=[
                PackageResult(
                    component=e.component,
                    rawhide_nvr=e.nvr,
                    ordering=ordering_for(s.ordering, e.component, s.default_ordering),
                )
                for e in req.packages
            ],
            started_at=workflow.now().isoformat(),
            config_version=s.config_version,
        )
        self._outcome = ""

    @workflow.signal(name=SIGNAL_SCRIPT)
    def script(self, snapshot: BatchResult) -> None:
        self._snapshot = snapshot

    @workflow.signal(name=SIGNAL_FINISH)
    def finish(self, outcome: str) -> None:
        self._outcome = outcome

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> BatchResult:
        return self._snapshot

    @workflow.run
    async def run(self, req: BatchRequest) -> BatchResult:
        workflow.upsert_search_attributes(
            [
                PACKAGES_KEY.value_set(sorted(e.component for e in req.packages)),
                PHASE_KEY.value_set("building"),
            ]
        )
        await workflow.wait_condition(lambda: bool(self._outcome))
        workflow.upsert_search_attributes(
            [OUTCOME_KEY.value_set(self._outcome), PHASE_KEY.value_set("finished")]
        )
        self._snapshot.outcome = self._outcome
        self._snapshot.finished_at = workflow.now().isoformat()
        return self._snapshot
