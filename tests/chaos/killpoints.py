"""Where in a batch a worker is SIGKILLed, and how each point is hit precisely.

Two kinds of points:

* between activities (`inside=False`): the batch waits on a timer or a child
  workflow; the kill happens once `quiescent()` says no activity and no
  workflow task is in flight. Recovery takes seconds (the dead worker's
  sticky queue times out, the new worker replays the history).
* inside an activity (`inside=True`): the simulator holds the Koji (or Bodhi)
  request that marks the point (`Hang`, mostly after Koji did the work, so
  the answer is lost with the worker), and the kill happens while the worker
  waits for it. Recovery waits for the 30 s heartbeat timeout, then Temporal
  retries the activity, which must find the work already done.

Every point runs the standard chaos batch (tests/chaos/harness.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import PendingWorkflowTaskState

from ebs.workflows.attempt import attempt_workflow_id
from tests.chaos.faults import Call, Hang, Interceptor, mentions
from tests.chaos.harness import (
    STANDARD_PACKAGES,
    Outcome,
    World,
    closed,
    eventually,
    quiescent,
    until,
)

Wait = Callable[[World, str], Awaitable[None]]


@dataclass(frozen=True)
class KillPoint:
    name: str
    where: str  # the batch phase, in words
    inside: bool  # inside an activity (recovery waits for the heartbeat timeout)
    arm: Callable[[World, Interceptor], Wait]

    def __str__(self) -> str:
        return self.name

    @property
    def moment(self) -> str:
        if self.inside:
            return "inside an activity"
        if self.arm is first_workflow_task or self.name.startswith("between"):
            return "a workflow task may be in flight"
        return "between activities"


async def _idle(world: World, batch_id: str) -> None:
    client = await world.client()
    await eventually(lambda: quiescent(client, batch_id), 60, f"{batch_id} between activities",
                     interval=0.02)


def _called(world: World, method: str, match: Callable[[Any], bool] = lambda c: True,
            n: int = 1) -> Callable[[], bool]:
    return lambda: sum(1 for c in world.sim.calls if c.method == method and match(c)) >= n


def _args_mention(text: str) -> Callable[[Any], bool]:
    return lambda c: any(isinstance(a, str) and text in a for a in c.args)


def idle_after(method: str, match: Callable[[Any], bool] = lambda c: True, n: int = 1,
               prepare: Callable[[World], None] = lambda w: None
               ) -> Callable[[World, Interceptor], Wait]:
    """Kill once `method` was called (n times) and the batch is between activities."""

    def arm(world: World, _: Interceptor) -> Wait:
        prepare(world)

        async def wait(world: World, batch_id: str) -> None:
            await until(_called(world, method, match, n), 120, f"{method} call")
            await _idle(world, batch_id)

        return wait

    return arm


def child_closed(ordering: int, attempt: int) -> Callable[[World, Interceptor], Wait]:
    """Kill the moment an attempt child workflow has finished."""

    def arm(world: World, _: Interceptor) -> Wait:
        async def wait(world: World, batch_id: str) -> None:
            client = await world.client()
            child = attempt_workflow_id(batch_id, ordering, attempt, 0)
            await eventually(lambda: closed(client, child), 120, f"{child} to finish",
                             interval=0.02)

        return wait

    return arm


def first_workflow_task(world: World, _: Interceptor) -> Wait:
    """Kill while the worker runs the batch's first workflow task."""

    async def wait(world: World, batch_id: str) -> None:
        client = await world.client()

        async def started() -> bool:
            desc = await client.get_workflow_handle(batch_id).describe()
            raw = desc.raw_description
            return raw.HasField("pending_workflow_task") and raw.pending_workflow_task.state == (
                PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
            )

        await eventually(started, 60, "the first workflow task", interval=0.01)

    return wait


def hang(method: str, match: Callable[[Call], bool] = lambda c: True, nth: int = 1,
         after: bool = True) -> Callable[[World, Interceptor], Wait]:
    """Kill while the worker waits for the held request."""

    def arm(world: World, icpt: Interceptor) -> Wait:
        rule = icpt.hang(Hang(method, match, nth=nth, after=after))

        async def wait(world: World, batch_id: str) -> None:
            await until(rule.hit.is_set, 120, f"the held {method} request")

        return wait

    return arm


def hang_build_poll(world: World, icpt: Interceptor) -> Wait:
    """The first getTaskInfo about a build task (tagging polls its tasks too)."""

    def about_a_build(call: Call) -> bool:
        ids = {b["task_id"] for b in world.sim.builds_submitted}
        return bool(call[1]) and call[1][0] in ids

    return hang("getTaskInfo", about_a_build, after=False)(world, icpt)


def hang_build_side_tag_removal(world: World, icpt: Interceptor) -> Wait:
    def is_build_side_tag(call: Call) -> bool:
        created = world.sim.side_tags_created
        return bool(created) and bool(call[1]) and call[1][0] == created[0]

    return hang("removeSideTag", is_build_side_tag)(world, icpt)


def bodhi_submission(world: World, _: Interceptor) -> Wait:
    """Bodhi holds the update creation (then creates it, to a dead client)."""
    fault = world.sim.bodhi_app.add_fault("create_update", "slow", delay=6.0)

    async def wait(world: World, batch_id: str) -> None:
        await until(lambda: fault.times == 0, 120, "the held Bodhi update creation")

    return wait


def _slow_repo(world: World) -> None:
    world.sim.set_repo_delay(3.0)


def _slow_stable(world: World) -> None:
    world.sim.bodhi_app.stable_after = 3.0


def _stable_check(c: Any) -> bool:
    return c.method == "listTagged" and c.kwargs.get("package") == "bash"


IDLE = [
    KillPoint("first-task", "the batch's first workflow task", False, first_workflow_task),
    KillPoint("repo-wait", "waiting for the side tag's repo", False,
              idle_after("repo.request", prepare=_slow_repo)),
    KillPoint("slice0-builds", "slice 0 builds running", False,
              idle_after("build", _args_mention("llvm"))),
    KillPoint("between-slices", "slice 0 done, slice 1 not started", False, child_closed(0, 1)),
    KillPoint("attempt1-builds", "attempt 1 builds running", False,
              idle_after("build", _args_mention("bash"))),
    KillPoint("between-attempts", "attempt 1 done, attempt 2 not started", False,
              child_closed(1000, 1)),
    KillPoint("attempt2-builds", "attempt 2 builds running", False,
              idle_after("build", _args_mention("glibc"), n=2)),
    KillPoint("stable-wait", "waiting for Bodhi to push stable", False,
              idle_after("listTagged", _stable_check, prepare=_slow_stable)),
]

INSIDE = [
    KillPoint("target-lookup", "getBuildTarget", True, hang("getBuildTarget", after=False)),
    KillPoint("rawhide-lookup", "getBuild of the Rawhide builds", True,
              hang("getBuild", after=False)),
    KillPoint("sidetag-create", "createSideTag done, answer lost", True, hang("createSideTag")),
    KillPoint("sidetag-key", "editSideTag (request key) done, answer lost", True,
              hang("editSideTag")),
    KillPoint("tagging", "tagBuild into the side tag done, answer lost", True,
              hang("tagBuild", lambda c: mentions(c, "bash"))),
    KillPoint("repo-check", "repo.request of the side tag", True,
              hang("repo.request", after=False)),
    KillPoint("submit", "build submitted (slice 0), answer lost", True,
              hang("build", lambda c: mentions(c, "llvm"))),
    KillPoint("poll", "getTaskInfo of a build task", True, hang_build_poll),
    KillPoint("failure-reasons", "getTaskResult of the failed tasks", True,
              hang("getTaskResult", after=False)),
    KillPoint("resubmit", "build resubmitted (attempt 2), answer lost", True,
              hang("build", lambda c: mentions(c, "glibc"), nth=2)),
    KillPoint("task-builds", "listBuilds of the finished tasks", True,
              hang("listBuilds", after=False)),
    KillPoint("promote", "promoteBuild done, answer lost", True, hang("promoteBuild")),
    KillPoint("errata-sidetag", "createSideTag (errata) done, answer lost", True,
              hang("createSideTag", nth=2)),
    KillPoint("errata-tagging", "tagBuild into the errata tag done, answer lost", True,
              hang("tagBuild", lambda c: mentions(c, "bash"), nth=2)),
    KillPoint("bodhi-submit", "Bodhi update creation", True, bodhi_submission),
    KillPoint("stable-check", "listTagged of the stable tag", True,
              hang("listTagged", lambda c: c[2].get("package") == "bash", after=False)),
    KillPoint("cleanup", "removeSideTag of the build side tag done, answer lost", True,
              hang_build_side_tag_removal),
]

ALL = IDLE + INSIDE
BY_NAME = {p.name: p for p in ALL}


@dataclass
class PointRun:
    point: str
    outcome: Outcome
    seconds: float
    kills: int
    log_tail: str = ""


async def run_batch(world: World, point: KillPoint | None, icpt: Interceptor,
                    within: float = 240.0) -> PointRun:
    """The standard batch in `world`, its worker SIGKILLed and restarted at `point`."""
    wait = point.arm(world, icpt) if point is not None else None
    await world.start_worker_ready()
    started = time.monotonic()
    handle = await world.start_batch(STANDARD_PACKAGES)
    if wait is not None:
        await wait(world, handle.id)
        world.crash_and_restart()
    result = await world.result(handle, within)
    return PointRun(
        point.name if point else "undisturbed",
        world.outcome(STANDARD_PACKAGES, result),
        time.monotonic() - started,
        world.kills,
        world.worker_logs(15),
    )
