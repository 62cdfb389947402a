"""The one class through which ebs talks to Koji.

`KojiAdapter` wraps an unmodified ``koji.ClientSession`` (one per thread, as
sessions are not thread-safe) and returns the dataclasses of
ebs.contracts.koji, so an activity is a one-line call. Calls about many items
go out as multicalls of ``multicall_chunk`` calls; ``on_progress`` runs after
each chunk so a long activity can heartbeat. Failures are sorted by
ebs.koji.errors (permanent: KojiPermanentError; anything else is transient).

Per-item faults inside a multicall are reported in the result where the result
type has room for them (SubmitFailure, TagFailure, Promotion.reason,
KojiBuild.reason); a transient per-item fault raises after the whole batch
was sent, and the idempotent operations find their earlier work on the retry.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import koji

from ebs.config.model import KojiConfig
from ebs.contracts.koji import (
    TERMINAL_TASK_STATES,
    UNSUCCESSFUL_TASK_STATES,
    BuildLookupRequest,
    BuildLookupResult,
    BuildTarget,
    CancelRequest,
    KojiBuild,
    KojiTaskState,
    LatestBuildsRequest,
    LatestBuildsResult,
    ListTaggedRequest,
    ListTaggedResult,
    PromoteRequest,
    PromoteResult,
    Promotion,
    RemoveSideTagRequest,
    RepoState,
    RepoStateRequest,
    SideTag,
    SideTagRequest,
    StableCheckRequest,
    StableCheckResult,
    SubmitFailure,
    SubmitRequest,
    SubmitResult,
    SubmittedTask,
    TagBuildsRequest,
    TagBuildsResult,
    TagFailure,
    TaggedBuild,
    TaskBuild,
    TaskBuildsResult,
    TaskPollRequest,
    TaskPollResult,
    TaskStatus,
)
from ebs.koji.errors import (
    KojiPermanentError,
    explain_unexpected_answers,
    is_global_fault,
    is_permanent_fault,
    koji_faults,
    multicall_entry,
    permanent_from,
)
from ebs.koji.session import new_session, resolve_endpoints

log = logging.getLogger(__name__)

Progress = Callable[[], None] | None

# The key under which a side tag remembers which request made it.
SIDE_TAG_KEY = "ebs_request_key"
# How many recent calls a KojiAnswerError describes.
_RECENT_CALLS = 3
# build opts key carrying the workflow id (the bridge routes task events by it).
WORKFLOW_ID_KEY = "ebs_workflow_id"

@explain_unexpected_answers
class KojiAdapter:
    def __init__(self, cfg: KojiConfig, *, timeout: float = 300.0, tag_wait: float = 120.0,
                 session_factory: Callable[[], koji.ClientSession] | None = None) -> None:
        """timeout: per HTTP request; tag_wait: how long tag_builds waits for its
        tagBuild tasks before reporting the rest as requested."""
        self.cfg = cfg
        self.timeout = timeout
        self.tag_wait = tag_wait
        self._session_factory = session_factory
        self._local = threading.local()
        self._sessions: list[koji.ClientSession] = []
        self._sessions_lock = threading.Lock()
        self._username: str | None = cfg.username
        self._user_id: int | None = None
        self.server, self.weburl, self._profile_opts = resolve_endpoints(cfg)

    # ------------------------------------------------------------ sessions
    def _session(self) -> koji.ClientSession:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _new_session(self) -> koji.ClientSession:
        if self._session_factory is not None:
            return self._session_factory()
        return new_session(self.cfg, self.server, self._profile_opts, self.timeout)

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            try:
                if session.logged_in:
                    session.logout()
            except Exception:  # closing: nothing useful to do about it
                log.debug("koji logout failed", exc_info=True)
        self._local = threading.local()

    def _remember(self, method: str, args: tuple[Any, ...] | str, answer: Any) -> None:
        """Keep the last few calls of this thread, for KojiAnswerError (formatted
        only then: a multicall's answer can be large)."""
        recent = getattr(self._local, "recent", None)
        if recent is None:
            recent = self._local.recent = deque(maxlen=_RECENT_CALLS)
        recent.append((method, args, answer))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with koji_faults(method):
            answer = getattr(self._session(), method)(*args, **kwargs)
        self._remember(method, args, answer)
        return answer

    def _multicall(self, calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
                   on_progress: Progress = None) -> list[Any]:
        """Results in call order; a faulted call's entry is the koji exception."""
        out: list[Any] = []
        chunk = self.cfg.multicall_chunk
        for start in range(0, len(calls), chunk):
            batch = calls[start:start + chunk]
            with koji_faults("multiCall"):
                mc = self._session().multicall(strict=False)
                for method, args, kwargs in batch:
                    getattr(mc, method)(*args, **kwargs)
                results = mc.call_all()
            self._remember("multiCall", f"{len(batch)} × {batch[0][0]}", results)
            out.extend(multicall_entry(entry) for entry in results)
            if on_progress is not None:
                on_progress()
        return out

    @staticmethod
    def _raise_if_transient(results: Sequence[Any]) -> None:
        for r in results:
            if isinstance(r, koji.GenericError) and not is_permanent_fault(r):
                raise r

    @staticmethod
    def _raise_if_global(results: Sequence[Any]) -> None:
        for r in results:
            if isinstance(r, koji.GenericError) and is_permanent_fault(r) and is_global_fault(r):
                raise permanent_from(r) from r

    # ------------------------------------------------------------- identity
    @property
    def username(self) -> str:
        if self._username is None:
            info = self._call("getLoggedInUser")
            if not info:
                raise KojiPermanentError(
                    "cannot tell which Koji user ebs acts as: not logged in and no "
                    "koji.username configured")
            self._username = str(info["name"])
        return self._username

    @property
    def user_id(self) -> int:
        if self._user_id is None:
            info = self._call("getUser", self.username)
            if not info:
                raise KojiPermanentError(f"no such Koji user: {self.username}")
            self._user_id = int(info["id"])
        return self._user_id

    def task_url(self, task_id: int) -> str:
        return f"{self.weburl.rstrip('/')}/taskinfo?taskID={task_id}"

    # --------------------------------------------------------------- lookups
    def get_build_target(self, name: str) -> BuildTarget:
        info = self._call("getBuildTarget", name)
        if not info:
            raise KojiPermanentError(f"No such build target: {name}")
        return BuildTarget(info["name"], info["build_tag_name"], info["dest_tag_name"])

    @staticmethod
    def _koji_build(info: dict[str, Any], nvr: str | None = None) -> KojiBuild:
        state = info.get("state")
        reason = "" if state == koji.BUILD_STATES["COMPLETE"] else \
            f"build is {koji.BUILD_STATES.get(state) or state}"
        return KojiBuild(nvr=nvr or info["nvr"], found=True, build_id=int(info["id"]),
                         component=info.get("name") or info.get("package_name") or "",
                         source=info.get("source") or "", task_id=int(info.get("task_id") or 0),
                         draft=bool(info.get("draft")),
                         creation_ts=float(info.get("creation_ts") or 0.0), reason=reason)

    def get_builds(self, req: BuildLookupRequest, on_progress: Progress = None
                   ) -> BuildLookupResult:
        results = self._multicall([("getBuild", (nvr,), {}) for nvr in req.nvrs], on_progress)
        self._raise_if_transient(results)
        builds = []
        for nvr, r in zip(req.nvrs, results, strict=True):
            if isinstance(r, koji.GenericError):
                builds.append(KojiBuild(nvr=nvr, found=False, reason=str(r)))
            elif not r:
                builds.append(KojiBuild(nvr=nvr, found=False, reason="no such build"))
            else:
                builds.append(self._koji_build(r, nvr))
        return BuildLookupResult(builds)

    def latest_builds(self, req: LatestBuildsRequest, on_progress: Progress = None
                      ) -> LatestBuildsResult:
        results = self._multicall(
            [("getLatestBuilds", (req.tag,), {"package": c}) for c in req.components],
            on_progress)
        self._raise_if_global(results)
        self._raise_if_transient(results)
        builds = []
        for component, r in zip(req.components, results, strict=True):
            if isinstance(r, koji.GenericError):
                builds.append(KojiBuild(nvr="", found=False, component=component, reason=str(r)))
            elif not r:
                builds.append(KojiBuild(nvr="", found=False, component=component,
                                        reason=f"no build of {component} in {req.tag}"))
            else:
                builds.append(self._koji_build(r[0]))
        return LatestBuildsResult(builds)

    def list_tagged(self, req: ListTaggedRequest) -> ListTaggedResult:
        """One listTagged call for a whole tag (the status page and the cleanup,
        as the original's status.py and cleanup.py do)."""
        rows = self._call("listTagged", req.tag, latest=req.latest, inherit=req.inherit)
        return ListTaggedResult(
            req.tag,
            [TaggedBuild(r.get("name") or r.get("package_name") or "", r["nvr"],
                         int(r.get("build_id") or r.get("id") or 0)) for r in rows or []],
        )

    # -------------------------------------------------------------- side tags
    def create_side_tag(self, req: SideTagRequest) -> SideTag:
        """Create a side tag of base_tag, or find the one an earlier try made.

        The request key is stored in the tag's extra by a second call
        (editSideTag: Koji's createSideTag takes no extra). A try that died
        between the two calls, or whose createSideTag answer was lost, left an
        *orphan*: ours, of this base tag, unmarked and still empty. A retry
        adopts it rather than making another, so nothing leaks. A tag with
        builds in it is never adopted (without the sidetag_admin permission
        every tag is unmarked; the running batch's tags are not empty).
        """
        ours = self._call("listSideTags", basetag=req.base_tag, user=self.username)
        infos = [i for i in self._multicall([("getTag", (t["id"],), {}) for t in ours])
                 if isinstance(i, dict)] if ours else []
        for info in infos:
            if (info.get("extra") or {}).get(SIDE_TAG_KEY) == req.key:
                return SideTag(info["name"], int(info["id"]), reused=True)
        orphans = [i for i in infos if SIDE_TAG_KEY not in (i.get("extra") or {})]
        if orphans:
            contents = self._multicall([("listTagged", (i["id"],), {}) for i in orphans])
            for info, tagged in zip(orphans, contents, strict=True):
                if tagged == []:
                    log.info("side tag %s: adopting the empty, unmarked side tag an "
                             "interrupted try made for %s", info["name"], req.key)
                    self._mark_side_tag(info["name"], req.key)
                    return SideTag(info["name"], int(info["id"]), reused=True)
        created = self._call("createSideTag", req.base_tag)
        if not isinstance(created, dict) or "name" not in created or "id" not in created:
            raise KojiPermanentError(
                f"createSideTag({req.base_tag!r}) answered {created!r}, not a tag "
                "({'name': ..., 'id': ...})")
        self._mark_side_tag(created["name"], req.key)
        return SideTag(created["name"], int(created["id"]))

    def _mark_side_tag(self, name: str, key: str) -> None:
        """Record the request key; transient errors propagate (the retry adopts)."""
        try:
            self._call("editSideTag", name, extra={SIDE_TAG_KEY: key})
        except (KojiPermanentError, koji.GenericError) as exc:
            log.warning("side tag %s: cannot record request key %s (%s); a retry of this "
                        "request finds it only while it is empty", name, key, exc)

    def last_event_before(self, ts: float) -> int | None:
        """Koji's last event before epoch `ts` (None if there was none)."""
        event = self._call("getLastEvent", before=ts, strict=False)
        return int(event["id"]) if event else None

    def get_tags(self, tag_ids: Sequence[int], event: int | None = None,
                 on_progress: Progress = None) -> list[Any]:
        """getTag for each id (at `event` if given), multicall; a fault or
        None stands in the list where a tag cannot be read or did not exist."""
        kwargs: dict[str, Any] = {} if event is None else {"event": event}
        return self._multicall([("getTag", (tid,), kwargs) for tid in tag_ids], on_progress)

    def list_side_tags(self) -> list[SideTag]:
        return [SideTag(t["name"], int(t["id"]))
                for t in self._call("listSideTags", user=self.username)]

    def side_tag_key(self, name: str) -> str | None:
        """The request key recorded on a side tag (None if none or gone)."""
        info = self._call("getTag", name)
        return None if not info else (info.get("extra") or {}).get(SIDE_TAG_KEY)

    def remove_side_tag(self, req: RemoveSideTagRequest) -> None:
        try:
            self._call("removeSideTag", req.name)
        except KojiPermanentError as exc:
            if re.search(r"no such tag", str(exc), re.IGNORECASE):
                return  # already gone: what we wanted
            raise

    # ---------------------------------------------------------------- tagging
    def untag_builds(self, tag: str, nvrs: list[str], on_progress: Progress = None
                     ) -> tuple[list[str], list[tuple[str, str]]]:
        """untagBuild for each NVR in one multicall: (untagged, [(nvr, why)])."""
        results = self._multicall([("untagBuild", (tag, nvr), {}) for nvr in nvrs], on_progress)
        self._raise_if_global(results)
        self._raise_if_transient(results)
        done: list[str] = []
        failed: list[tuple[str, str]] = []
        for nvr, r in zip(nvrs, results, strict=True):
            if isinstance(r, koji.GenericError):
                failed.append((nvr, str(r)))
            else:
                done.append(nvr)
        return done, failed

    def tag_builds(self, req: TagBuildsRequest, on_progress: Progress = None) -> TagBuildsResult:
        """Tag builds (tagBuild tasks) and wait up to tag_wait for those tasks.

        Builds already in the tag count as tagged; tasks still running after
        tag_wait are reported as tagged too (RepoState.missing tells the truth).
        """
        present = {b["nvr"] for b in self._call("listTagged", req.tag)}
        todo = [nvr for nvr in dict.fromkeys(req.nvrs) if nvr not in present]
        results = self._multicall([("tagBuild", (req.tag, nvr), {}) for nvr in todo],
                                  on_progress)
        self._raise_if_global(results)
        self._raise_if_transient(results)
        tagged = [nvr for nvr in req.nvrs if nvr in present]
        failed: list[TagFailure] = []
        tasks: dict[int, str] = {}
        for nvr, r in zip(todo, results, strict=True):
            if isinstance(r, koji.GenericError):
                if "already tagged" in str(r):
                    tagged.append(nvr)
                else:
                    failed.append(TagFailure(nvr, str(r)))
            else:
                tasks[int(r)] = nvr
        for task_id, state, reason in self._wait_tasks(list(tasks), self.tag_wait, on_progress):
            nvr = tasks[task_id]
            if state in UNSUCCESSFUL_TASK_STATES and "already tagged" not in reason:
                failed.append(TagFailure(nvr, reason or f"tagBuild task {task_id} {state}"))
            else:
                tagged.append(nvr)
        last_event = int(self._call("getLastEvent")["id"])
        return TagBuildsResult(tagged=tagged, failed=failed, last_event=last_event)

    def _wait_tasks(self, task_ids: list[int], wait: float, on_progress: Progress
                    ) -> list[tuple[int, str, str]]:
        """Poll tasks until finished or `wait` seconds pass: (id, state, reason)."""
        deadline = time.monotonic() + wait
        pause = 0.05
        pending = list(task_ids)
        done: list[tuple[int, str, str]] = []
        while pending:
            polled = self.poll_tasks(TaskPollRequest(pending), on_progress).tasks
            finished = [t for t in polled if t.state in TERMINAL_TASK_STATES]
            done += [(t.task_id, t.state, t.reason) for t in finished]
            pending = [t.task_id for t in polled if t not in finished]
            if not pending or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        return done + [(tid, KojiTaskState.OPEN, "") for tid in pending]

    def repo_state(self, req: RepoStateRequest) -> RepoState:
        repo, listing = self._multicall([("getRepo", (req.tag,), {}),
                                         ("listTagged", (req.tag,), {})])
        for r in (repo, listing):
            if isinstance(r, koji.GenericError):
                raise permanent_from(r) if is_permanent_fault(r) else r
        events = {b["nvr"]: int(b.get("create_event") or 0) for b in listing}
        missing = [nvr for nvr in req.nvrs if nvr not in events]
        # The repo must postdate the tagging of every build we wait for.
        need = max([req.min_event] + [events[n] for n in req.nvrs if n in events])
        if not repo:
            return RepoState(req.tag, False, missing=missing)
        create_event = int(repo["create_event"])
        ready = (repo.get("state") == koji.REPO_STATES["READY"] and not missing
                 and create_event >= need)
        return RepoState(req.tag, ready, repo_id=int(repo["id"]), create_event=create_event,
                         missing=missing)

    # ---------------------------------------------------------------- builds
    def _build_opts(self, req: SubmitRequest) -> dict[str, Any]:
        opts: dict[str, Any] = {"scratch": True} if req.scratch else (
            {"draft": True} if req.draft else {})
        if req.fail_fast:
            opts["fail_fast"] = True
        if req.wait_repo:
            opts["wait_repo"] = True
        if req.workflow_id:
            opts["custom_user_metadata"] = {WORKFLOW_ID_KEY: req.workflow_id}
        return opts

    def _earlier_tasks(self, req: SubmitRequest) -> dict[tuple[str, str], int]:
        """Our build tasks since not_before, by (src, target), newest winning."""
        rows = self._call("listTasks", opts={
            "owner": self.user_id, "method": "build", "createdAfter": req.not_before,
            "decode": True}, queryOpts={"order": "id"})
        found: dict[tuple[str, str], int] = {}
        for row in rows:
            request = row.get("request") or []
            if len(request) < 2 or row.get("parent") is not None:
                continue
            if row.get("state") == koji.TASK_STATES["CANCELED"]:
                continue
            opts = request[2] if len(request) > 2 and isinstance(request[2], dict) else {}
            meta = (opts.get("custom_user_metadata") or {}).get(WORKFLOW_ID_KEY)
            if req.workflow_id and meta is not None and meta != req.workflow_id:
                continue
            if bool(opts.get("scratch")) != req.scratch:
                continue
            found[(str(request[0]), str(request[1]))] = int(row["id"])
        return found

    def submit_builds(self, req: SubmitRequest, on_progress: Progress = None) -> SubmitResult:
        """Submit build tasks; tasks of ours for the same src+target created since
        not_before (an earlier try whose answer was lost) are reused."""
        earlier = self._earlier_tasks(req)
        result = SubmitResult()
        todo = []
        for spec in req.builds:
            task_id = earlier.get((spec.scm_url, req.target))
            if task_id is not None:
                result.submitted.append(SubmittedTask(spec.component, task_id, reused=True))
            else:
                todo.append(spec)
        opts = self._build_opts(req)
        results = self._multicall(
            [("build", (spec.scm_url, req.target, opts), {"priority": req.priority})
             for spec in todo], on_progress)
        self._raise_if_global(results)
        transient: koji.GenericError | None = None
        for spec, r in zip(todo, results, strict=True):
            if isinstance(r, koji.GenericError):
                if is_permanent_fault(r):
                    result.failed.append(SubmitFailure(spec.component, str(r)))
                else:
                    transient = transient or r
            else:
                result.submitted.append(SubmittedTask(spec.component, int(r)))
        if transient is not None:
            raise transient
        log.info("koji: %s: submitted %d, reused %d, failed %d", req.label or req.target,
                 sum(not t.reused for t in result.submitted),
                 sum(t.reused for t in result.submitted), len(result.failed))
        return result

    def poll_tasks(self, req: TaskPollRequest, on_progress: Progress = None) -> TaskPollResult:
        infos = self._multicall([("getTaskInfo", (tid,), {}) for tid in req.task_ids],
                                on_progress)
        self._raise_if_transient(infos)
        statuses: list[TaskStatus] = []
        failed: list[int] = []
        for tid, info in zip(req.task_ids, infos, strict=True):
            if isinstance(info, koji.GenericError) or not info:
                statuses.append(
                    TaskStatus(tid, KojiTaskState.FAILED, reason=f"no such task: {tid}"))
                continue
            state = KojiTaskState(koji.TASK_STATES[info["state"]])
            canceled = state == KojiTaskState.CANCELED
            statuses.append(TaskStatus(tid, state, reason="canceled" if canceled else ""))
            if state == KojiTaskState.FAILED:
                failed.append(tid)
        if failed:
            reasons = self._multicall([("getTaskResult", (tid,), {}) for tid in failed],
                                      on_progress)
            by_id = {tid: r for tid, r in zip(failed, reasons, strict=True)}
            for status in statuses:
                if status.task_id in by_id:
                    r = by_id[status.task_id]
                    status.reason = str(r) if isinstance(r, Exception) else \
                        f"task failed: {r!r}"
        return TaskPollResult(statuses)

    def cancel_tasks(self, req: CancelRequest, on_progress: Progress = None) -> None:
        results = self._multicall([("cancelTask", (tid,), {}) for tid in req.task_ids],
                                  on_progress)
        self._raise_if_transient(results)
        errors = [f"{tid}: {r}" for tid, r in zip(req.task_ids, results, strict=True)
                  if isinstance(r, koji.GenericError) and "no such task" not in str(r).lower()]
        if errors:
            raise KojiPermanentError("cannot cancel tasks: " + "; ".join(errors))

    def task_builds(self, req: TaskPollRequest, on_progress: Progress = None
                    ) -> TaskBuildsResult:
        results = self._multicall([("listBuilds", (), {"taskID": tid}) for tid in req.task_ids],
                                  on_progress)
        self._raise_if_transient(results)
        out = []
        for tid, r in zip(req.task_ids, results, strict=True):
            if isinstance(r, koji.GenericError) or not r:
                out.append(TaskBuild(tid, found=False))
            else:
                b = max(r, key=lambda b: b["id"])
                out.append(TaskBuild(tid, int(b["id"]), b["nvr"], bool(b.get("draft"))))
        return TaskBuildsResult(out)

    def promote_builds(self, req: PromoteRequest, on_progress: Progress = None) -> PromoteResult:
        """Promote draft builds. One already promoted (an earlier try) counts as
        promoted; one whose final NVR exists already is promoted=False."""
        results = self._multicall([("promoteBuild", (bid,), {}) for bid in req.build_ids],
                                  on_progress)
        self._raise_if_global(results)
        # "Cannot promote build X. Reason: ..." is about that build: not retryable.
        self._raise_if_transient(
            [r for r in results if "cannot promote build" not in str(r).lower()])
        promotions: list[Promotion] = []
        recheck: list[int] = []
        for bid, r in zip(req.build_ids, results, strict=True):
            if isinstance(r, koji.GenericError):
                if "not a draft" in str(r).lower():
                    recheck.append(bid)
                promotions.append(Promotion(bid, False, reason=str(r)))
            else:
                promotions.append(Promotion(bid, True, nvr=r["nvr"]))
        if recheck:
            infos = self._multicall([("getBuild", (bid,), {}) for bid in recheck])
            by_id = {bid: info for bid, info in zip(recheck, infos, strict=True)}
            for p in promotions:
                info = by_id.get(p.build_id)
                if isinstance(info, dict) and not info.get("draft") and \
                        info.get("promoter_id") is not None:
                    p.promoted, p.nvr, p.reason = True, info["nvr"], ""
        return PromoteResult(promotions)

    def check_stable(self, req: StableCheckRequest, on_progress: Progress = None
                     ) -> StableCheckResult:
        """Which NVRs are tagged in the stable tag."""
        names: dict[str, str] = {}
        for nvr in req.nvrs:
            try:
                names[nvr] = str(koji.parse_NVR(nvr)["name"])
            except koji.GenericError as exc:
                raise KojiPermanentError(f"not an NVR: {nvr!r}") from exc
        packages = list(dict.fromkeys(names.values()))
        results = self._multicall(
            [("listTagged", (req.tag,), {"package": p}) for p in packages], on_progress)
        self._raise_if_global(results)
        for r in results:
            if isinstance(r, koji.GenericError):
                raise permanent_from(r) if is_permanent_fault(r) else r
        present = {b["nvr"] for rows in results for b in rows}
        return StableCheckResult(stable=[n for n in req.nvrs if n in present],
                                 pending=[n for n in req.nvrs if n not in present])
