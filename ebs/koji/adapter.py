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
from datetime import UTC, datetime
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
    RebuildLookupRequest,
    RebuildLookupResult,
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
    TagListing,
    TagResolveRequest,
    TagResolveResult,
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

# The dist part of a Fedora or ELN release, as the original's nodist pattern.
_NODIST = re.compile(r"(\.fc|\.eln)\d+")


def _creation_ts(info: dict[str, Any]) -> float:
    """getBuild answers creation_ts; listTagged/getLatestBuilds rows only
    creation_time ('2026-11-02 10:11:12.123456+00:00')."""
    if info.get("creation_ts") is not None:
        return float(info["creation_ts"])
    try:
        created = datetime.fromisoformat(str(info.get("creation_time") or ""))
    except ValueError:
        return 0.0
    return (created if created.tzinfo else created.replace(tzinfo=UTC)).timestamp()


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
        # Whether the hub makes repos on request (1.35+); None until known.
        self._repo_requests: bool | None = None
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
                         creation_ts=_creation_ts(info), reason=reason)

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

    def existing_rebuilds(self, req: RebuildLookupRequest, on_progress: Progress = None
                          ) -> RebuildLookupResult:
        """For each Rawhide NVR, a finished, non-draft build of the same
        name-version-release but for its dist tag (`.fc45` vs `.eln150`): a
        rebuild Koji would refuse to make again ("Build already exists").

        Compared without the dist tag, as the original compares Rawhide and
        ELN NVRs (its nodist pattern, `.fcNN`/`.elnNN`)."""
        wanted: list[tuple[str, str, str, str]] = []  # nvr, name, version, nodist release
        for nvr in req.nvrs:
            try:
                parsed = koji.parse_NVR(nvr)
            except koji.GenericError as exc:
                raise KojiPermanentError(f"not an NVR: {nvr!r}") from exc
            wanted.append((nvr, str(parsed["name"]), str(parsed["version"]),
                           _NODIST.sub("", str(parsed["release"]))))
        results = self._multicall(
            [("listBuilds", (), {"packageID": name, "state": koji.BUILD_STATES["COMPLETE"],
                                 "pattern": f"{name}-{version}-{release}.*"})
             for _, name, version, release in wanted], on_progress)
        self._raise_if_global(results)
        self._raise_if_transient(results)
        out: list[KojiBuild] = []
        for (nvr, name, version, release), rows in zip(wanted, results, strict=True):
            found = [] if isinstance(rows, koji.GenericError) else [
                r for r in rows
                if r["nvr"] != nvr and not r.get("draft") and str(r["version"]) == version
                and _NODIST.sub("", str(r["release"])) == release
                and r.get("state", koji.BUILD_STATES["COMPLETE"]) == koji.BUILD_STATES["COMPLETE"]]
            if not found:
                out.append(KojiBuild(nvr, found=False, component=name))
                continue
            row = max(found, key=lambda r: int(r["build_id"]))
            out.append(KojiBuild(str(row["nvr"]), found=True, build_id=int(row["build_id"]),
                                 component=name, source=str(row.get("source") or ""),
                                 task_id=int(row.get("task_id") or 0),
                                 creation_ts=_creation_ts(row)))
        return RebuildLookupResult(out)

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

    def resolve_in_tags(self, req: TagResolveRequest, on_progress: Progress = None
                        ) -> TagResolveResult:
        """The build Koji lists as latest in each query's tag for its package
        (getLatestBuilds: inheritance followed, most recently tagged first and,
        within one event, the highest build id), one multicall per
        multicall_chunk queries. An empty answer means the tag holds no build of
        the package (found=False); a fault is never read as that: a permanent
        one (no such tag) raises KojiPermanentError, any other propagates."""
        results = self._multicall(
            [("getLatestBuilds", (q.tag,), {"package": q.package or q.component})
             for q in req.queries], on_progress)
        self._raise_if_global(results)
        for r in results:
            if isinstance(r, koji.GenericError):
                raise permanent_from(r) if is_permanent_fault(r) else r
        builds = []
        for q, rows in zip(req.queries, results, strict=True):
            if not rows:
                builds.append(TaggedBuild(q.component, q.tag, found=False))
                continue
            row = rows[0]
            builds.append(TaggedBuild(q.component, q.tag, found=True, nvr=str(row["nvr"]),
                                      build_id=int(row["build_id"]),
                                      tag_event=int(row.get("create_event") or 0)))
        return TagResolveResult(builds)

    def list_tagged(self, req: ListTaggedRequest) -> ListTaggedResult:
        """One listTagged call for a whole tag (the status page and the cleanup,
        as the original's status.py and cleanup.py do)."""
        rows = self._call("listTagged", req.tag, latest=req.latest, inherit=req.inherit)
        return ListTaggedResult(
            req.tag,
            [TagListing(r.get("name") or r.get("package_name") or "", r["nvr"],
                         int(r.get("build_id") or r.get("id") or 0)) for r in rows or []],
        )

    # -------------------------------------------------------------- side tags
    def create_side_tag(self, req: SideTagRequest) -> SideTag:
        """Create a side tag of base_tag, or find the one an earlier try made.

        Ways to find an earlier try's tag, first that works:
        1. the request key in the tag's extra (editSideTag; only with the
           sidetag_admin permission, which Fedora's packager accounts lack);
        2. with `req.not_before` (when the request was first made): the first
           side tag of ours, of this base tag (with `koji.side_tag_suffix`: of
           that suffix), created since then and marked with no other key. A
           batch makes its side tags one after another and batches never
           overlap, so that tag is this request's (the worker's and the hub's
           clocks must agree, as for submit_builds' not_before);
        3. without not_before: an *orphan*, ours, unmarked and still empty.
        """
        suffix = self.cfg.side_tag_suffix
        ours = [t for t in self._call("listSideTags", basetag=req.base_tag, user=self.username)
                if not suffix or str(t["name"]).endswith(f"-{suffix}")]
        infos = [i for i in self._multicall([("getTag", (t["id"],), {}) for t in ours])
                 if isinstance(i, dict)] if ours else []
        for info in infos:
            if (info.get("extra") or {}).get(SIDE_TAG_KEY) == req.key:
                return SideTag(info["name"], int(info["id"]), reused=True)
        unmarked = sorted((i for i in infos if SIDE_TAG_KEY not in (i.get("extra") or {})),
                          key=lambda i: int(i["id"]))
        if unmarked and req.not_before:
            before = self.last_event_before(req.not_before)
            then = self.get_tags([int(i["id"]) for i in unmarked], event=before) \
                if before is not None else [None] * len(unmarked)
            since = [i for i, old in zip(unmarked, then, strict=True) if not old]
            if since:
                info = since[0]
                log.info("side tag %s: created since %s request was first made; reusing it",
                         info["name"], req.key)
                self._mark_side_tag(info["name"], req.key)
                return SideTag(info["name"], int(info["id"]), reused=True)
        elif unmarked:
            contents = self._multicall([("listTagged", (i["id"],), {}) for i in unmarked])
            for info, tagged in zip(unmarked, contents, strict=True):
                if tagged == []:
                    log.info("side tag %s: adopting the empty, unmarked side tag an "
                             "interrupted try made for %s", info["name"], req.key)
                    self._mark_side_tag(info["name"], req.key)
                    return SideTag(info["name"], int(info["id"]), reused=True)
        created = self._call("createSideTag", req.base_tag,
                             **({"suffix": suffix} if suffix else {}))
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
            log.warning("side tag %s: cannot record request key %s (%s); a retry finds "
                        "it by its creation time (or while it is empty)", name, key, exc)

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
        order = {nvr: n for n, nvr in enumerate(req.nvrs)}  # tasks finish in any order
        tagged.sort(key=order.__getitem__)
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
            done += [(t.task_id, t.state, t.reason) for t in polled
                     if t.state in TERMINAL_TASK_STATES]
            pending = [t.task_id for t in polled if t.state not in TERMINAL_TASK_STATES]
            if not pending or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        return done + [(tid, KojiTaskState.OPEN, "") for tid in pending]

    def repo_state(self, req: RepoStateRequest) -> RepoState:
        """Is there a READY repo of the tag newer than the tagging of `req.nvrs`
        (and than `req.min_event`)? If not, ask Koji for one.

        Koji 1.35 makes a repo only when asked (issue 17 #1): once every build
        is in the tag, this calls ``repo.request(tag, min_event=<newest tagging
        event>)``, which answers with a repo that is new enough, or with the
        request (the hub keeps one request per tag and event: asking again
        while waiting makes no new one). A hub older than 1.35 answers
        "Invalid method"; then this only looks with getRepo, as before, and
        kojira regenerates the tag by itself.
        """
        listing = self._call("listTagged", req.tag)
        events = {b["nvr"]: int(b.get("create_event") or 0) for b in listing}
        missing = [nvr for nvr in req.nvrs if nvr not in events]
        # The repo must postdate the tagging of every build we wait for.
        need = max([req.min_event] + [events[n] for n in req.nvrs if n in events])
        if missing:  # a tagBuild task still running: any repo now would be too old
            return RepoState(req.tag, False, missing=missing)
        repo: Any = None
        request_id = 0
        if self._repo_requests is not False:
            try:
                check = self._call("repo.request", req.tag,
                                   min_event=need if need > 0 else "last")
                self._repo_requests = True
            except KojiPermanentError as exc:
                if "invalid method" not in str(exc).lower():
                    raise
                log.info("koji: the hub has no repo.request (older than 1.35); "
                         "waiting for kojira to regenerate repos by itself")
                self._repo_requests = False
            else:
                repo = check["repo"]
                if repo is None:
                    request_id = int(check["request"]["id"])
        if self._repo_requests is False:
            repo = self._call("getRepo", req.tag)
        if not repo:
            return RepoState(req.tag, False, request_id=request_id)
        create_event = int(repo["create_event"])
        ready = repo.get("state") == koji.REPO_STATES["READY"] and create_event >= need
        return RepoState(req.tag, ready, repo_id=int(repo["id"]), create_event=create_event,
                         request_id=request_id)

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
        not_before (an earlier try whose answer was lost) are reused; a first
        submission skips that listTasks (ten 1,000-build chunks of a mass rebuild
        each listed every task of the last ten minutes)."""
        earlier = {} if req.first_submission else self._earlier_tasks(req)
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
                # listBuilds rows carry the id as build_id (no `id`; issue 17 #2)
                b = max(r, key=lambda b: int(b["build_id"]))
                out.append(TaskBuild(tid, int(b["build_id"]), b["nvr"], bool(b.get("draft"))))
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
