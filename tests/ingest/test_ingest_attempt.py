"""Task messages reach a BuildAttempt whatever their owner (the bridge no longer
needs koji.username): the attempt takes a message only for a task id it submitted."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ebs.contracts.attempt import AttemptOutcome, AttemptRequest
from ebs.contracts.events import TaskStateEvent
from ebs.contracts.koji import (
    BuildSpec,
    CancelRequest,
    SubmitRequest,
    SubmitResult,
    SubmittedTask,
    TaskPollRequest,
    TaskPollResult,
    TaskStatus,
)
from ebs.contracts.names import QUERY_STATUS, SIGNAL_TASK_STATE
from ebs.workflows.attempt import BuildAttempt

OURS = 101
FOREIGN = 999  # someone else's task whose build metadata names our attempt


@activity.defn(name="submit_builds")
async def submit_builds(req: SubmitRequest) -> SubmitResult:
    return SubmitResult(submitted=[SubmittedTask(b.component, OURS) for b in req.builds])


@activity.defn(name="poll_tasks")
async def poll_tasks(req: TaskPollRequest) -> TaskPollResult:
    # Koji would still say "open": only the signal can finish the attempt early.
    return TaskPollResult([TaskStatus(task_id, "OPEN") for task_id in req.task_ids])


@activity.defn(name="cancel_tasks")
async def cancel_tasks(req: CancelRequest) -> None:
    return None


async def test_attempt_ignores_task_messages_for_tasks_it_did_not_submit(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    queue = f"attempt-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[BuildAttempt],
        activities=[submit_builds, poll_tasks, cancel_tasks],
    ):
        handle = await client.start_workflow(
            BuildAttempt.run,
            AttemptRequest(
                batch_id="b1", ordering=1000, attempt=1, chunk=0, target="eln-build-side-1",
                builds=[BuildSpec("bash", "git+https://src/rpms/bash.git#abc")],
                task_poll=3600.0, task_timeout=24 * 3600.0,
            ),
            id="b1-slice1000-attempt1-chunk0",
            task_queue=queue,
        )
        # A foreign task "failing", then ours succeeding: only ours counts.
        await handle.signal(SIGNAL_TASK_STATE, TaskStateEvent(FOREIGN, "FAILED", "m-1"))
        await handle.signal(SIGNAL_TASK_STATE, TaskStateEvent(OURS, "CLOSED", "m-2"))
        result = await handle.result()
        status = await handle.query(QUERY_STATUS, result_type=dict[int, str])
    assert [(o.component, o.outcome, o.task_id) for o in result.outcomes] == [
        ("bash", AttemptOutcome.SUCCEEDED, OURS)
    ]
    assert status == {OURS: "CLOSED"}
