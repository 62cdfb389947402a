"""Activities of the side-tag sweep (the SideTagSweep workflow).

A side tag is *stale* when all of these hold:

* ebs's Koji user owns it (``listSideTags(user=...)``, and the tag's
  ``sidetag_user_id`` says so again): someone else's side tag is never touched;
* no running batch holds it: neither listed by a running RebuildBatch (its
  ``status`` query: build side tags and errata side tags, so the errata tags of
  a batch waiting for Bodhi stable are kept) nor made for one (the request key
  ebs stores on every side tag starts with the batch id, which covers a tag
  whose creation the batch has not recorded yet);
* it already existed at the cutoff (now minus ``timers.sidetag_grace``, by the
  clock of the worker, as Koji's own timestamps are wall-clock ones). Koji
  has no creation time on a tag, but it has events: the tag is old enough
  when ``getTag(tag, event=E)`` finds it, E being ``getLastEvent(before=cutoff)``;
* no open Bodhi update was filed from it: a batch that gave up waiting for
  stable leaves its errata tags to the update (Bodhi removes them itself when
  the update goes stable; obsolete, unpushed and expired updates let go).

Running batches are found through Temporal visibility (RebuildBatch, running,
on ebs's task queue) and through the collector's routing query (its current
batch). If either answers with an error, the sweep removes nothing. A server
with no visibility at all (only Temporal's time-skipping test server; every
real cluster and the dev server have it) leaves the collector's answer alone:
enough there, as the collector starts every batch and runs one at a time.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ebs.activities.errors import permanent_faults_fail_fast as fail_fast
from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchResult
from ebs.contracts.events import Routing
from ebs.contracts.koji import RemoveSideTagRequest
from ebs.contracts.names import QUERY_ROUTING, QUERY_STATUS
from ebs.contracts.sweep import RunningSideTags, SideTagNote, SweepPlan, SweepReport
from ebs.koji.adapter import SIDE_TAG_KEY, KojiAdapter

log = logging.getLogger(__name__)

BATCH_WORKFLOW = "RebuildBatch"
QUERY_TIMEOUT = timedelta(seconds=30)
# Bodhi update states that no longer need the side tag they were filed from.
RELEASED_UPDATE_STATES = frozenset({"stable", "obsolete", "unpushed", "side_tag_expired"})


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def running_batches_query(task_queue: str) -> str:
    """The visibility query for the batches that may hold side tags."""
    return (
        f"WorkflowType = {_quoted(BATCH_WORKFLOW)} AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = {_quoted(task_queue)}"
    )


def batch_of_key(key: str | None) -> str:
    """The batch id in a side tag's request key ("<batch id>:build:1")."""
    return key.split(":", 1)[0] if key else ""


class SweepActivities:
    def __init__(self, client: Client, holder: ConfigHolder, koji: KojiAdapter,
                 bodhi: BodhiAdapter, task_queue: str) -> None:
        self._client = client
        self._holder = holder
        self._koji = koji
        self._bodhi = bodhi
        self._task_queue = task_queue

    @activity.defn(name="sweep_grace")
    def sweep_grace(self) -> float:
        """timers.sidetag_grace of the current config, in seconds."""
        return self._holder.current().config.timers.sidetag_grace

    # ---- Temporal: what running batches hold -------------------------------------

    @activity.defn(name="running_batch_side_tags")
    async def running_batch_side_tags(self, collector_workflow_id: str) -> RunningSideTags:
        keep = RunningSideTags()
        batch_ids: dict[str, None] = {}
        listed = await self._list_running_batches()
        if listed is None:
            keep.sources.append("visibility: not available on this server")
        else:
            keep.sources.append(f"visibility: {len(listed)} running batch(es)")
            batch_ids.update(dict.fromkeys(listed))
        routing = await self._collector_routing(collector_workflow_id)
        if routing is not None:
            keep.sources.append(
                f"collector {collector_workflow_id}: "
                + (f"batch {routing.batch_workflow_id}" if routing.batch_workflow_id
                   else "no batch running")
            )
            if routing.batch_workflow_id:
                batch_ids[routing.batch_workflow_id] = None
            keep.side_tags.extend(routing.side_tags)
        for batch_id in batch_ids:
            activity.heartbeat(batch_id)
            keep.side_tags.extend(await self._batch_side_tags(batch_id))
        keep.batch_ids = list(batch_ids)
        keep.side_tags = sorted(set(keep.side_tags))
        return keep

    async def _list_running_batches(self) -> list[str] | None:
        """Running batch ids on our task queue; None when the server has no
        visibility (the time-skipping test server)."""
        ids: list[str] = []
        try:
            async for execution in self._client.list_workflows(
                running_batches_query(self._task_queue)
            ):
                ids.append(execution.id)
        except RPCError as err:
            if err.status == RPCStatusCode.UNIMPLEMENTED:
                return None
            raise ApplicationError(f"cannot list running batches: {err.message}") from err
        return ids

    async def _collector_routing(self, workflow_id: str) -> Routing | None:
        """The collector's current batch and its side tags (None: no collector
        of ours is running)."""
        if not workflow_id:
            return None
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise ApplicationError(f"cannot describe {workflow_id}: {err.message}") from err
        if (described.status != WorkflowExecutionStatus.RUNNING
                or described.task_queue != self._task_queue):
            return None
        try:
            routing: Routing = await handle.query(
                QUERY_ROUTING, result_type=Routing, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as err:
            raise ApplicationError(f"collector {workflow_id} did not answer: {err.message}") \
                from err
        return routing

    async def _batch_side_tags(self, batch_id: str) -> list[str]:
        handle = self._client.get_workflow_handle(batch_id)
        try:
            status: BatchResult = await handle.query(
                QUERY_STATUS, result_type=BatchResult, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as err:
            raise ApplicationError(
                f"running batch {batch_id} did not say which side tags it holds: {err.message}"
            ) from err
        return list(status.side_tags) + list(status.errata_tags)

    # ---- Koji: the stale side tags go -------------------------------------------

    @activity.defn(name="sweep_side_tags")
    @fail_fast
    def sweep_side_tags(self, plan: SweepPlan) -> SweepReport:
        cutoff = time.time() - plan.grace
        report = SweepReport(
            cutoff=datetime.fromtimestamp(cutoff, UTC).isoformat(), grace=plan.grace,
            dry_run=plan.dry_run, running_batches=list(plan.keep.batch_ids),
        )
        ours = self._koji.list_side_tags()
        if not ours:
            return report
        event = self._koji.last_event_before(cutoff)
        ids = [tag.tag_id for tag in ours]
        now_infos = self._koji.get_tags(ids)
        then_infos: list[Any] = self._koji.get_tags(ids, event) if event else [None] * len(ids)
        held = set(plan.keep.side_tags)
        running = set(plan.keep.batch_ids)
        for tag, info, then in zip(ours, now_infos, then_infos, strict=True):
            if isinstance(info, Exception) or isinstance(then, Exception):
                fault = info if isinstance(info, Exception) else then
                report.failed.append(SideTagNote(tag.name, f"cannot read the tag: {fault}"))
                continue
            if not info:
                continue  # removed meanwhile
            why = self._reason_to_keep(info, then, held, running)
            if why:
                report.kept.append(SideTagNote(tag.name, why))
                continue
            if plan.dry_run:
                report.removed.append(tag.name)
                continue
            try:
                self._koji.remove_side_tag(RemoveSideTagRequest(tag.name))
            except Exception as err:  # reported; the next sweep tries again
                report.failed.append(SideTagNote(tag.name, f"{type(err).__name__}: {err}"))
                continue
            report.removed.append(tag.name)
            log.info("side-tag sweep: removed %s (key %s)", tag.name,
                     (info.get("extra") or {}).get(SIDE_TAG_KEY) or "none")
        return report

    def _reason_to_keep(self, info: dict[str, Any], then: Any, held: set[str],
                        running: set[str]) -> str:
        """Why this side tag of ours must stay; empty when it is stale."""
        extra = info.get("extra") or {}
        owner = extra.get("sidetag_user_id")
        if not extra.get("sidetag"):
            return "not a side tag"
        if owner is not None and int(owner) != self._koji.user_id:
            return f"owned by {extra.get('sidetag_user') or owner}"
        if info["name"] in held:
            return "held by a running batch"
        batch = batch_of_key(extra.get(SIDE_TAG_KEY))
        if batch and batch in running:
            return f"made for running batch {batch}"
        if not then:
            return "younger than the grace period"
        return self._bodhi_hold(info["name"])

    def _bodhi_hold(self, tag: str) -> str:
        try:
            update = self._bodhi.update_for_side_tag(tag)
        except Exception as err:  # keep it: an unanswered question is not a yes
            return f"cannot ask Bodhi about it: {err}"
        if update is not None and update.status not in RELEASED_UPDATE_STATES:
            return f"Bodhi update {update.alias} is {update.status or 'open'}"
        return ""

    def all(self) -> list:
        return [self.sweep_grace, self.running_batch_side_tags, self.sweep_side_tags]
