"""Timeouts and retry policies of ebs's activity calls, declared once.

Workflows pass a preset as keyword arguments::

    await workflow.execute_activity_method(KojiActivities.poll_tasks, req,
                                           activity_id=..., **KOJI_CALL)

Everything derives from HEARTBEAT_EVERY, how often a running activity tells
Temporal it is alive (ebs.activities.errors): a worker that dies mid-call is
noticed after HEARTBEAT_TIMEOUT, not after the much longer start-to-close timeout.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy

HEARTBEAT_EVERY = timedelta(seconds=5)
# Six missed heartbeats: a slow heartbeat is not a dead worker.
HEARTBEAT_TIMEOUT = 6 * HEARTBEAT_EVERY


class ActivityPreset(TypedDict, total=False):
    """The keyword arguments of workflow.execute_activity(_method) a preset sets."""

    start_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    schedule_to_start_timeout: timedelta
    retry_policy: RetryPolicy


# Koji and Bodhi calls: transient faults are retried with backoff; permanent
# ones (ApplicationError non_retryable, raised by the activities) are not.
KOJI_RETRY = RetryPolicy(
    initial_interval=HEARTBEAT_EVERY,
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=10,
)
KOJI_CALL = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=HEARTBEAT_TIMEOUT,
    retry_policy=KOJI_RETRY,
)
BODHI_CALL = KOJI_CALL

# Reading the worker's current config (batch/collector settings, sweep grace,
# schedules): local and quick, retried until it works; a broken config file
# keeps the previous config, so this only waits for a worker.
SETTINGS_READ = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=2 * HEARTBEAT_EVERY / 5,  # 2 s
        maximum_interval=timedelta(minutes=2),
    ),
)

# Resolving components for a manual enqueue: Koji lookups the caller waits for.
RESOLVE_CALL = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=HEARTBEAT_TIMEOUT,
    retry_policy=RetryPolicy(initial_interval=HEARTBEAT_EVERY / 5, maximum_attempts=5),
)

# Mail: the activity raises on a transient SMTP failure (retried here) and a
# non-retryable ApplicationError on authentication/configuration errors. A
# retry never sends twice (ebs.activities.mail); a failed mail never fails a batch.
MAIL = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=6 * HEARTBEAT_EVERY,  # 30 s: give a busy relay time
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        maximum_attempts=5,
    ),
)

# The side-tag sweep's Koji/visibility work: long, heartbeating, a few tries.
SWEEP_CALL = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=12 * HEARTBEAT_EVERY,  # 1 min
    retry_policy=RetryPolicy(
        initial_interval=2 * HEARTBEAT_EVERY,
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=4,
    ),
)

# refresh_config on one worker's own queue: a worker listed by Temporal that
# does not pick it up within schedule_to_start is gone.
WORKER_REFRESH = ActivityPreset(
    schedule_to_start_timeout=6 * HEARTBEAT_EVERY,  # 30 s
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(initial_interval=HEARTBEAT_EVERY, maximum_attempts=2),
)


# Publishing ebs's messages: the broker may be down for hours, so retry for
# ever, at most every 2 minutes; a message its schema rejects (a bug) is not
# retried. The batch never waits on this for its algorithm (ebs.workflows.announcer).
PUBLISH = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=HEARTBEAT_TIMEOUT,
    retry_policy=RetryPolicy(
        initial_interval=HEARTBEAT_EVERY / 5,  # 1 s
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=0,
        non_retryable_error_types=["InvalidMessage"],
    ),
)

# The collector's hand-over to its queue holders and its takes from them
# (ebs.activities.queue): retried until they work, since the events handed
# over are nowhere else; a retried take takes the same components again.
HOLD_QUEUE = ActivityPreset(
    start_to_close_timeout=timedelta(minutes=5),
    heartbeat_timeout=timedelta(minutes=1),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
    ),
)
