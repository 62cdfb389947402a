"""What a RebuildBatch tells the bus (the ebs-messages topics), in order, at least once.

The batch calls `announce()` at the points where a package's fate is settled
(after each slice, after promotion, after filing Bodhi updates, at the end);
the Announcer compares the packages with what it has already announced and
queues the new messages. A coroutine of the workflow sends the queue with the
`publish_messages` activity, one batch of messages at a time so they reach
the bus in order; that activity retries without a maximum, so a broker that
is down delays the messages but never fails the batch. `close()` sends the
rest and waits for it, so the batch finishes after its last message.

Each message id is derived from the batch id and the event (`package.built/
bash`), so a message published again after a worker crash has the same id,
and consumers drop the repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ebs.activities.messages import MessageActivities
    from ebs.activities.presets import PUBLISH
    from ebs.contracts.batch import BatchResult, BatchSettings, PackageResult, PackageState
    from ebs.contracts.bus import BusMessage, PublishRequest, batch_url, message_id

PATCH_ID = "ebs-messages"

State = PackageState
BUILT = (State.SUCCEEDED.value, State.STABLE.value)


class Announcer:
    """The bus side of one RebuildBatch (workflow code: deterministic)."""

    def __init__(self, batch_id: str, settings: BatchSettings) -> None:
        self._batch_id = batch_id
        self._settings = settings
        self._enabled = False
        self._url = ""
        self._announced: set[str] = set()
        self._outbox: list[BusMessage] = []
        self._closing = False
        self._sent = 0
        self._sender: asyncio.Task[None] | None = None

    def start(self, packages: Iterable[PackageResult]) -> None:
        """Announce the batch; histories from before ebs published skip it all."""
        self._enabled = workflow.patched(PATCH_ID)
        if not self._enabled:
            return
        info = workflow.info()
        self._url = batch_url(self._settings.temporal_ui_url, info.namespace, info.workflow_id)
        self._queue("batch.started", "ebs.batch.started", {
            "packages": [{"component": p.component, "rawhide_nvr": p.rawhide_nvr}
                         for p in packages],
            "scratch": self._settings.scratch,
            "started_at": workflow.now().isoformat(),
        })
        self._sender = asyncio.create_task(self._send())

    def announce(self, packages: Iterable[PackageResult], finished: bool = False) -> None:
        """Queue a message for each package and update whose fate is newly settled.

        Call it only where a failed package has failed for good (not between
        the attempts of a slice)."""
        if not self._enabled:
            return
        updates: dict[str, list[PackageResult]] = {}
        for p in packages:
            if p.state == State.FAILED.value:
                self._queue(f"package.failed/{p.component}", "ebs.package.failed",
                            {**self._package(p), "reason": p.reason})
            elif p.state in BUILT and (p.nvr or self._settings.scratch):
                self._queue(f"package.built/{p.component}", "ebs.package.built",
                            self._package(p))
            if p.update_alias:
                updates.setdefault(p.update_alias, []).append(p)
        for alias, members in updates.items():
            body = {
                "alias": alias,
                "url": members[0].update_url,
                "builds": sorted(p.nvr for p in members),
                "components": sorted(p.component for p in members),
            }
            self._queue(f"update.filed/{alias}", "ebs.update.filed", body)
            pending = sorted(p.nvr for p in members if p.state != State.STABLE.value)
            if not pending:
                self._queue(f"update.stable/{alias}", "ebs.update.stable", body)
            elif finished:
                reason = next((p.reason for p in members if p.reason), "not stable in time")
                self._queue(f"update.unstable/{alias}", "ebs.update.unstable",
                            {**body, "pending": pending, "reason": reason})

    async def close(self, result: BatchResult) -> None:
        """Announce the end of the batch and wait until every message is out."""
        if not self._enabled:
            return
        self.announce(result.packages, finished=True)
        by_alias = {p.update_alias: p.update_url for p in result.packages if p.update_alias}
        self._queue("batch.finished", "ebs.batch.finished", {
            "outcome": result.outcome,
            "packages": sorted(p.component for p in result.packages),
            "built": sorted(p.component for p in result.packages if p.state in BUILT),
            "failed": sorted(p.component for p in result.packages
                             if p.state == State.FAILED.value),
            "updates": [{"alias": a, "url": by_alias.get(a, "")} for a in result.updates],
            "started_at": result.started_at,
            "finished_at": result.finished_at or workflow.now().isoformat(),
            "error": result.error,
        })
        self._closing = True
        if self._sender is not None:
            await self._sender

    # ---- internals ---------------------------------------------------------

    def _package(self, p: PackageResult) -> dict[str, Any]:
        return {
            "component": p.component,
            "rawhide_nvr": p.rawhide_nvr,
            "eln_nvr": "" if self._settings.scratch else p.nvr,
            "task_ids": list(p.task_ids),
            "task_urls": [u for u in p.task_urls if u],
            "attempts": p.attempts,
            "scratch": self._settings.scratch,
        }

    def _queue(self, event: str, topic: str, body: dict[str, Any]) -> None:
        if event in self._announced:
            return
        self._announced.add(event)
        full = {"batch_id": self._batch_id, "batch_url": self._url, "agent": "", **body}
        self._outbox.append(BusMessage(topic, full, message_id(self._batch_id, event)))

    async def _send(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._closing)
            if not self._outbox:
                return
            batch, self._outbox = self._outbox, []
            self._sent += 1
            try:
                await workflow.execute_activity_method(
                    MessageActivities.publish_messages,
                    PublishRequest(batch),
                    activity_id=f"publish:{self._sent}",
                    **PUBLISH,
                )
            except ActivityError as err:  # a message its schema rejects: a bug, logged
                workflow.logger.error("could not publish %d message(s): %s", len(batch), err)
