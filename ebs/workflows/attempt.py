"""BuildAttempt: one attempt at building one chunk of a slice.

Submits every package of the chunk at once and waits for all of their Koji
tasks: `task_state` signals from the bus bridge are the fast path, a poll of
the open tasks every `task_poll` the fallback for messages that never come.
Each attempt is a child workflow of RebuildBatch so that a mass rebuild's
signals and polls spread over many small histories.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from ebs.activities.koji import KojiActivities
    from ebs.activities.presets import KOJI_CALL
    from ebs.contracts.attempt import AttemptOutcome, AttemptRequest, AttemptResult, BuildOutcome
    from ebs.contracts.events import TasksSubmitted, TaskStateEvent
    from ebs.contracts.koji import (
        TERMINAL_TASK_STATES,
        UNSUCCESSFUL_TASK_STATES,
        CancelRequest,
        KojiTaskState,
        SubmitRequest,
        SubmitResult,
        TaskPollRequest,
    )
    from ebs.contracts.names import QUERY_STATUS, SIGNAL_TASK_STATE, SIGNAL_TASKS_SUBMITTED
    from ebs.contracts.search import PACKAGES_KEY, packages_value

# Not a Koji state: a task ebs cancelled after task_timeout.
TIMED_OUT = "TIMEOUT"

def attempt_workflow_id(batch_id: str, ordering: int, attempt: int, chunk: int) -> str:
    return f"{batch_id}-slice{ordering}-attempt{attempt}-chunk{chunk}"


def submit_activity_id(req: AttemptRequest) -> str:
    if len(req.builds) == 1:
        return f"build:{req.builds[0].component}:attempt{req.attempt}"
    return f"build:slice{req.ordering}:attempt{req.attempt}:chunk{req.chunk}"


def _submit_failed(component: str, reason: str, retryable: bool) -> BuildOutcome:
    return BuildOutcome(component, AttemptOutcome.SUBMIT_FAILED,
                        reason=f"build submission failed: {reason}", retryable=retryable)


def failure_text(err: BaseException) -> tuple[str, bool]:
    """The message and retryability of an activity failure."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message, not cause.non_retryable
    return str(cause or err), True


@workflow.defn(name="BuildAttempt")
class BuildAttempt:
    @workflow.init
    def __init__(self, req: AttemptRequest) -> None:
        self._req = req
        self._states: dict[int, str] = {}  # task id -> latest known state, ours only
        self._early: dict[int, str] = {}  # signals that came before submit returned
        self._submitted: set[int] | None = None  # our task ids, once known
        self._signalled: int = 0

    @workflow.signal(name=SIGNAL_TASK_STATE)
    def task_state(self, event: TaskStateEvent) -> None:
        # Anyone's build can name this workflow in its metadata (the bridge
        # routes without koji.username): only a task id we submitted counts.
        if self._submitted is None:
            # Before the submit activity returns: keep them until we know ours.
            if self._early.get(event.task_id) not in TERMINAL_TASK_STATES:
                self._early[event.task_id] = event.state
            return
        if event.task_id not in self._submitted:
            return
        if self._states.get(event.task_id) not in TERMINAL_TASK_STATES:
            self._states[event.task_id] = event.state
            self._signalled += 1

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> dict[int, str]:
        return dict(self._states)

    @workflow.run
    async def run(self, req: AttemptRequest) -> AttemptResult:
        workflow.upsert_search_attributes(
            [PACKAGES_KEY.value_set(packages_value([b.component for b in req.builds]))]
        )
        result = AttemptResult()
        submitted = await self._submit(req, result)
        if not submitted:
            return result
        tasks = {s.task_id: s.component for s in submitted.submitted}
        self._submitted = set(tasks)
        for task_id in tasks:
            self._states.setdefault(task_id, self._early.get(task_id, KojiTaskState.FREE))
        self._early.clear()
        await self._tell_batch(tasks)
        try:
            await self._wait_for_tasks(req, tasks)
        except (asyncio.CancelledError, ActivityError) as err:
            if is_cancelled_exception(err) and (open_tasks := self._open(tasks)):
                # The batch was cancelled: leave no Koji task of ours running.
                await self._cancel(req, open_tasks)
            raise
        reasons = await self._failure_reasons(req, tasks)
        for task_id, component in tasks.items():
            state = self._states[task_id]
            if state == KojiTaskState.CLOSED:
                result.outcomes.append(BuildOutcome(component, AttemptOutcome.SUCCEEDED, task_id))
            elif state == TIMED_OUT:
                result.outcomes.append(
                    BuildOutcome(
                        component,
                        AttemptOutcome.TIMED_OUT,
                        task_id,
                        f"task ran longer than {req.task_timeout:.0f} s and was cancelled",
                        retryable=False,
                    )
                )
            else:
                reason = reasons.get(task_id) or f"task {state.lower()}"
                result.outcomes.append(
                    BuildOutcome(component, AttemptOutcome.FAILED, task_id, reason)
                )
        return result

    async def _submit(self, req: AttemptRequest, result: AttemptResult) -> SubmitResult | None:
        workflow.set_current_details(f"Submitting {len(req.builds)} builds to `{req.target}`")
        info = workflow.info()
        try:
            submitted = await workflow.execute_activity_method(
                KojiActivities.submit_builds,
                SubmitRequest(
                    target=req.target,
                    builds=req.builds,
                    # A task of ours for this workflow created since it started is
                    # ours to reuse; the margin covers clock skew with the hub.
                    not_before=info.start_time.timestamp() - 600,
                    scratch=req.scratch,
                    draft=req.draft,
                    fail_fast=req.fail_fast,
                    wait_repo=req.wait_repo,
                    priority=req.priority,
                    workflow_id=info.workflow_id,
                    label=f"slice {req.ordering} attempt {req.attempt}",
                    # a reset run (of the batch or of this child) may have
                    # submitted these builds before
                    first_submission=req.batch_first_run
                    and info.run_id == info.first_execution_run_id,
                ),
                activity_id=submit_activity_id(req),
                **KOJI_CALL,
            )
        except ActivityError as err:
            reason, retryable = failure_text(err)
            if not retryable:
                result.permanent_error = reason
            result.outcomes += [_submit_failed(b.component, reason, retryable)
                                for b in req.builds]
            return None
        # Koji refused these for good (bad SCM URL...): the same request in
        # another attempt would fail the same way.
        result.outcomes += [_submit_failed(f.component, f.reason, retryable=False)
                            for f in submitted.failed]
        return submitted

    async def _tell_batch(self, tasks: dict[int, str]) -> None:
        parent = workflow.info().parent
        if parent is not None and tasks:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                SIGNAL_TASKS_SUBMITTED,
                TasksSubmitted({component: task_id for task_id, component in tasks.items()}),
            )

    def _open(self, tasks: dict[int, str]) -> list[int]:
        done = TERMINAL_TASK_STATES | {TIMED_OUT}
        return [tid for tid in tasks if self._states.get(tid) not in done]

    async def _wait_for_tasks(self, req: AttemptRequest, tasks: dict[int, str]) -> None:
        deadline = workflow.now() + timedelta(seconds=req.task_timeout)
        polls = 0
        while open_tasks := self._open(tasks):
            workflow.set_current_details(
                f"Waiting for {len(open_tasks)} of {len(tasks)} Koji tasks in `{req.target}`"
            )
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                await self._cancel(req, open_tasks)
                return
            try:
                await workflow.wait_condition(
                    lambda: not self._open(tasks), timeout=min(req.task_poll, remaining)
                )
                return
            except TimeoutError:
                pass
            polls += 1
            polled = await workflow.execute_activity_method(
                KojiActivities.poll_tasks,
                TaskPollRequest(self._open(tasks)),
                activity_id=f"poll:slice{req.ordering}:attempt{req.attempt}:chunk{req.chunk}:{polls}",
                **KOJI_CALL,
            )
            for status in polled.tasks:
                if self._states.get(status.task_id) not in TERMINAL_TASK_STATES:
                    self._states[status.task_id] = status.state

    async def _cancel(self, req: AttemptRequest, task_ids: list[int]) -> None:
        await workflow.execute_activity_method(
            KojiActivities.cancel_tasks,
            CancelRequest(task_ids),
            activity_id=f"cancel:slice{req.ordering}:attempt{req.attempt}:chunk{req.chunk}",
            **KOJI_CALL,
        )
        for task_id in task_ids:
            self._states[task_id] = TIMED_OUT

    async def _failure_reasons(self, req: AttemptRequest, tasks: dict[int, str]) -> dict[int, str]:
        """Koji's fault text for each failed task (signals carry only the state)."""
        failed = [tid for tid in tasks if self._states[tid] in UNSUCCESSFUL_TASK_STATES]
        if not failed:
            return {}
        polled = await workflow.execute_activity_method(
            KojiActivities.poll_tasks,
            TaskPollRequest(failed),
            activity_id=f"failures:slice{req.ordering}:attempt{req.attempt}:chunk{req.chunk}",
            **KOJI_CALL,
        )
        return {s.task_id: s.reason for s in polled.tasks if s.reason}
