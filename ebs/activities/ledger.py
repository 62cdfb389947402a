"""Activities between a RebuildBatch and the ComponentLedger workflows
(ebs.workflows.ledger): a workflow cannot query another one, nor
signal-with-start it, so these do it with the worker's Temporal client."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode

from ebs.activities.presets import HEARTBEAT_EVERY, ActivityPreset
from ebs.contracts.ledger import (
    LEDGER_WORKFLOW,
    LEDGER_WORKFLOW_ID,
    QUERY_DENIED_AMONG,
    SIGNAL_LEDGER_RECORD,
    DeniedAnswer,
    DeniedLookup,
    LedgerBatch,
    LedgerPackage,
    LedgerState,
    record_shard_id,
)

# The ledger runs on the same workers: retry for as long as a batch would wait.
LEDGER_CALL = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=2 * HEARTBEAT_EVERY / 5,
        maximum_interval=timedelta(minutes=2),
    ),
)


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


class LedgerActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name="ledger_denied_among")
    async def denied_among(self, lookup: DeniedLookup) -> DeniedAnswer:
        """The given SCM URLs that are on the denylist (none before the first failure)."""
        if not lookup.urls:
            return DeniedAnswer()
        handle = self._client.get_workflow_handle(LEDGER_WORKFLOW_ID)
        try:
            return await handle.query(QUERY_DENIED_AMONG, lookup, result_type=DeniedAnswer)
        except RPCError as err:
            if _not_found(err):
                return DeniedAnswer()
            raise

    @activity.defn(name="ledger_record_batch")
    async def record_batch(self, batch: LedgerBatch) -> None:
        """Send each ledger its part: denylist entries to ``ebs-ledger``, each
        component's record to its shard (started if need be)."""
        parts: dict[str, list[LedgerPackage]] = defaultdict(list)
        for pkg in batch.packages:
            if pkg.failed_for_good and pkg.scm_url:
                parts[LEDGER_WORKFLOW_ID].append(
                    LedgerPackage(pkg.record, pkg.scm_url, True, keep_record=False)
                )
            parts[record_shard_id(pkg.record.component)].append(
                LedgerPackage(record=pkg.record)
            )
        for workflow_id, packages in sorted(parts.items()):
            await self._client.start_workflow(
                LEDGER_WORKFLOW,
                LedgerState(),
                id=workflow_id,
                task_queue=self._task_queue,
                start_signal=SIGNAL_LEDGER_RECORD,
                start_signal_args=[LedgerBatch(batch.batch_id, batch.finished_at, packages)],
            )

    def all(self) -> list:
        return [self.denied_among, self.record_batch]
