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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ebs.workflows import types as t

PATCH_ID = "ebs-messages"
ACTIVITY = "publish_messages"
# Names message ids: uuid5(ID_NAMESPACE, "<batch id>/<event>").
ID_NAMESPACE = uuid.UUID("6f0b7d4e-3a51-5c1e-9a7e-2c0e1b5e1b5e")
# The broker may be down for hours: retry for ever, at most every 2 minutes.
PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=0,
    non_retryable_error_types=["InvalidMessage"],
)

State = t.PackageState
BUILT = (State.SUCCEEDED.value, State.STABLE.value)


@dataclass
class BusMessage:
    topic: str  # without the deployment's topic_prefix, e.g. "ebs.package.built"
    body: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass
class PublishRequest:
    messages: list[BusMessage] = field(default_factory=list)


@dataclass
class PublishResult:
    published: int = 0
    disabled: bool = False  # messaging not configured: nothing sent


def message_id(batch_id: str, event: str) -> str:
    """The same id for the same event of the same batch, on every attempt."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{batch_id}/{event}"))


def batch_url(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The batch's workflow in the Temporal Web UI."""
    if not ui_url:
        return ""
    return (f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}")


class Announcer:
    """The bus side of one RebuildBatch (workflow code: deterministic)."""

    def __init__(self, batch_id: str, settings: t.BatchSettings) -> None:
        self._batch_id = batch_id
        self._settings = settings
        self._enabled = False
        self._url = ""
        self._announced: set[str] = set()
        self._outbox: list[BusMessage] = []
        self._closing = False
        self._sent = 0
        self._sender: asyncio.Task[None] | None = None

    def start(self, packages: Iterable[t.PackageResult]) -> None:
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

    def announce(self, packages: Iterable[t.PackageResult], finished: bool = False) -> None:
        """Queue a message for each package and update whose fate is newly settled.

        Call it only where a failed package has failed for good (not between
        the attempts of a slice)."""
        if not self._enabled:
            return
        updates: dict[str, list[t.PackageResult]] = {}
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

    async def close(self, result: t.BatchResult) -> None:
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

    def _package(self, p: t.PackageResult) -> dict[str, Any]:
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
                await workflow.execute_activity(
                    ACTIVITY,
                    PublishRequest(batch),
                    result_type=PublishResult,
                    activity_id=f"publish:{self._sent}",
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=PUBLISH_RETRY,
                )
            except ActivityError as err:  # a message its schema rejects: a bug, logged
                workflow.logger.error("could not publish %d message(s): %s", len(batch), err)
