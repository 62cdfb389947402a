"""The simulated hub's XML-RPC API: Koji's method names, signatures and faults.

Only methods ebs (and koji.ClientSession itself) use are provided; each checks
its arguments like the hub (a bad call is a ParameterError fault, 1019) and
raises the same koji exception classes, which the server turns into faults
with Koji's codes. Unauthenticated callers act as the world's default user:
the simulator cannot do Kerberos, and `ebs dev` runs with auth "none".
"""

from __future__ import annotations

import datetime
import inspect
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import koji

from .faults import FaultAnswer, play
from .model import User
from .world import BS, RS, SCM_RE, ST, World

KOJI_VERSION = "1.36.1"


@dataclass
class CallRecord:
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    in_multicall: bool = False
    at: float = field(default_factory=time.time)
    fault: str | None = None


# A scripted HTTP-level failure (500, stall) for the server to render.
SimulatedHTTPError = FaultAnswer


def decode_params(params: tuple[Any, ...] | list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Koji's keyword-argument encoding: a trailing dict with __starstar."""
    args = list(params)
    kwargs: dict[str, Any] = {}
    if args and isinstance(args[-1], dict) and args[-1].get("__starstar"):
        kwargs = dict(args.pop())
        del kwargs["__starstar"]
    return args, kwargs


def package_of(method: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The component a call is about, for per-package scripted faults."""
    values = list(args) + list(kwargs.values())
    for value in values:
        if isinstance(value, str):
            m = SCM_RE.match(value)
            if m:
                return m.group("name")
    if method in ("tagBuild", "untagBuild", "getBuild", "promoteBuild", "getLatestBuilds",
                  "listTagged"):
        for value in values:
            if isinstance(value, str):
                try:
                    return str(koji.parse_NVR(value)["name"])
                except koji.GenericError:
                    continue
    if "package" in kwargs and isinstance(kwargs["package"], str):
        return str(kwargs["package"])
    return None


def _ts(value: Any) -> float | None:
    """A time filter: epoch seconds or an ISO-ish date string (like listTasks)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise koji.ParameterError(f"Invalid time specification: {value!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.UTC)
        return dt.timestamp()
    raise koji.ParameterError(f"Invalid time specification: {value!r}")


class Hub:
    def __init__(self, world: World, stall: Callable[[float], Any] = time.sleep) -> None:
        self.world = world
        self.stall = stall  # how a scripted stall waits (interruptible on shutdown)
        self.calls: list[CallRecord] = []
        self._exports: dict[str, Callable[..., Any]] = {}
        for name in dir(self):
            if name.startswith("_") or name in ("world", "calls", "dispatch", "call_one",
                                                "user", "methods", "stall"):
                continue
            fn = getattr(self, name)
            if callable(fn):
                self._exports[name] = fn
        self._exports["system.listMethods"] = self._list_methods
        self._exports["repo.request"] = self._repo_request
        self._exports["repo.checkRequest"] = self._repo_check_request

    @property
    def user(self) -> User:
        return self.world.default_user

    def methods(self) -> list[str]:
        return sorted(self._exports)

    def _list_methods(self) -> list[str]:
        return self.methods()

    # ------------------------------------------------------------ dispatch
    def dispatch(self, method: str, params: tuple[Any, ...] | list[Any]) -> Any:
        """Run one top-level call (multiCall included). Raises koji errors as faults,
        SimulatedHTTPError for scripted HTTP failures."""
        args, kwargs = decode_params(params)
        if method == "multiCall":
            record = self._record(method, args, kwargs, False)
            return self._scripted(record, None, lambda: self._multicall(*args, **kwargs))
        return self.call_one(method, args, kwargs, in_multicall=False)

    def call_one(self, method: str, args: list[Any], kwargs: dict[str, Any],
                 in_multicall: bool) -> Any:
        record = self._record(method, args, kwargs, in_multicall)

        def run() -> Any:
            fn = self._exports.get(method)
            if fn is None or method == "multiCall":
                raise koji.GenericError(f"Invalid method: {method}")
            try:
                bound = inspect.signature(fn).bind(*args, **kwargs)
            except TypeError as exc:
                raise koji.ParameterError(f"Parameter error for {method}: {exc}") from None
            with self.world.lock:
                return fn(*bound.args, **bound.kwargs)

        return self._scripted(record, package_of(method, args, kwargs), run)

    def _scripted(self, record: CallRecord, package: str | None, run: Callable[[], Any]) -> Any:
        """Run a call under the first scripted fault rule that matches it, if any."""
        with self.world.lock:
            rule = self.world.script.take_fault(record.method, package, self.world.rng_world)
            if rule is not None:
                self.world.changed()  # a scripted fault was used up
        try:
            return play(rule, run, self.stall,
                        lambda f: _fault(f.code, f.message or "simulated fault"))
        except koji.GenericError as exc:
            record.fault = f"{type(exc).__name__}: {exc}"
            raise

    def _record(self, method: str, args: list[Any], kwargs: dict[str, Any],
                in_multicall: bool) -> CallRecord:
        record = CallRecord(method, args, kwargs, in_multicall)
        with self.world.lock:
            self.calls.append(record)
        return record

    def _multicall(self, calls: list[dict[str, Any]]) -> list[Any]:
        results: list[Any] = []
        http_error: SimulatedHTTPError | None = None
        for call in calls:
            if not isinstance(call, dict) or "methodName" not in call:
                results.append(_fault_dict(koji.ParameterError(f"Invalid call: {call!r}")))
                continue
            name = call["methodName"]
            if name == "multiCall":
                results.append(_fault_dict(koji.GenericError("multicall cannot be nested")))
                continue
            args, kwargs = decode_params(call.get("params", []))
            try:
                results.append([self.call_one(name, args, kwargs, in_multicall=True)])
            except SimulatedHTTPError as exc:
                if not exc.rule.after:
                    raise
                http_error = exc
                results.append([None])
            except koji.GenericError as exc:
                results.append(_fault_dict(exc))
            except Exception as exc:  # a simulator bug: report it like the hub would
                results.append({"faultCode": 1, "faultString": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc()})
        if http_error is not None:
            raise http_error
        return results

    # ------------------------------------------------------------- session
    def hello(self, *args: Any) -> str:
        return "Hello World!"

    def echo(self, *args: Any) -> list[Any]:
        return list(args)

    def getAPIVersion(self) -> int:
        return koji.API_VERSION

    def getKojiVersion(self) -> str:
        return KOJI_VERSION

    def getLoggedInUser(self) -> dict[str, Any]:
        info = self.user.info()
        info["authtype"] = koji.AUTHTYPES["GSSAPI"]
        return info

    def getUser(self, userInfo: Any = None, strict: bool = False, krb_princs: bool = True,
                groups: bool = False) -> dict[str, Any] | None:
        user = self.user if userInfo is None else self.world.lookup_user(userInfo)
        if user is None:
            if strict:
                raise koji.GenericError(f"No such user: {userInfo!r}")
            return None
        return user.info()

    def getUserPerms(self, userID: Any = None, with_groups: bool = True) -> list[str]:
        user = self.user if userID is None else self.world.lookup_user(userID)
        if user is None:
            raise koji.GenericError(f"No such user: {userID!r}")
        return sorted(user.perms)

    def hasPerm(self, perm: str, strict: bool = False) -> bool:
        return perm in self.user.perms or "admin" in self.user.perms

    def getLastEvent(self, before: Any = None, strict: bool = True) -> dict[str, Any]:
        w = self.world
        event = w.last_event
        if before is not None:
            limit = _ts(before) or 0.0
            older = [e for e, ts in w.event_ts.items() if ts < limit]
            if not older:
                if strict:
                    raise koji.GenericError(f"No event found before {before!r}")
                return None  # type: ignore[return-value]
            event = max(older)
        return {"id": event, "ts": w.event_ts[event]}

    # --------------------------------------------------------- tags/targets
    def getTag(self, tagInfo: Any, strict: bool = False, event: Any = None,
               blocked: bool = False) -> dict[str, Any] | None:
        tag = self.world.get_tag(tagInfo, strict=strict, event=event)
        return self.world.tag_info(tag) if tag else None

    def getBuildTarget(self, info: Any, event: Any = None,
                       strict: bool = False) -> dict[str, Any] | None:
        target = self.world.get_target(info, strict=strict)
        return self.world.target_info(target) if target else None

    def getBuildTargets(self, info: Any = None, event: Any = None, buildTagID: Any = None,
                        destTagID: Any = None, queryOpts: Any = None) -> list[dict[str, Any]]:
        out = []
        for target in self.world.targets.values():
            if target.deleted or info is not None and info not in (target.id, target.name):
                continue
            info_ = self.world.target_info(target)
            if buildTagID is not None and buildTagID not in (info_["build_tag"],
                                                             info_["build_tag_name"]):
                continue
            if destTagID is not None and destTagID not in (info_["dest_tag"],
                                                           info_["dest_tag_name"]):
                continue
            out.append(info_)
        return out

    def listTags(self, build: Any = None, package: Any = None, perms: bool = True,
                 queryOpts: Any = None, pattern: Any = None) -> list[dict[str, Any]]:
        w = self.world
        tags = [t for t in w.tags.values() if t.deleted_event is None]
        if build is not None:
            b = w.require_build(build)
            tags = [t for t in tags if w.is_tagged(t, b)]
        return [w.tag_info(t) for t in tags]

    def createSideTag(self, basetag: Any, debuginfo: bool = False,
                      suffix: str | None = None) -> dict[str, Any]:
        if suffix:
            raise koji.GenericError(f"{suffix} suffix is not allowed for sidetag")
        base = self.world.get_tag(basetag, strict=True)
        tag = self.world.create_side_tag(self.user, base, debuginfo=debuginfo)
        # 1.35: task_id is always None; request is set only with trigger_new_repo
        return {"name": tag.name, "id": tag.id, "task_id": None, "request": None}

    def _own_side_tag(self, sidetag: Any) -> Any:
        tag = self.world.get_tag(sidetag, strict=True)
        if not tag.is_side_tag:
            raise koji.GenericError(f"Not a sidetag: {tag.name}")
        if tag.extra.get("sidetag_user_id") != self.user.id and "admin" not in self.user.perms:
            raise koji.ActionNotAllowed("This is not your sidetag")
        return tag

    def removeSideTag(self, sidetag: Any) -> None:
        self.world.remove_side_tag(self._own_side_tag(sidetag))

    def editSideTag(self, sidetag: Any, debuginfo: Any = None, rpm_macros: Any = None,
                    remove_rpm_macros: Any = None, extra: Any = None,
                    remove_extra: Any = None) -> None:
        tag = self._own_side_tag(sidetag)
        if (extra is not None or remove_extra is not None) and not (
                {"sidetag_admin", "admin"} & self.user.perms):
            raise koji.GenericError(
                "Extra can be modified only with sidetag_admin or admin permissions.")
        parent_extra = self.world.tag_extra(self.world.tags[tag.parent_id])
        if debuginfo is not None and not parent_extra.get("sidetag_debuginfo_allowed"):
            raise koji.GenericError("Debuginfo setting is not allowed in parent tag.")
        if (rpm_macros or remove_rpm_macros) and not parent_extra.get(
                "sidetag_rpm_macros_allowed"):
            raise koji.GenericError("RPM macros change is not allowed in parent tag.")
        if extra is not None and not isinstance(extra, dict):
            raise koji.ParameterError(f"Invalid type for value '{extra}': {type(extra)}")
        tag.extra.update(extra or {})
        if debuginfo is not None:
            tag.extra["with_debuginfo"] = bool(debuginfo)
        for macro, value in (rpm_macros or {}).items():
            tag.extra[f"rpm.macro.{macro}"] = value
        for key in list(remove_extra or []) + [f"rpm.macro.{m}" for m in remove_rpm_macros or []]:
            tag.extra.pop(key, None)
        self.world._new_event()

    def listSideTags(self, basetag: Any = None, user: Any = None,
                     queryOpts: Any = None) -> list[dict[str, Any]]:
        w = self.world
        user_id = None
        if user is not None:
            found = w.lookup_user(user)
            if found is None:
                raise koji.GenericError(f"No such user: {user!r}")
            user_id = found.id
        base_id = w.get_tag(basetag, strict=True).id if basetag is not None else None
        out = []
        for tag in sorted(w.tags.values(), key=lambda t: t.id):
            if tag.deleted_event is not None or not tag.is_side_tag:
                continue
            owner = tag.extra.get("sidetag_user_id")
            if user_id is not None and owner != user_id:
                continue
            if base_id is not None and tag.parent_id != base_id:
                continue
            out.append({"id": tag.id, "name": tag.name, "user_id": owner,
                        "user_name": w.users[owner].name if owner in w.users else None})
        return _query_opts(out, queryOpts)

    # --------------------------------------------------------------- builds
    def getBuild(self, buildInfo: Any, strict: bool = False) -> dict[str, Any] | None:
        b = self.world.get_build(buildInfo, strict=strict)
        return self.world.build_info(b) if b else None

    def listTagged(self, tag: Any, event: Any = None, inherit: bool = False, prefix: Any = None,
                   latest: Any = False, package: Any = None, owner: Any = None, type: Any = None,
                   strict: bool = True, extra: bool = False,
                   draft: Any = None) -> list[dict[str, Any]]:
        t = self.world.get_tag(tag, strict=strict, event=event)
        if t is None:
            return []
        return self.world.read_tagged(t, event=event, inherit=inherit, latest=latest,
                                      package=package, owner=owner, prefix=prefix, draft=draft,
                                      extra=extra)

    def getLatestBuilds(self, tag: Any, event: Any = None, package: Any = None, type: Any = None,
                        draft: Any = None) -> list[dict[str, Any]]:
        t = self.world.get_tag(tag, strict=True, event=event)
        return self.world.read_tagged(t, event=event, inherit=True, latest=True, package=package,
                                      draft=draft)

    def listBuilds(self, packageID: Any = None, userID: Any = None, taskID: Any = None,
                   prefix: Any = None, state: Any = None, volumeID: Any = None,
                   source: Any = None, createdBefore: Any = None, createdAfter: Any = None,
                   completeBefore: Any = None, completeAfter: Any = None, type: Any = None,
                   typeInfo: Any = None, queryOpts: Any = None, pattern: Any = None,
                   cgID: Any = None, draft: Any = None) -> list[dict[str, Any]]:
        w = self.world
        out = []
        before, after = _ts(createdBefore), _ts(createdAfter)
        user = w.lookup_user(userID) if userID is not None else None
        if isinstance(packageID, str):
            builds = w.builds_named(packageID)
        elif isinstance(taskID, int) and taskID != -1:
            builds = w.builds_of_task(taskID)
        else:
            builds = sorted(w.builds.values(), key=lambda b: b.id)
        for b in builds:
            if taskID is not None and (b.task_id != taskID if taskID != -1 else not b.task_id):
                continue
            if packageID is not None and packageID not in (b.pkg_id, b.name):
                continue
            if userID is not None and (user is None or b.owner_id != user.id):
                continue
            if prefix and not b.name.startswith(prefix):
                continue
            if state is not None and b.state != state:
                continue
            if source is not None and b.source != source:
                continue
            if draft is not None and b.draft != bool(draft):
                continue
            if before is not None and b.creation_ts >= before:
                continue
            if after is not None and b.creation_ts <= after:
                continue
            info = w.build_info(b)
            # The real hub's listBuilds rows: no cg_id/cg_name, the id only as build_id.
            for key in ("cg_id", "cg_name") + (
                    ("id",) if w.script.listbuilds_without_id else ()):
                info.pop(key)
            out.append(info)
        return _query_opts(out, queryOpts)

    def tagBuild(self, tag: Any, build: Any, force: bool = False, fromtag: Any = None) -> int:
        w = self.world
        b = w.require_build(build)
        t = w.get_tag(tag, strict=True)
        if b.state != BS["COMPLETE"]:
            raise koji.TagError(f"build {b.nvr} not complete: state {BS[b.state]}")
        if t.locked and not force:
            raise koji.ActionNotAllowed(f"tag {t.name} is locked")
        return w.submit_tag_task(self.user, t, b).id

    def untagBuild(self, tag: Any, build: Any, strict: bool = True, force: bool = False) -> None:
        w = self.world
        w._untag(w.get_tag(tag, strict=True), w.require_build(build), self.user,
                 strict=strict)

    def promoteBuild(self, build: Any, force: bool = False) -> dict[str, Any]:
        w = self.world
        b = w.require_build(build)
        err = f"Cannot promote build {b.nvr}. Reason: {{}}"
        if not b.draft:
            raise koji.GenericError(err.format("Not a draft build"))
        if b.state != BS["COMPLETE"]:
            raise koji.GenericError(err.format(f"state ({BS[b.state]}) is not COMPLETE"))
        if b.owner_id != self.user.id and not ({"admin", "draft-promoter"} & self.user.perms):
            raise koji.ActionNotAllowed(f"Policy violation: promotion of {b.nvr} is not allowed")
        target_release = koji.parse_target_release(b.release)
        target_nvr = f"{b.name}-{b.version}-{target_release}"
        existing = w.get_build(target_nvr)
        if existing is not None:
            raise koji.GenericError(err.format(
                f"Target build exists: {target_nvr}(#{existing.id})"))
        w.rename_build(b, target_release)
        b.draft = False
        b.promoter_id = self.user.id
        b.promotion_ts = time.time()
        w._new_event()
        return w.build_info(b)

    # ---------------------------------------------------------------- tasks
    def build(self, src: Any, target: Any, opts: Any = None, priority: Any = None,
              channel: Any = None) -> int:
        if not isinstance(src, str):
            raise koji.ParameterError(f"Invalid type for value '{src}': {type(src)}, "
                                      "expected type <class 'str'>")
        opts = dict(opts or {})
        # The hub takes any target and draft+scratch; the builder fails the task.
        task_priority = koji.PRIO_DEFAULT
        if priority:
            if priority < 0 and "admin" not in self.user.perms:
                raise koji.ActionNotAllowed("only admins may create high-priority tasks")
            task_priority = koji.PRIO_DEFAULT + priority
        return self.world.submit_build(self.user, src, str(target), opts, task_priority).id

    def getTaskInfo(self, task_id: Any, request: bool = False,
                    strict: bool = False) -> Any:
        if isinstance(task_id, list | tuple):
            return [self.getTaskInfo(i, request, strict) for i in task_id]
        t = self.world.get_task(task_id, strict=strict)
        return self.world.task_info(t, request=request) if t else None

    def getTaskChildren(self, task_id: Any, request: bool = False,
                        strict: bool = False) -> list[dict[str, Any]]:
        t = self.world.get_task(task_id, strict=strict)
        if t is None:
            return []
        return [self.world.task_info(c, request=request) for c in self.world.children(t)]

    def getTaskResult(self, taskId: Any, raise_fault: bool = True) -> Any:
        t = self.world.get_task(taskId, strict=True)
        assert t is not None
        try:
            return self.world.task_result(t)
        except koji.GenericError as exc:
            if raise_fault or t.fault is None:
                raise
            return {"faultCode": exc.faultCode, "faultString": str(exc)}

    def getTaskRequest(self, taskId: Any) -> list[Any]:
        t = self.world.get_task(taskId, strict=True)
        assert t is not None
        return list(t.request)

    def listTasks(self, opts: Any = None, queryOpts: Any = None) -> list[dict[str, Any]]:
        w = self.world
        opts = dict(opts or {})
        known = {"method", "state", "owner", "parent", "decode", "arch", "host_id", "channel_id",
                 "createdBefore", "createdAfter", "startedBefore", "startedAfter",
                 "completeBefore", "completeAfter", "id", "not_state"}
        unknown = set(opts) - known
        if unknown:
            raise koji.ParameterError(f"Invalid option(s) for listTasks: {sorted(unknown)}")
        owners = _as_list(opts.get("owner"))
        states = _as_list(opts.get("state"))
        not_states = _as_list(opts.get("not_state"))
        ids = _as_list(opts.get("id"))
        bounds = {k: _ts(opts.get(k)) for k in ("createdBefore", "createdAfter", "startedBefore",
                                                 "startedAfter", "completeBefore",
                                                 "completeAfter")}
        out = []
        for t in sorted(w.tasks.values(), key=lambda t: t.id):
            if "method" in opts and t.method != opts["method"]:
                continue
            if owners is not None and t.owner_id not in owners:
                continue
            if states is not None and t.state not in states:
                continue
            if not_states is not None and t.state in not_states:
                continue
            if ids is not None and t.id not in ids:
                continue
            if "parent" in opts:
                parents = _as_list(opts["parent"])
                if opts["parent"] is None and t.parent is not None or (
                        parents is not None and t.parent not in parents):
                    continue
            if not _within(t.create_ts, bounds["createdAfter"], bounds["createdBefore"]):
                continue
            if not _within(t.start_ts, bounds["startedAfter"], bounds["startedBefore"]):
                continue
            if not _within(t.completion_ts, bounds["completeAfter"], bounds["completeBefore"]):
                continue
            info = w.task_info(t, request=True)
            owner = w.users[t.owner_id]
            info.update({"owner_name": owner.name, "owner_type": koji.USERTYPES["NORMAL"]})
            if opts.get("decode"):
                info["result"] = (t.result if t.fault is None else
                                  {"faultCode": t.fault[0], "faultString": t.fault[1]})
            else:
                info["request"] = koji.xmlrpcplus.dumps(tuple(t.request), methodname=t.method)
                info["result"] = None
            out.append(info)
        return _query_opts(out, queryOpts)

    def cancelTask(self, task_id: Any, recurse: bool = True) -> None:
        t = self.world.get_task(task_id, strict=True)
        assert t is not None
        if t.owner_id != self.user.id and "admin" not in self.user.perms:
            raise koji.ActionNotAllowed("Cannot cancel task, not owner")
        self.world.cancel_task(t, recurse=recurse)

    # ---------------------------------------------------------------- repos
    def _repo_request(self, tag: Any, min_event: Any = None, at_event: Any = None,
                      opts: Any = None, priority: Any = None,
                      force: bool = False) -> dict[str, Any]:
        """repo.request (Koji 1.35)."""
        return self.world.request_repo(self.user, self.world.get_tag(tag, strict=True),
                                       min_event=min_event, at_event=at_event)

    def _repo_check_request(self, req_id: Any) -> dict[str, Any]:
        """repo.checkRequest (Koji 1.35)."""
        return self.world.check_repo_request(req_id)

    def getRepo(self, tag: Any, state: Any = None, event: Any = None, dist: bool = False,
                min_event: Any = None) -> dict[str, Any] | None:
        w = self.world
        t = w.get_tag(tag, strict=True)
        want = RS["READY"] if state is None else state
        repos = [r for r in w.repos.values()
                 if r.tag_id == t.id and (r.state == want or
                                          state is None and r.state == RS["EXPIRED"] and
                                          event is not None)]
        if event is not None:
            repos = [r for r in repos if r.create_event <= event]
        if min_event is not None:
            repos = [r for r in repos if r.create_event >= min_event]
        if not repos:
            return None
        return w.repo_info(max(repos, key=lambda r: r.create_event))

    def getActiveRepos(self) -> list[dict[str, Any]]:
        return [self.world.repo_info(r) for r in self.world.repos.values()
                if r.state in (RS["INIT"], RS["READY"])]


def _fault(code: int, message: str) -> koji.GenericError:
    from xmlrpc.client import Fault

    err = koji.convertFault(Fault(code, message))
    if isinstance(err, koji.GenericError):
        return err
    generic = koji.GenericError(message)
    generic.faultCode = code  # type: ignore[misc]
    return generic


def _fault_dict(exc: koji.GenericError) -> dict[str, Any]:
    return {"faultCode": getattr(exc, "faultCode", 1000), "faultString": str(exc),
            "traceback": "".join(traceback.format_exception(exc))}


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, list | tuple) else [value]


def _within(ts: float | None, after: float | None, before: float | None) -> bool:
    if after is None and before is None:
        return True
    if ts is None:
        return False
    return (after is None or ts > after) and (before is None or ts < before)


_ORDER_RE = re.compile(r"^-?\w+$")


def _query_opts(rows: list[dict[str, Any]], queryOpts: Any) -> Any:
    opts = dict(queryOpts or {})
    order = opts.get("order")
    if order:
        if not _ORDER_RE.match(order):
            raise koji.ParameterError(f"Invalid order: {order!r}")
        key = order.lstrip("-")
        rows = sorted(rows, key=lambda r: (r.get(key) is None, r.get(key)),
                      reverse=order.startswith("-"))
    if opts.get("countOnly"):
        return len(rows)
    offset = int(opts.get("offset") or 0)
    limit = opts.get("limit")
    rows = rows[offset:]
    if limit is not None:
        rows = rows[: int(limit)]
    return rows


__all__ = ["Hub", "CallRecord", "SimulatedHTTPError", "decode_params", "ST"]
