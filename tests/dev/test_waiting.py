"""The shared waiting helpers (ebs.devstack.waiting): their results and the
messages a failed wait gives."""

from __future__ import annotations

import itertools

import pytest

from ebs.devstack.waiting import eventually, until, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", 5, "three polls", interval=0) \
        == "done"


def test_a_callable_what_shows_the_last_status_seen() -> None:
    seen: list[int] = []

    def ready() -> bool:
        seen.append(len(seen))
        return False

    with pytest.raises(TimeoutError) as err:
        wait_until(ready, 0.05, lambda: f"the task (last state {seen[-1]})", interval=0.01)
    assert str(err.value) == f"timed out after 0 s waiting for the task (last state {seen[-1]})"
    assert seen[-1] > 0


def test_a_dead_process_ends_the_wait_at_once() -> None:
    with pytest.raises(RuntimeError, match="^the server: the process exited$"):
        wait_until(lambda: False, 60, "the server", alive=lambda: False)


def test_an_alive_check_may_raise_its_own_error() -> None:
    def running() -> bool:
        raise ValueError("server exited with 3: bad config")

    with pytest.raises(ValueError, match="exited with 3"):
        wait_until(lambda: False, 60, "the server", alive=running)


async def test_until_and_eventually_take_a_callable_what() -> None:
    last = {"n": 0}

    def pred() -> bool:
        last["n"] += 1
        return False

    with pytest.raises(TimeoutError, match=r"for 2 polls \(polled \d+\)$"):
        await until(pred, 0.05, lambda: f"2 polls (polled {last['n']})", interval=0.01)

    async def check() -> int:
        return 7

    assert await eventually(check, 1, lambda: "never shown") == 7
