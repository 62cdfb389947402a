"""Turning adapter errors into Temporal's retry decisions.

Permanent faults (authentication, a target that does not exist, a bad SCM
URL, a request Bodhi rejects) become non-retryable ApplicationErrors with a
clear message; anything else propagates and Temporal retries it with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from ebs.bodhiclient import BodhiPermanentError
from ebs.kojiclient import KojiPermanentError

P = ParamSpec("P")
R = TypeVar("R")

PERMANENT = (KojiPermanentError, BodhiPermanentError)


def permanent_faults_fail_fast(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PERMANENT as err:
            raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err

    return wrapper
