"""How the `ebs` commands fail: one line on stderr and an exit status.

A user mistake (bad config path, invalid config, Temporal unreachable, a bad
package name) ends with one line on stderr and a non-zero exit; set EBS_DEBUG=1
to see tracebacks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_REJECTED = 3


class Failure(click.ClickException):
    """One line on stderr, then exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class UsageFailure(Failure):
    """A bad argument: one line on stderr, then exit status 2."""

    exit_code = EXIT_USAGE


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def _translate(err: Exception) -> Failure | None:
    """The Failure for an exception a user can cause, or None for a bug."""
    from ebs.api.control import RequestRejected, TemporalUnavailable
    from ebs.api.tokens import TokenFileError
    from ebs.contracts.components import InvalidComponents

    if isinstance(err, InvalidComponents):
        return UsageFailure(_one_line(err))
    if isinstance(err, TemporalUnavailable | RequestRejected | TokenFileError):
        return Failure(_one_line(err))
    if type(err).__name__ == "ConfigError":
        return Failure(f"config: {_one_line(err)}")
    if isinstance(err, RuntimeError) and str(err).startswith("Failed client connect"):
        return Failure(f"cannot connect to Temporal: {_one_line(err)}")
    if isinstance(err, OSError | ValueError):
        return Failure(_one_line(err))
    return None


def user_errors(*, catch_all: bool) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn user mistakes into one-line errors. With catch_all (operator commands),
    anything else is one line too unless EBS_DEBUG is set; services keep their
    tracebacks for unexpected errors, which belong in their logs."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt:
                raise SystemExit(130) from None
            except Exception as err:
                if os.environ.get("EBS_DEBUG"):
                    raise
                failure = _translate(err)
                if failure is None and catch_all:
                    failure = Failure(f"unexpected error: {type(err).__name__}: {_one_line(err)}")
                if failure is None:
                    raise
                raise failure from None

        return inner

    return wrap
