"""Waiting for a condition with a deadline: one helper for blocking code and
two for asyncio, shared by `ebs dev`, the tests and the benchmarks.

Each returns the first truthy value of the condition (a condition may return
None for "not yet") and raises TimeoutError naming `what` when the deadline passes.
`what` may be a callable, called only for the message: it can show the last
status seen (``lambda: f"tasks to finish (last {states})"``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
What = str | Callable[[], str]
CHECK_GRACE = 5.0  # s a single check may run past the deadline


def describe(what: What) -> str:
    """The text of a `what` (see the module's docstring)."""
    return what() if callable(what) else what


def wait_until(pred: Callable[[], T | None], timeout: float, what: What = "condition", *,
               alive: Callable[[], bool] | None = None, interval: float = 0.05) -> T:
    """Poll `pred` until it returns something truthy (returned). `alive`: the
    process that should make it true; its death ends the wait at once (an
    `alive` that raises its own error, e.g. with the exit code, ends it too)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if alive is not None and not alive():
            raise RuntimeError(f"{describe(what)}: the process exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {describe(what)}")
        time.sleep(interval)


def wait_for(pred: Callable[[], Any], timeout: float, what: str,
             alive: Callable[[], bool] | None = None) -> None:
    """`wait_until` for a readiness check of `ebs dev` (polled every 0.1 s)."""
    wait_until(pred, timeout, what, alive=alive, interval=0.1)


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: What,
                     interval: float = 0.05) -> T:
    """Await `check` until it returns something truthy (returned). A check
    that itself never returns (a query stuck on a busy worker, a helper that
    loops) ends the wait at the deadline too, with a few seconds' grace."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        try:
            value = await asyncio.wait_for(check(), timeout=max(left, 0.0) + CHECK_GRACE)
        except TimeoutError:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {describe(what)} "
                               "(a check hung)") from None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {describe(what)}")
        await asyncio.sleep(interval)


async def until(pred: Callable[[], T | None], within: float, what: What,
                interval: float = 0.02) -> T:
    """`eventually` for a plain (non-async) condition, without blocking the loop."""

    async def check() -> T | None:
        return pred()

    return await eventually(check, within, what, interval)
