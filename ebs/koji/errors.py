"""Koji failures: the one translator from Koji faults and HTTP errors to ebs's two kinds.

Retrying is Temporal's job, so the adapter never retries; it sorts failures:

* ``KojiPermanentError``: retrying cannot help. Answers of the wrong shape
  (KojiAnswerError: a bug or a hub version mismatch), authentication failures
  (AuthError, AuthLockError, GSSAPIAuthError: a bad keytab/principal is the
  usual cause), permission/policy denials (ActionNotAllowed), calls Koji
  rejects as malformed (ParameterError, FunctionDeprecated, "Invalid method"),
  unknown build targets, tags, builds, tasks or users, SCM URLs Koji refuses,
  TagError/BuildError (build not complete, already tagged, NVR exists), a
  missing client profile, and HTTP 400/401/403/404/405 from the hub.
* anything else propagates as itself and is transient: connection errors,
  timeouts, HTTP 5xx/408/429, LockError, ServerOffline, AuthExpired,
  Sequence/RetryError and faults whose text names no permanent cause.

`koji_faults()` applies this to a single call and to a multicall alike;
`multicall_entry()` turns one faulted multicall entry into its koji exception.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import koji
import requests

PERMANENT_FAULT_CODES = frozenset({
    koji.AuthError.faultCode, koji.ActionNotAllowed.faultCode, koji.AuthLockError.faultCode,
    koji.FunctionDeprecated.faultCode, koji.ParameterError.faultCode,
    koji.ConfigurationError.faultCode, koji.GSSAPIAuthError.faultCode,
    koji.NameValidationError.faultCode, koji.TagError.faultCode, koji.BuildError.faultCode,
})
TRANSIENT_FAULT_CODES = frozenset({
    koji.LockError.faultCode, koji.AuthExpired.faultCode, koji.SequenceError.faultCode,
    koji.RetryError.faultCode, koji.ServerOffline.faultCode,
})
# Fault texts (any code) that name a cause a retry cannot fix.
PERMANENT_FAULT_TEXT = re.compile(
    r"no such build|no such tag|no such taginfo|no such task|no such user|"
    r"not in the list of allowed scms|invalid scm url|not logged-in|permission|not allowed|"
    r"policy violation|invalid method|parameter error|not your sidetag|not a sidetag|"
    r"cannot promote build|already exists|already tagged|not complete", re.IGNORECASE)
# Faults about the whole session rather than one item of a multicall.
GLOBAL_FAULT_TEXT = re.compile(r"not logged-in|no such build target|permission", re.IGNORECASE)
PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405})


class KojiPermanentError(Exception):
    """A Koji failure that retrying cannot fix (see the module docstring)."""

    def __init__(self, message: str, fault_code: int | None = None) -> None:
        super().__init__(message)
        self.fault_code = fault_code


class KojiAnswerError(KojiPermanentError):
    """Koji answered with a value ebs cannot read (a list where a dict belongs,
    a missing key). Permanent: that is a bug or a hub version ebs does not
    speak, not a transient fault, so it fails fast (issue 17 #5) with the
    method, the calls and the shape of their answers in the message."""


# What reading an answer of the wrong shape raises.
_SHAPE_ERRORS = (TypeError, KeyError, AttributeError, ValueError, IndexError)
C = TypeVar("C", bound=type)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _describe_calls(recent: Iterable[tuple[str, tuple[Any, ...] | str, Any]]) -> str:
    """The last calls and their answers, for a KojiAnswerError."""
    described = []
    for method, args, answer in recent:
        shown = args if isinstance(args, str) else _short(args, 60)[1:-1].rstrip(",")
        described.append(f"{method}({shown}) answered {_short(answer)}")
    return "; ".join(described) or "no call"


def explain_unexpected_answers(cls: C) -> C:
    """Wrap every public method of `cls`: a shape error while reading Koji's
    answers becomes a KojiAnswerError naming the method, the Koji calls it made
    last and what they answered, instead of a bare TypeError."""

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except _SHAPE_ERRORS as exc:
                calls = _describe_calls(getattr(self._local, "recent", ()))
                raise KojiAnswerError(
                    f"{name}: unexpected answer from Koji ({calls}): "
                    f"{type(exc).__name__}: {exc}") from exc
        return wrapper

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_") and name != "close":
            setattr(cls, name, wrap(name, value))
    return cls


def is_permanent_fault(exc: BaseException) -> bool:
    code = getattr(exc, "faultCode", None)
    if code in TRANSIENT_FAULT_CODES:
        return False
    if code in PERMANENT_FAULT_CODES:
        return True
    return bool(PERMANENT_FAULT_TEXT.search(str(exc)))


def is_global_fault(exc: BaseException) -> bool:
    code = getattr(exc, "faultCode", None)
    return code in (koji.AuthError.faultCode, koji.AuthLockError.faultCode,
                    koji.GSSAPIAuthError.faultCode) or bool(GLOBAL_FAULT_TEXT.search(str(exc)))


def permanent_from(exc: BaseException) -> KojiPermanentError:
    return KojiPermanentError(f"{type(exc).__name__}: {exc}", getattr(exc, "faultCode", None))




@contextmanager
def koji_faults(method: str) -> Iterator[None]:
    """Raise KojiPermanentError for a permanent fault or HTTP status of `method`
    (a single call or "multiCall"); let transient ones propagate as themselves."""
    try:
        yield
    except koji.GenericError as exc:
        if is_permanent_fault(exc):
            raise permanent_from(exc) from exc
        raise
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status in PERMANENT_HTTP:
            raise KojiPermanentError(f"Koji hub answered HTTP {status} to {method}") from exc
        raise


def multicall_entry(entry: Any) -> Any:
    """One multicall answer entry: its value, or the koji exception of its fault."""
    if isinstance(entry, dict) and "faultCode" in entry:
        err = koji.convertFault(koji.Fault(entry["faultCode"], entry["faultString"]))
        return err if isinstance(err, koji.GenericError) \
            else koji.GenericError(entry["faultString"])
    return entry[0]
