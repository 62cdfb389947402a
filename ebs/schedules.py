"""ebs's periodic jobs, as Temporal Schedules.

Three schedules per deployment, named after its task queue (``ebs`` by default),
created or brought up to date by every worker at start (:func:`ensure_schedules`
is idempotent: a schedule that exists is updated only if its interval or action
differs, and keeps its paused/unpaused state and note):

* ``ebs-config-refresh``, every ``timers.config_refresh`` (15 min): the
  ConfigRefresh workflow re-reads the config and the package lists;
* ``ebs-sidetag-sweep``, every ``timers.sidetag_sweep`` (12 h): the
  SideTagSweep workflow removes leaked side tags older than
  ``timers.sidetag_grace`` (48 h) that no running batch holds;
* ``ebs-cleanup``, every ``timers.cleanup`` (12 h): the PeriodicCleanup
  workflow (the original's cleanup.py) queues listed ELN components that have
  no build in the stable tag, and with ``ebs worker --untagging`` (the
  original's ``--untagging``, off by default) untags the older builds.

Both are visible, pausable and triggerable in the Web UI (Schedules) and with
the CLI, e.g. ``temporal schedule list``, ``temporal schedule describe
--schedule-id ebs-sidetag-sweep``, ``temporal schedule toggle --schedule-id
ebs-sidetag-sweep --pause --reason "Koji maintenance"`` and ``temporal schedule
trigger --schedule-id ebs-config-refresh`` (re-read the config everywhere now).
Overlapping runs are skipped, and after an outage a missed run is not
replayed: the next one comes at its time.

Why the config refresh fans out. Every ebs process holds its own
ConfigHolder, and a workflow's activity runs on whichever worker picks it up,
so one activity would refresh one worker. Instead each worker process also
polls a task queue of its own, ``<task queue>:config:<worker identity>``,
serving only the ``refresh_config`` activity; ConfigRefresh asks Temporal which
workers poll the main task queue (DescribeTaskQueue), runs ``refresh_config``
on each one's queue, and reports every worker's config version, or why its
refresh failed (that worker keeps its previous config). It then re-applies the
``timers.*`` intervals to the schedules, so a new interval in the config takes
effect without a restart. A worker that vanished is reported as unreachable
after 30 s.

As a safety net each worker also refreshes by itself when nothing has
refreshed it for 1.5 × ``timers.config_refresh`` (:func:`refresh_when_due`):
so a worker still follows the config when Temporal's schedule is paused or
could not be created. Pausing ``ebs-config-refresh`` therefore slows refreshes
down, it does not freeze the config: to freeze it, pin the git ref or the file.
Processes that are not workers (the API, the bus bridge) refresh on their own
timer.

Not a job: the original regenerated its status page every
``control.status_interval``; ebs's status (/status.json, /status.html, ``ebs
status``) is computed live from workflow queries and visibility, so there is
nothing to regenerate and ``status_interval`` is accepted but unused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from ebs.config.holder import ConfigHolder
from ebs.config.model import Timers
from ebs.contracts.cleanup import CLEANUP_WORKFLOW, CleanupRequest
from ebs.contracts.names import CONFIG_REFRESH_WORKFLOW, SWEEP_WORKFLOW
from ebs.contracts.refresh import ConfigRefreshRequest, WorkerRefresh
from ebs.contracts.sweep import SweepRequest

log = logging.getLogger(__name__)

CATCHUP_WINDOW = timedelta(minutes=5)  # a run missed by longer is skipped, not replayed
FALLBACK_SLACK = 1.5  # × timers.config_refresh without a refresh: refresh locally


@dataclass(frozen=True)
class PeriodicJob:
    schedule_id: str
    workflow: str
    arg: Any
    every: timedelta
    timeout: timedelta  # of one run
    note: str


@dataclass(frozen=True)
class ScheduleChange:
    schedule_id: str
    action: str  # created | updated | unchanged
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.schedule_id}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def config_refresh_schedule_id(task_queue: str) -> str:
    return f"{task_queue}-config-refresh"


def sidetag_sweep_schedule_id(task_queue: str) -> str:
    return f"{task_queue}-sidetag-sweep"


def cleanup_schedule_id(task_queue: str) -> str:
    return f"{task_queue}-cleanup"


def refresh_queue(task_queue: str, identity: str) -> str:
    """The task queue on which one worker process serves refresh_config."""
    return f"{task_queue}:config:{identity}"


def periodic_jobs(task_queue: str, timers: Timers, *, untagging: bool = False
                  ) -> list[PeriodicJob]:
    return [
        PeriodicJob(
            schedule_id=config_refresh_schedule_id(task_queue),
            workflow=CONFIG_REFRESH_WORKFLOW,
            arg=ConfigRefreshRequest(),
            every=timedelta(seconds=timers.config_refresh),
            timeout=timedelta(minutes=10),
            note="ebs: re-read the config and package lists on every worker "
            "(timers.config_refresh)",
        ),
        PeriodicJob(
            schedule_id=sidetag_sweep_schedule_id(task_queue),
            workflow=SWEEP_WORKFLOW,
            arg=SweepRequest(),
            every=timedelta(seconds=timers.sidetag_sweep),
            timeout=timedelta(hours=4),  # its activities' retries included
            note="ebs: remove leaked side tags older than timers.sidetag_grace "
            "(timers.sidetag_sweep)",
        ),
        PeriodicJob(
            schedule_id=cleanup_schedule_id(task_queue),
            workflow=CLEANUP_WORKFLOW,
            arg=CleanupRequest(untagging=untagging),
            every=timedelta(seconds=timers.cleanup),
            timeout=timedelta(hours=4),
            note="ebs: queue listed ELN components missing from the stable tag"
            + (", untag older builds (--untagging)" if untagging else "")
            + " (timers.cleanup)",
        ),
    ]


def _schedule(job: PeriodicJob, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            job.workflow, job.arg, id=job.schedule_id, task_queue=task_queue,
            execution_timeout=job.timeout,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=job.every)]),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW
        ),
        state=ScheduleState(note=job.note),
    )


def _differences(current: Schedule, wanted: Schedule) -> list[str]:
    out: list[str] = []
    have = [(i.every, i.offset) for i in current.spec.intervals]
    want = [(i.every, i.offset) for i in wanted.spec.intervals]
    if have != want or current.spec.calendars or current.spec.cron_expressions:
        was = ", ".join(f"{e.total_seconds():g}s" for e, _ in have) or "no interval"
        out.append(f"every {was} -> {wanted.spec.intervals[0].every.total_seconds():g}s")
    action, wanted_action = current.action, wanted.action
    assert isinstance(wanted_action, ScheduleActionStartWorkflow)
    if not isinstance(action, ScheduleActionStartWorkflow):
        out.append(f"action -> start {wanted_action.workflow}")
    else:
        for name in ("workflow", "task_queue", "execution_timeout"):
            if getattr(action, name) != getattr(wanted_action, name):
                out.append(f"{name} {getattr(action, name)} -> {getattr(wanted_action, name)}")
        if _args_json(action.args) != _args_json(wanted_action.args):
            out.append("input")
    if current.policy.overlap != wanted.policy.overlap:
        out.append("overlap policy")
    return out


def _args_json(args: Any) -> list[Any]:
    """Schedule inputs compared as JSON: a described schedule holds raw payloads."""
    import json

    from temporalio.api.common.v1 import Payload
    from temporalio.converter import default

    out: list[Any] = []
    for a in args or []:
        if isinstance(a, Payload):
            out.append(json.loads(a.data or b"null"))
        else:
            out.append(json.loads(default().payload_converter.to_payloads([a])[0].data))
    return out


async def ensure_schedule(client: Client, job: PeriodicJob, task_queue: str) -> ScheduleChange:
    """Create the job's schedule, or update it if it differs; never unpauses."""
    wanted = _schedule(job, task_queue)
    try:
        await client.create_schedule(job.schedule_id, wanted)
        return ScheduleChange(job.schedule_id, "created", f"every {job.every.total_seconds():g}s")
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(job.schedule_id)
    changed: list[str] = []

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        schedule = current.description.schedule
        changed[:] = _differences(schedule, wanted)
        if not changed:
            return None
        schedule.action, schedule.spec, schedule.policy = (
            wanted.action, wanted.spec, wanted.policy
        )
        return ScheduleUpdate(schedule=schedule)  # state (paused, note) as it was

    await handle.update(update)
    if changed:
        return ScheduleChange(job.schedule_id, "updated", "; ".join(changed))
    return ScheduleChange(job.schedule_id, "unchanged")


async def ensure_schedules(client: Client, task_queue: str, timers: Timers, *,
                           untagging: bool = False) -> list[ScheduleChange]:
    """Bring every periodic job's schedule in line with `timers`; idempotent."""
    changes = [await ensure_schedule(client, job, task_queue)
               for job in periodic_jobs(task_queue, timers, untagging=untagging)]
    for change in changes:
        if change.action != "unchanged":
            log.info("schedule %s", change)
    return changes


# ---- the config refresh's activities ---------------------------------------------


class RefreshActivity:
    """refresh_config, served by each worker process on its own task queue."""

    def __init__(self, holder: ConfigHolder, identity: str) -> None:
        self._holder = holder
        self._identity = identity

    @activity.defn(name="refresh_config")
    def refresh_config(self) -> WorkerRefresh:
        before = self._holder.version if self._holder.loaded else ""
        ok = self._holder.refresh()
        return WorkerRefresh(
            worker=self._identity,
            ok=ok,
            version=self._holder.version if self._holder.loaded else "",
            previous_version=before,
            error="" if ok else self._holder.last_error,
        )


class ScheduleActivities:
    """Served on the main task queue: who to refresh, and the schedules' upkeep."""

    def __init__(self, client: Client, holder: ConfigHolder, task_queue: str, *,
                 untagging: bool = False) -> None:
        self._client = client
        self._holder = holder
        self._task_queue = task_queue
        self._untagging = untagging

    @activity.defn(name="config_refresh_queues")
    async def config_refresh_queues(self) -> list[str]:
        """The refresh queue of every worker polling the main task queue."""
        identities = await worker_identities(self._client, self._task_queue)
        if not identities:  # no answer from the server: at least the one running this
            identities = [self._client.identity]
        return [refresh_queue(self._task_queue, identity) for identity in identities]

    @activity.defn(name="sync_schedules")
    async def sync_schedules(self) -> list[str]:
        changes = await ensure_schedules(
            self._client, self._task_queue, self._holder.current().config.timers,
            untagging=self._untagging,
        )
        return [str(c) for c in changes if c.action != "unchanged"]

    def all(self) -> list:
        return [self.config_refresh_queues, self.sync_schedules]


async def worker_identities(client: Client, task_queue: str) -> list[str]:
    """Identities of the workers polling `task_queue` for activities (as Temporal
    saw them in the last minutes); empty if the server cannot tell."""
    try:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            log.warning("cannot list the workers of task queue %s: %s", task_queue, err.message)
        return []
    return sorted({p.identity for p in answer.pollers if p.identity})


def build_refresh_worker(client: Client, holder: ConfigHolder, task_queue: str) -> Worker:
    """This process's refresh_config worker, on refresh_queue(task_queue, identity)."""
    identity = client.identity
    return Worker(
        client,
        task_queue=refresh_queue(task_queue, identity),
        activities=[RefreshActivity(holder, identity).refresh_config],
        activity_executor=ThreadPoolExecutor(max_workers=1),
        max_concurrent_activities=1,
    )


async def refresh_when_due(holder: ConfigHolder, slack: float = FALLBACK_SLACK) -> None:
    """The safety net: refresh when nothing refreshed the holder for
    `slack` × timers.config_refresh. Runs until cancelled."""
    if not holder.specs:
        return  # a config built in code: nothing to re-read
    while True:
        every = holder.current().config.timers.config_refresh
        last = max(holder.last_attempt_at, holder.current().loaded_at)
        wait = last + slack * every - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, every))
            continue
        log.info("configuration: no scheduled refresh for %gs, refreshing here", slack * every)
        await asyncio.to_thread(holder.refresh)
