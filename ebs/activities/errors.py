"""What every Koji/Bodhi activity does around its adapter call.

- Permanent faults (authentication, a target that does not exist, a bad SCM
  URL, a request Bodhi rejects) become non-retryable ApplicationErrors with a
  clear message; anything else propagates and Temporal retries it with backoff.
- A heartbeat goes out every few seconds while the call runs, so a worker that
  dies mid-call is noticed after the workflow's heartbeat timeout rather than
  the much longer start-to-close timeout.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ebs.activities.presets import HEARTBEAT_EVERY
from ebs.bodhi.errors import BodhiPermanentError
from ebs.koji.errors import KojiPermanentError

P = ParamSpec("P")
R = TypeVar("R")

PERMANENT = (KojiPermanentError, BodhiPermanentError)



def _heartbeat_until(done: threading.Event) -> None:
    while not done.wait(HEARTBEAT_EVERY.total_seconds()):
        activity.heartbeat()


def permanent_faults_fail_fast(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        done = threading.Event()
        beat = None
        if activity.in_activity():
            ctx = contextvars.copy_context()  # the activity context, for heartbeat()
            beat = threading.Thread(
                target=ctx.run, args=(_heartbeat_until, done), daemon=True,
                name="ebs-activity-heartbeat",
            )
            beat.start()
        try:
            return fn(*args, **kwargs)
        except PERMANENT as err:
            raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
        finally:
            done.set()
            if beat is not None:
                beat.join()

    return wrapper
