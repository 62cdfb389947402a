"""A stand-in for kojid: completes tasks through the hub's host API.

One host (`builder-1`, channels default + createrepo) logged in with a
password, exclusive as kojid is; each task runs in its own thread on a
subsession. Methods, as kojid does them:

* ``build`` (parent): resolves the source through the stand-in SCM
  (`register_source`), builds a real SRPM, ``host.initBuild`` (draft builds
  get Koji's ``,draft_<id>`` release), one ``buildArch`` child that builds the
  noarch RPM, ``host.completeBuild`` (``moveBuildToScratch`` for scratch),
  then a ``tagBuild`` child into the target's destination tag (not for
  scratch or ``skip_tag``). A failed child fails the build (``failBuild``)
  and the parent with the child's fault, as kojid's taskWaitResults does.
  Simplification: the SRPM is made inside the parent, not in a
  ``buildSRPMFromSCM`` child.
* ``tagBuild``: ``host.tagBuild``.
* ``newRepo``: ``host.repoInit`` + ``host.repoDone`` (no createrepo run).

Tests script the ``buildArch`` step per package::

    builder.script("bash", "fail", "succeed")   # fails once, then builds
    builder.script("gcc", "fail")                # the last outcome repeats: always fails
    builder.script("perl", "hold")               # runs until builder.release("perl")
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import koji

from tests.realstack.rpms import build_rpms

if TYPE_CHECKING:
    from tests.realstack.koji_hub import KojiHub

log = logging.getLogger(__name__)

OUTCOMES = ("succeed", "fail", "hold")
BUILD_FAILURE = ("error building package (arch noarch), mock exited with status 1; "
                 "see build.log or root.log for more information")
ALLOWED_SCM_HOSTS = ("src.fedoraproject.org",)
FINISHED = {koji.TASK_STATES[s] for s in ("CLOSED", "FAILED", "CANCELED")}


@dataclass(frozen=True)
class Source:
    name: str
    version: str
    release: str  # without the dist tag, which the build tag's rpm.macro.dist adds


def scm_url(name: str, version: str, release: str) -> str:
    """A Fedora-shaped dist-git URL with a commit hash derived from the NVR."""
    commit = hashlib.sha1(f"{name}-{version}-{release}".encode()).hexdigest()
    return f"git+https://src.fedoraproject.org/rpms/{name}.git#{commit}"


class _TaskGone(Exception):
    """The task was canceled (or otherwise ended) while we worked on it."""


class StandInBuilder:
    def __init__(self, hub: KojiHub, workdir: Path, hostname: str = "builder-1",
                 poll: float = 0.2, rpm_cache: Path | None = None) -> None:
        """rpm_cache: where built RPMs are kept across runs, by NVR (rpmbuild is
        the costliest step of seeding on a loaded machine)."""
        self.hub = hub
        self.rpm_cache = rpm_cache
        self.rpm_cache_names: set[str] = set()  # packages whose RPMs are cached
        self.workdir = workdir
        self.hostname = hostname
        self.poll = poll
        self.sources: dict[str, Source] = {}
        self._scripts: dict[str, list[str]] = {}
        self._attempts: dict[str, int] = defaultdict(int)
        self._releases: dict[str, threading.Event] = defaultdict(threading.Event)
        self._holding: dict[int, str] = {}  # buildArch task id -> package, while held
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._running: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._loop: threading.Thread | None = None
        self._session: koji.ClientSession | None = None
        self._done: dict[int, threading.Event] = defaultdict(threading.Event)
        self._wake = threading.Event()
        self._built: dict[str, Path] = {}  # srpm upload path -> its noarch rpm
        self.errors: list[str] = []  # unexpected handler errors (a test may assert none)

    # ------------------------------------------------------------ set-up
    def create_host(self) -> None:
        admin = self.hub.admin()
        try:
            if not admin.getHost(self.hostname):
                admin.addHost(self.hostname, ["x86_64", "noarch"])
            admin.addHostToChannel(self.hostname, "createrepo")
            admin.editHost(self.hostname, capacity=1000.0)
        finally:
            admin.logout()
        self.hub.pg.psql("koji", f"UPDATE users SET password = 'host-password' "
                                 f"WHERE name = '{self.hostname}'")
        self.hub.passwords[self.hostname] = "host-password"

    def start(self) -> StandInBuilder:
        self.create_host()
        session = self.hub.session(self.hostname)
        session.exclusiveSession(force=True)
        self._session = session
        self._loop = threading.Thread(target=self._run, name=f"{self.hostname}-loop",
                                      daemon=True)
        self._loop.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for ev in list(self._releases.values()):
            ev.set()
        if self._loop is not None:
            self._loop.join(timeout=10)
        for t in list(self._threads):
            t.join(timeout=10)
        if self._session is not None:
            try:
                self._session.logout()
            except Exception:
                log.debug("builder logout failed", exc_info=True)

    # ----------------------------------------------------------- scripting
    def register_source(self, name: str, version: str, release: str,
                        url: str | None = None) -> str:
        """Make `url` (default: a dist-git URL for the NVR) buildable; returns it."""
        url = url or scm_url(name, version, release)
        self.sources[url] = Source(name, version, release)
        return url

    def script(self, package: str, *outcomes: str) -> None:
        """Outcomes of the next buildArch runs of `package`; the last one repeats."""
        bad = [o for o in outcomes if o not in OUTCOMES]
        if bad or not outcomes:
            raise ValueError(f"outcomes must be some of {OUTCOMES}, got {outcomes}")
        with self._lock:
            self._scripts[package] = list(outcomes)
            self._attempts[package] = 0
            self._releases[package].clear()

    def release(self, package: str) -> None:
        """Let held builds of `package` finish (successfully)."""
        self._releases[package].set()

    def attempts(self, package: str) -> int:
        """How many buildArch runs of `package` have started."""
        return self._attempts[package]

    def held(self) -> dict[int, str]:
        """buildArch task ids currently held, with their package."""
        with self._lock:
            return dict(self._holding)

    def wake(self) -> None:
        """Look for new tasks now (after submitting some), not at the next poll."""
        self._wake.set()

    def pause(self) -> None:
        """Take no new tasks until resume() (tasks stay FREE/ASSIGNED)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def _next_outcome(self, package: str) -> str:
        with self._lock:
            script = self._scripts.get(package) or ["succeed"]
            n = self._attempts[package]
            self._attempts[package] = n + 1
            return script[min(n, len(script) - 1)]

    # --------------------------------------------------------------- loop
    def _run(self) -> None:
        assert self._session is not None
        session = self._session
        while not self._stop.is_set():
            try:
                if not self._paused.is_set():
                    session.host.updateHost(0.0, True)
                    for task in session.host.getTasks():
                        if task["id"] in self._running:
                            continue
                        self._running.add(task["id"])
                        t = threading.Thread(target=self._handle, args=(task["id"],),
                                             name=f"task-{task['id']}", daemon=True)
                        self._threads.append(t)
                        t.start()
                self._threads = [t for t in self._threads if t.is_alive()]
            except Exception as exc:  # the hub restarting, a test's teardown
                if not self._stop.is_set():
                    log.warning("builder loop: %s", exc)
            self._wake.wait(self.poll)
            self._wake.clear()

    def _handle(self, task_id: int) -> None:
        assert self._session is not None
        session = self._session.subsession()
        try:
            task = session.host.openTask(task_id)
            if not task:  # taken meanwhile (canceled, freed)
                return
            params, method = koji.xmlrpcplus.loads(task["request"])
            args, kwargs = koji.decode_args(*params)
            handler = getattr(self, f"_task_{method}", None)
            try:
                if handler is None:
                    raise koji.GenericError(f"stand-in builder does not run {method} tasks")
                result = handler(session, task_id, *args, **kwargs)
                session.host.closeTask(task_id, koji.xmlrpcplus.dumps(
                    (result,), methodresponse=1, allow_none=1))
            except _TaskGone:
                pass
            except koji.GenericError as exc:
                self._fail(session, task_id, exc.faultCode, str(exc))
            except Exception as exc:  # a bug here: fail the task, keep the message
                self.errors.append(f"task {task_id} ({method}): {exc!r}")
                log.exception("stand-in builder: task %s", task_id)
                self._fail(session, task_id, 1, f"{type(exc).__name__}: {exc}")
        except Exception:
            if not self._stop.is_set():
                log.exception("stand-in builder: task %s", task_id)
        finally:
            self._running.discard(task_id)
            self._done[task_id].set()
            try:
                session.logout()
            except Exception:
                pass

    @staticmethod
    def _fail(session: koji.ClientSession, task_id: int, code: int, message: str) -> None:
        info = session.getTaskInfo(task_id)
        if info and info["state"] in FINISHED:
            return
        session.host.failTask(task_id, koji.xmlrpcplus.dumps(
            koji.xmlrpcplus.Fault(code, message), allow_none=1))

    def _check_open(self, session: koji.ClientSession, task_id: int) -> None:
        info = session.getTaskInfo(task_id)
        if not info or info["state"] in FINISHED or self._stop.is_set():
            raise _TaskGone(task_id)

    def _wait_children(self, session: koji.ClientSession, parent: int,
                       children: list[int]) -> None:
        """Wait for subtasks; a failed one raises its fault (kojid's taskWaitResults).

        The children run here, so their handlers' ends wake the wait; the hub is
        asked every half second too (a cancel, a child another host ran)."""
        session.host.taskSetWait(parent, children)
        self._wake.set()  # the dispatcher picks the new children up now
        while True:
            for child in children:
                self._done[child].wait(0.5 / len(children))
            with session.multicall(strict=True) as mc:
                calls = [mc.getTaskInfo(t) for t in [parent, *children]]
            me, *infos = [c.result for c in calls]
            if not me or me["state"] in FINISHED or self._stop.is_set():
                raise _TaskGone(parent)
            if all(i["state"] in FINISHED for i in infos):
                break
        for child in children:
            self._done.pop(child, None)
        for info in infos:
            if info["state"] != koji.TASK_STATES["CLOSED"]:
                session.getTaskResult(info["id"])  # raises the child's fault
                raise koji.GenericError(f"subtask {info['id']} did not complete")

    def _upload(self, session: koji.ClientSession, task_id: int, path: Path) -> str:
        relpath = koji.pathinfo.taskrelpath(task_id)
        session.uploadWrapper(str(path), relpath)
        return f"{relpath}/{path.name}"

    # -------------------------------------------------------------- tasks
    def _task_build(self, session: koji.ClientSession, task_id: int, src: str, target: str,
                    opts: dict[str, Any] | None = None) -> Any:
        opts = opts or {}
        target_info = session.getBuildTarget(target, strict=True)
        if opts.get("draft") and opts.get("scratch"):
            raise koji.GenericError("Draft and scratch cannot be used together")
        self._check_scm(src)
        source = self.sources[src]
        repo = self._build_repo(session, task_id, target_info["build_tag"],
                                bool(opts.get("wait_repo")))
        build_tag = session.getBuildConfig(target_info["build_tag"])
        dist = (build_tag.get("extra") or {}).get("rpm.macro.dist", "")
        release = f"{source.release}{dist}"
        srpm, rpm = build_rpms(self.workdir / str(task_id), source.name, source.version,
                               release, cache=self.rpm_cache
                               if source.name in self.rpm_cache_names else None)
        srpm_rel = self._upload(session, task_id, srpm)
        self._built[srpm_rel] = rpm  # the buildArch child uploads it
        scratch = bool(opts.get("scratch"))
        build_id = None
        if not scratch:
            data = {"name": source.name, "version": source.version, "release": release,
                    "epoch": None, "source": src, "task_id": task_id,
                    "extra": {"source": {"original_url": src}}}
            if opts.get("draft"):
                data["draft"] = True
            build_id = session.host.initBuild(data)
        try:
            child = session.host.subtask(
                "buildArch", [srpm_rel, target_info["build_tag"], "noarch", True,
                              {"repo_id": repo["id"]}],
                task_id, arch="noarch", label="noarch")
            self._wait_children(session, task_id, [child])
            rpm_rel = session.getTaskResult(child)["rpms"][0]
            if scratch:
                session.host.moveBuildToScratch(task_id, srpm_rel, [rpm_rel])
                return None
            session.host.completeBuild(task_id, build_id, srpm_rel, [rpm_rel], {}, None)
        except _TaskGone:
            raise
        except Exception:
            if build_id is not None:
                try:
                    session.host.failBuild(task_id, build_id)
                except koji.GenericError:
                    log.debug("failBuild %s", build_id, exc_info=True)
            raise
        if not opts.get("skip_tag"):
            tag_task = session.host.subtask(
                "tagBuild", [target_info["dest_tag"], build_id, False, None, True],
                task_id, arch="noarch", label="tag")
            self._wait_children(session, task_id, [tag_task])
        return None

    def _build_repo(self, session: koji.ClientSession, task_id: int, build_tag: int,
                    wait_repo: bool) -> dict[str, Any]:
        """The build tag's repo, as kojid 1.35 gets it (koji.util.RepoWatcher):
        ask the hub with repo.request (min_event "last" for wait_repo, else the
        hub's default) and wait for that request to be served by kojira."""
        check = session.repo.request(build_tag, min_event="last" if wait_repo else None)
        if check.get("repo"):
            return dict(check["repo"])
        req_id = check["request"]["id"]
        while True:
            self._check_open(session, task_id)
            status = session.repo.checkRequest(req_id)
            if status.get("repo"):
                return dict(status["repo"])
            if not status["request"]["active"]:
                raise koji.GenericError("Repo request no longer active")
            time.sleep(self.poll)

    def _check_scm(self, src: str) -> None:
        """kojid's SCM checks: allowed hosts, then the checkout."""
        m = re.match(r"git\+https://(?P<host>[^/]+)/rpms/(?P<name>[^/#]+?)(\.git)?#(?P<ref>.+)$",
                     src)
        if m is None:
            raise koji.BuildError(f"Invalid scm url or srpm path: {src}")
        if m.group("host") not in ALLOWED_SCM_HOSTS:
            raise koji.BuildError(f"SCM: {m.group('host')}:/rpms/{m.group('name')}.git is not "
                                  "in the list of allowed SCMs")
        if src not in self.sources:
            raise koji.BuildError(f'Error running GIT command "git checkout {m.group("ref")}", '
                                  "see checkout.log for details")

    def _task_buildArch(self, session: koji.ClientSession, task_id: int, srpm_rel: str,
                        build_tag: Any, arch: str, keep_srpm: bool,
                        opts: dict[str, Any] | None = None) -> Any:
        header = Path(srpm_rel).name[: -len(".src.rpm")]
        nvr = koji.parse_NVR(header)
        package = nvr["name"]
        outcome = self._next_outcome(package)
        if outcome == "hold":
            with self._lock:
                self._holding[task_id] = package
            try:
                while not self._releases[package].wait(self.poll):
                    self._check_open(session, task_id)
            finally:
                with self._lock:
                    self._holding.pop(task_id, None)
            self._check_open(session, task_id)
        elif outcome == "fail":
            raise koji.BuildError(BUILD_FAILURE)
        rpm = self._built.pop(srpm_rel, None) or build_rpms(
            self.workdir / str(task_id), package, nvr["version"], nvr["release"])[1]
        rpm_rel = self._upload(session, task_id, rpm)
        return {"rpms": [rpm_rel], "srpms": [], "logs": [], "brootid": 0}

    def _task_tagBuild(self, session: koji.ClientSession, task_id: int, tag_id: Any,
                       build_id: Any, force: bool = False, fromtag: Any = None,
                       ignore_success: bool = False) -> Any:
        session.host.tagBuild(task_id, tag_id, build_id, force=force, fromtag=fromtag)
        return None

    def _task_newRepo(self, session: koji.ClientSession, task_id: int, tag: Any,
                      event: int | None = None, opts: dict[str, Any] | None = None,
                      **legacy: Any) -> Any:
        tag_id = tag["id"] if isinstance(tag, dict) else tag
        kwargs: dict[str, Any] = {"task_id": task_id, "opts": opts or {}}
        if event is not None:
            kwargs["event"] = event
        repo_id, event_id = session.host.repoInit(tag_id, **kwargs)
        session.host.repoDone(repo_id, {})
        return [repo_id, event_id]
