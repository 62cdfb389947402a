"""ComponentLedger: durable memory of what ebs did per component.

* The failed-SCM-URL denylist (in the singleton ``ebs-ledger``): the SCM URL of
  a build that failed for good is never submitted again; only a new Rawhide
  commit (a new URL) is tried. RebuildBatch looks its URLs up before building
  and reports the URLs that failed for good when its slices are done, as the
  original ELNBuildSync did with its ``failed_builds`` table. An operator clears
  one component's entries with the ``clear_denied`` signal (API, CLI, or
  ``temporal workflow signal --workflow-id ebs-ledger --name clear_denied
  --input '"bash"'``).
* The last rebuild of every component ("where is my build?"), spread over
  RECORD_SHARDS ledgers ``ebs-ledger-records-N``, for /components.

Why a workflow of its own, not the BatchCollector's state: the collector's state
is rewritten by other work (its queue), the ledger grows with the number of
components, not with the queue, and it must outlive any one collector run.
Started on first use with signal-with-start; it continues-as-new with its state.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ebs.contracts.ledger import (
        LEDGER_WORKFLOW,
        MAX_DENIED,
        QUERY_COMPONENTS,
        QUERY_DENIED,
        QUERY_DENIED_AMONG,
        SIGNAL_CLEAR_DENIED,
        SIGNAL_LEDGER_RECORD,
        DeniedAnswer,
        DeniedLookup,
        DeniedUrl,
        LedgerBatch,
        LedgerState,
        record_rows,
    )


IDLE_WAKE = timedelta(hours=24)


@workflow.defn(name=LEDGER_WORKFLOW)
class ComponentLedger:
    @workflow.init
    def __init__(self, state: LedgerState) -> None:
        self._s = state

    @workflow.signal(name=SIGNAL_LEDGER_RECORD)
    def record_batch(self, batch: LedgerBatch) -> None:
        for pkg in batch.packages:
            rec = pkg.record
            if rec.component and pkg.keep_record:
                current = self._s.components.get(rec.component)
                # A late report of an older batch never hides a newer one.
                if current is None or current.finished_at <= rec.finished_at:
                    self._s.components[rec.component] = rec
            if pkg.failed_for_good and pkg.scm_url and pkg.scm_url not in self._s.denied:
                self._s.denied[pkg.scm_url] = DeniedUrl(
                    url=pkg.scm_url,
                    component=rec.component,
                    rawhide_nvr=rec.rawhide_nvr,
                    batch_id=batch.batch_id,
                    failed_at=batch.finished_at or workflow.now().isoformat(),
                    reason=rec.detail[:500],
                )
        if len(self._s.denied) > MAX_DENIED:
            oldest = sorted(self._s.denied.values(), key=lambda d: d.failed_at)
            for entry in oldest[: len(self._s.denied) - MAX_DENIED]:
                workflow.logger.warning(
                    "denylist full (%d): forgetting the oldest entry %s", MAX_DENIED, entry.url
                )
                del self._s.denied[entry.url]

    @workflow.signal(name=SIGNAL_CLEAR_DENIED)
    def clear_denied(self, component: str) -> None:
        if not isinstance(component, str) or not component:
            workflow.logger.warning("clear_denied needs a component name, got %r", component)
            return
        removed = sorted(u for u, d in self._s.denied.items() if d.component == component)
        for url in removed:
            del self._s.denied[url]
        workflow.logger.info(
            "denylist: cleared %s for %s", ", ".join(removed) or "nothing", component
        )

    @workflow.query(name=QUERY_DENIED)
    def denied(self) -> DeniedAnswer:
        return DeniedAnswer(sorted(self._s.denied.values(), key=lambda d: d.failed_at,
                                   reverse=True))

    @workflow.query(name=QUERY_DENIED_AMONG)
    def denied_among(self, lookup: DeniedLookup) -> DeniedAnswer:
        return DeniedAnswer([self._s.denied[u] for u in lookup.urls if u in self._s.denied])

    @workflow.query(name=QUERY_COMPONENTS)
    def components(self) -> list[list[Any]]:
        return record_rows(list(self._s.components.values()))

    @workflow.run
    async def run(self, state: LedgerState) -> None:
        # A daily wake-up: an idle ledger always has a timer, so a time-skipping
        # test server never jumps to a far execution timeout.
        while not self._should_continue_as_new():
            try:
                await workflow.wait_condition(self._should_continue_as_new, timeout=IDLE_WAKE)
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._s.history_limit
        )
