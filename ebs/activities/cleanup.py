"""The PeriodicCleanup's activities: read the facts in bulk (package lists,
stable tag, Rawhide, denylist), ask whether the collector is paused, queue
components through the collector's enqueue update, untag builds."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.config.holder import ConfigHolder
from ebs.contracts.cleanup import (
    CleanupEnqueue,
    CleanupEnqueued,
    CleanupFacts,
    CleanupRequest,
    CollectorPause,
    Skipped,
    UntagRequest,
    UntagResult,
)
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.events import EnqueueRequest, EnqueueResult
from ebs.contracts.koji import LatestBuildsRequest, ListTaggedRequest
from ebs.contracts.ledger import LEDGER_WORKFLOW_ID, QUERY_DENIED, DeniedAnswer, DeniedUrl
from ebs.contracts.names import QUERY_STATUS, UPDATE_ENQUEUE
from ebs.koji.adapter import KojiAdapter

CLEANUP_SOURCE = "cleanup"


class CleanupActivities:
    def __init__(self, client: Client, holder: ConfigHolder, koji: KojiAdapter) -> None:
        self._client = client
        self._holder = holder
        self._koji = koji

    @activity.defn(name="cleanup_facts")
    async def facts(self, req: CleanupRequest) -> CleanupFacts:
        state = self._holder.current()
        stable_tag = state.config.configuration.koji.stable_tag
        desired = dict(state.package_lists.downstream_to_upstream)
        latest = await asyncio.to_thread(
            self._koji.list_tagged, ListTaggedRequest(stable_tag, latest=True)
        )
        facts = CleanupFacts(
            stable_tag=stable_tag,
            desired=desired,
            latest_tagged={b.name: b.nvr for b in latest.builds},
        )
        if req.untagging:
            every = await asyncio.to_thread(
                self._koji.list_tagged, ListTaggedRequest(stable_tag, latest=False)
            )
            facts.all_tagged = sorted({b.nvr for b in every.builds})
        missing = sorted(n for n in desired if n not in facts.latest_tagged)
        if missing:
            upstream = sorted({desired[n] for n in missing})
            found = await asyncio.to_thread(
                self._koji.latest_builds, LatestBuildsRequest(state.trigger_tag, upstream)
            )
            facts.rawhide_latest = {b.component: b.nvr for b in found.builds if b.found}
            for d in await self._denied():
                facts.denied_nvrs.setdefault(d.component, []).append(d.rawhide_nvr)
        return facts

    async def _denied(self) -> list[DeniedUrl]:
        try:
            answer = await self._client.get_workflow_handle(LEDGER_WORKFLOW_ID).query(
                QUERY_DENIED, result_type=DeniedAnswer
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return []
            raise
        return answer.denied

    @activity.defn(name="cleanup_collector_pause")
    async def collector_pause(self, collector_workflow_id: str) -> CollectorPause:
        """The cleanup does nothing while batching is paused, as the original's."""
        try:
            st = await self._client.get_workflow_handle(collector_workflow_id).query(
                QUERY_STATUS, result_type=CollectorStatus
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return CollectorPause(collector_running=False)
            raise
        if st.paused:
            return CollectorPause(True, "paused (ebs pause / POST /pause)")
        if st.paused_by_config:
            return CollectorPause(True, "paused by the configuration (control.pause)")
        return CollectorPause()

    @activity.defn(name="cleanup_enqueue")
    async def enqueue(self, req: CleanupEnqueue) -> CleanupEnqueued:
        """The collector's enqueue update: it picks each build as a manual rebuild does."""
        result = await self._client.get_workflow_handle(req.collector_workflow_id).execute_update(
            UPDATE_ENQUEUE,
            EnqueueRequest(req.components, source=CLEANUP_SOURCE, requested_by=CLEANUP_SOURCE),
            result_type=EnqueueResult,
        )
        return CleanupEnqueued(
            [e.component for e in result.queued],
            [Skipped(r.component, r.reason) for r in result.rejected],
        )

    @activity.defn(name="cleanup_untag")
    @fail_fast
    def untag(self, req: UntagRequest) -> UntagResult:
        done, failed = self._koji.untag_builds(req.tag, req.nvrs)
        return UntagResult(done, [Skipped(nvr, why) for nvr, why in failed])

    def all(self) -> list:
        return [self.facts, self.collector_pause, self.enqueue, self.untag]
