"""The text the operator commands print for people (--json prints the API's
documents instead)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ebs.api.models import HistoryResponse, StatusResponse, TriggerResponse


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def format_trigger(result: TriggerResponse) -> str:
    lines = []
    for r in result.results:
        detail = r.nvr if r.status == "queued" else r.reason
        lines.append(f"{r.status:<9} {r.component}  {detail}")
    return "\n".join(lines)


def format_status(s: StatusResponse) -> str:
    c = s.collector
    lines = []
    if not c.exists:
        lines.append("Collector: not started (the first trigger or bus message starts it)")
    else:
        pause = ""
        if c.paused:
            pause = ", PAUSED"
        if c.paused_by_config:
            pause += ", PAUSED by config (control.pause)"
        answered = "" if c.answered else " (did not answer its status query: is a worker running?)"
        lines.append(f"Collector: {c.status}{pause}{answered}")
    nxt = f", next batch at {_when(c.lull_deadline)}" if c.lull_deadline else ""
    lines.append(f"Queue: {c.queue_length} component(s){nxt}")
    for q in c.queued:
        lines.append(f"  {q.component:<28} {q.nvr:<40} {q.source:<4} {q.requested_by}")
    b = s.current_batch
    if b is None:
        lines.append("Current batch: none")
    else:
        lines.append(
            f"Current batch: {b.batch_id} ({b.phase or 'no answer'}), {b.packages} package(s)"
            + (f": {_counts(b.counts)}" if b.counts else "")
        )
        if b.temporal_url:
            lines.append(f"  {b.temporal_url}")
        for sl in b.slices:
            lines.append(f"  slice {sl.ordering} [{sl.state}] {_counts(sl.counts)}")
            for p in sl.packages:
                task = p.koji_tasks[-1].url or str(p.koji_tasks[-1].task_id) if p.koji_tasks else ""
                update = p.bodhi_update.url or p.bodhi_update.alias if p.bodhi_update else ""
                extra = "  ".join(x for x in (p.nvr, task, update, p.reason) if x)
                lines.append(f"    {p.component:<28} {p.state:<10} attempt {p.attempt}  {extra}")
    lines.append("Recent batches:" if s.recent_batches else "Recent batches: none")
    for r in s.recent_batches:
        done = f"{r.succeeded} built, {r.failed} failed" if r.failed is not None else ""
        lines.append(
            f"  {r.batch_id:<36} {r.status:<10} {r.outcome or '-':<9} "
            f"{_when(r.started_at)} -> {_when(r.finished_at)}  {r.packages} pkg  {done}".rstrip()
        )
    return "\n".join(lines)


def format_history(h: HistoryResponse) -> str:
    if not h.batches:
        lines = [f"No batch has rebuilt {h.component}."]
    else:
        lines = [f"Batches that rebuilt {h.component} (newest first):"]
    for e in h.batches:
        b, p = e.batch, e.package
        what = f"{p.state}, attempt {p.attempt}" if p else (e.error or "unknown")
        nvr = f"  {p.nvr}" if p and p.nvr else ""
        reason = f"  ({p.reason})" if p and p.reason else ""
        lines.append(
            f"  {b.batch_id:<36} {_when(b.started_at)}  batch {b.status}/{b.outcome or '-'}  "
            f"{h.component}: {what}{nvr}{reason}"
        )
    if h.temporal_search_url:
        lines.append(f"Temporal Web UI: {h.temporal_search_url}")
    return "\n".join(lines)
