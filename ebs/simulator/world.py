"""The simulated Koji instance: tags, targets, builds, tasks, repos, events.

Every mutation takes the world lock, bumps the event counter like Koji's
``events`` table and queues the bus messages Fedora's hub plugin would send.
Timed things (task progress, tagBuild tasks, repo regeneration) run on the
scheduler thread, so messages go out when the state actually changes.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import koji

from . import messages
from .messages import Outbox
from .model import Build, Listing, Repo, Tag, Target, Task, User, iso, iso_t
from .scheduler import Scheduler
from .script import Script
from .sinks import MessageSink

log = logging.getLogger(__name__)

ST = koji.TASK_STATES
BS = koji.BUILD_STATES
RS = koji.REPO_STATES

SCM_RE = re.compile(
    r"^git\+https://(?P<host>[^/]+)/rpms/(?P<name>[^/#]+?)(?:\.git)?#(?P<commit>[0-9a-f]{7,40})$")
ALLOWED_SCM_HOSTS = ("src.fedoraproject.org",)
BUILD_ARCHES = ("aarch64", "ppc64le", "s390x", "x86_64")
# Timed world actions by name (see World.after): the pending ones are plain
# data, so a saved world can resume them.
TIMED_ACTIONS = {"start_build": "_start_build", "finish_build": "_finish_build",
                 "tag_task": "_run_tag_task", "repo_done": "_repo_done"}
PACKAGERS = ("sgallagh", "churchyard", "ngompa", "tstellar", "jistone", "zbyszek", "music",
             "kkeithle", "sharkcz", "pbrobinson", "dcantrell", "mhroncok")


# The Koji user anonymous sessions act as: ebs's configuration.koji.username
# in the sandbox (the bridge routes only this user's task messages).
DEFAULT_USER = "elnbuildsync"


class World:
    def __init__(self, seed: int | str, sink: MessageSink, *, base_url: str = "",
                 default_user: str = DEFAULT_USER,
                 default_user_perms: Iterable[str] = ("sidetag_admin",),
                 task_messages: str = "scratch") -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.rng_world = random.Random(f"{seed}:world")
        self.rng_build = random.Random(f"{seed}:build")
        self.script = Script()
        self.scheduler = Scheduler()
        self.outbox = Outbox(sink, random.Random(f"{seed}:chaos"), self._chaos)
        self.base_url = base_url
        # "scratch" is what Fedora's plugin does; "all" also announces real
        # build tasks on buildsys.task.state.change (not what production sends).
        if task_messages not in ("scratch", "all"):
            raise ValueError("task_messages must be 'scratch' or 'all'")
        self.task_messages = task_messages
        self._next = {"event": 140_000_000, "user": 1, "tag": 90_000, "target": 4_000,
                      "build": 2_700_000, "task": 130_000_000, "repo": 6_500_000,
                      "package": 30_000, "host": 500}
        self.event_ts: dict[int, float] = {}
        self.users: dict[int, User] = {}
        self.tags: dict[int, Tag] = {}
        self.targets: dict[int, Target] = {}
        self.builds: dict[int, Build] = {}
        self.tasks: dict[int, Task] = {}
        self.repos: dict[int, Repo] = {}
        self.listings: list[Listing] = []
        # indexes: tag id -> its listings, NVR -> build id, parent task -> children
        self._by_tag: dict[int, list[Listing]] = {}
        self._by_tag_pkg: dict[tuple[int, str], list[Listing]] = {}
        self._by_nvr: dict[str, int] = {}
        self._by_name: dict[str, list[int]] = {}  # package name -> build ids
        self._by_task: dict[int, list[int]] = {}  # task id -> build ids
        self._children: dict[int, list[int]] = {}
        self.packages: dict[str, int] = {}
        self.sources: dict[str, int] = {}  # SCM URL handed out -> build id
        self.hosts: dict[int, str] = {}
        self._regen_running: set[int] = set()
        self._regen_dirty: set[int] = set()
        # Koji 1.35's repo queue (repo.request): request id -> row (not persisted)
        self.repo_requests: dict[int, dict[str, Any]] = {}
        self.quiet = False  # seeding history: no messages, no repo regeneration
        # Pending timed actions: key -> (due wall-clock time, action name, args).
        self.timed: dict[int, tuple[float, str, list[Any]]] = {}
        self._timed_seq = itertools.count()
        self._disarmed = False
        # Called (without arguments) after a change worth saving; see ebs.simulator.persist.
        self.on_change: Callable[[], None] | None = None
        self.side_tags_created: list[str] = []
        self.side_tags_removed: list[str] = []
        self.builds_submitted: list[dict[str, Any]] = []
        self.last_event = self._new_event()
        self.default_user = self.add_user(default_user, perms=default_user_perms)
        self.kojira = self.add_user("kojira", perms=("repo",))
        self.bodhi_user = self.add_user("bodhi", perms=("tag", "sidetag_admin"))
        for i in range(4):
            arch = BUILD_ARCHES[i % 4].replace("_", "-")
            self.hosts[self._id("host")] = f"buildvm-{arch}-{i + 1:02d}.rdu3.fedoraproject.org"

    # ---------------------------------------------------------------- basics
    @property
    def files_base_url(self) -> str:
        return f"{self.base_url}/kojifiles/work"

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        self.changed()
        return value

    def changed(self) -> None:
        """Tell the state saver (if any) that the world changed."""
        if self.on_change is not None:
            self.on_change()

    def after(self, delay: float, action: str, *args: Any) -> None:
        """Run a named world action (TIMED_ACTIONS) on the scheduler after `delay`
        seconds; until then it is listed in `timed`, with its wall-clock due time."""
        if action not in TIMED_ACTIONS:
            raise ValueError(f"unknown timed action {action!r}")
        key = next(self._timed_seq)
        with self.lock:
            self.timed[key] = (time.time() + max(0.0, delay), action, list(args))
        self.changed()
        self.scheduler.call_later(delay, lambda: self._run_timed(key))

    def _run_timed(self, key: int) -> None:
        with self.lock:  # held throughout: a saved world never shows it half done
            entry = self.timed.pop(key, None)
            if entry is None:
                return
            _, action, args = entry
            getattr(self, TIMED_ACTIONS[action])(*args)

    def _new_event(self) -> int:
        eid = self._id("event")
        self.event_ts[eid] = time.time()
        self.last_event = eid
        return eid

    def _chaos(self) -> tuple[float, float, float]:
        s = self.script
        return s.drop, s.duplicate, s.reorder

    def emit(self, topic: str, body: dict[str, Any]) -> None:
        if not self.quiet:
            self.outbox.put(topic, body)

    def start(self) -> None:
        if self._disarmed:  # stopped before: the scheduler forgot what was pending
            self._disarmed = False
            now = time.time()
            with self.lock:
                for key, (due, _, _) in self.timed.items():
                    self.scheduler.call_later(due - now, functools.partial(self._run_timed, key))
        self.scheduler.start()
        self.outbox.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self._disarmed = True  # `timed` still lists what was pending
        self.outbox.stop()

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, perms: Iterable[str] = ()) -> User:
        with self.lock:
            for user in self.users.values():
                if user.name == name:
                    if not set(perms) <= user.perms:
                        user.perms.update(perms)
                        self.changed()
                    return user
            user = User(self._id("user"), name, set(perms), f"{name}@FEDORAPROJECT.ORG")
            self.users[user.id] = user
            return user

    def lookup_user(self, info: Any) -> User | None:
        if isinstance(info, int):
            return self.users.get(info)
        if isinstance(info, dict):
            info = info.get("id") or info.get("name")
            return self.lookup_user(info)
        if isinstance(info, str):
            for user in self.users.values():
                if info in (user.name, user.krb_principal):
                    return user
        return None

    # ------------------------------------------------------------------- tags
    def add_tag(self, name: str, parent: str | None = None,
                extra: dict[str, Any] | None = None) -> Tag:
        with self.lock:
            parent_id = self.get_tag(parent, strict=True).id if parent else None
            tag = Tag(self._id("tag"), name, parent_id, self._new_event(), extra=dict(extra or {}))
            self.tags[tag.id] = tag
            return tag

    def add_target(self, name: str, build_tag: str, dest_tag: str) -> Target:
        with self.lock:
            target = Target(self._id("target"), name, self.get_tag(build_tag, strict=True).id,
                            self.get_tag(dest_tag, strict=True).id)
            self.targets[target.id] = target
            self._new_event()
            return target

    def get_tag(self, info: Any, strict: bool = False, event: int | None = None) -> Tag:
        tag = self._find_tag(info, event)
        if tag is None and strict:
            raise koji.GenericError(f"No such tagInfo: {info!r}")
        return tag  # type: ignore[return-value]

    def _find_tag(self, info: Any, event: int | None = None) -> Tag | None:
        if isinstance(info, dict):
            info = info.get("id") or info.get("name")
        candidates: Iterable[Tag]
        if isinstance(info, int):
            candidates = [self.tags[info]] if info in self.tags else []
        elif isinstance(info, str):
            candidates = [t for t in self.tags.values() if t.name == info]
        else:
            raise koji.ParameterError(f"Invalid type for tagInfo: {type(info)}")
        for tag in candidates:
            if event is None and tag.deleted_event is None:
                return tag
            if event is not None and tag.create_event <= event and (
                    tag.deleted_event is None or tag.deleted_event > event):
                return tag
        return None

    def ancestors(self, tag: Tag) -> list[Tag]:
        """The tag followed by its inheritance chain (nearest parent first)."""
        chain, seen = [tag], {tag.id}
        while chain[-1].parent_id is not None and chain[-1].parent_id not in seen:
            parent = self.tags[chain[-1].parent_id]
            chain.append(parent)
            seen.add(parent.id)
        return chain

    def tag_extra(self, tag: Tag) -> dict[str, Any]:
        """Extra with inherited values, nearest tag winning (like getBuildConfig)."""
        extra: dict[str, Any] = {}
        for t in reversed(self.ancestors(tag)):
            extra.update(t.extra)
        return extra

    def tag_info(self, tag: Tag) -> dict[str, Any]:
        return {
            "id": tag.id, "name": tag.name, "arches": tag.arches, "locked": tag.locked,
            "maven_support": False, "maven_include_all": False, "perm_id": None, "perm": None,
            "extra": self.tag_extra(tag),
        }

    def get_target(self, info: Any, strict: bool = False) -> Target | None:
        if isinstance(info, dict):
            info = info.get("id") or info.get("name")
        for target in self.targets.values():
            if not target.deleted and info in (target.id, target.name):
                return target
        if strict:
            raise koji.GenericError(f"No such build target: {info}")
        return None

    def target_info(self, target: Target) -> dict[str, Any]:
        return {"id": target.id, "name": target.name,
                "build_tag": target.build_tag, "build_tag_name": self.tags[target.build_tag].name,
                "dest_tag": target.dest_tag, "dest_tag_name": self.tags[target.dest_tag].name}

    # ----------------------------------------------------------------- builds
    def package_id(self, name: str) -> int:
        if name not in self.packages:
            self.packages[name] = self._id("package")
        return self.packages[name]

    def get_build(self, info: Any, strict: bool = False) -> Build | None:
        build: Build | None = None
        if isinstance(info, int):
            build = self.builds.get(info)
        elif isinstance(info, str):
            bid = self._by_nvr.get(info)
            build = self.builds.get(bid) if bid is not None else None
        elif isinstance(info, dict):
            if "id" in info:
                return self.get_build(int(info["id"]), strict)
            if {"name", "version", "release"} <= set(info):
                return self.get_build(f"{info['name']}-{info['version']}-{info['release']}",
                                      strict)
        else:
            raise koji.ParameterError(f"Invalid type for buildInfo: {type(info)}")
        if build is None and strict:
            raise koji.GenericError(f"No such build: {info!r}")
        return build

    def add_build(self, b: Build) -> None:
        self.builds[b.id] = b
        self._by_nvr[b.nvr] = b.id
        self._by_name.setdefault(b.name, []).append(b.id)
        if b.task_id:
            self._by_task.setdefault(b.task_id, []).append(b.id)

    def reindex(self) -> None:
        """Rebuild the indexes from builds, listings and tasks (after a restore)."""
        self._by_tag, self._by_tag_pkg, self._by_nvr, self._children = {}, {}, {}, {}
        self._by_name, self._by_task = {}, {}
        for b in self.builds.values():
            self.add_build(b)
        for li in self.listings:
            self._by_tag.setdefault(li.tag_id, []).append(li)
            self._by_tag_pkg.setdefault((li.tag_id, self.builds[li.build_id].name), []).append(li)
        for t in sorted(self.tasks.values(), key=lambda t: t.id):
            if t.parent is not None:
                self._children.setdefault(t.parent, []).append(t.id)

    def builds_of_task(self, task_id: int) -> list[Build]:
        """The builds a task made, by id: listBuilds(taskID=...) without a scan of
        every build (ebs asks once per finished build task)."""
        return sorted((self.builds[i] for i in self._by_task.get(task_id, ())),
                      key=lambda b: b.id)

    def builds_named(self, name: str) -> list[Build]:
        """A package's builds, by id: listBuilds(packageID=name) without a
        scan of every build (a mass rebuild asks once per package)."""
        return sorted((self.builds[i] for i in self._by_name.get(name, ())), key=lambda b: b.id)

    def rename_build(self, b: Build, release: str) -> None:
        """Promotion: the build takes its final release."""
        self._by_nvr.pop(b.nvr, None)
        b.release = release
        self._by_nvr[b.nvr] = b.id

    def require_build(self, info: Any) -> Build:
        build = self.get_build(info, strict=True)
        assert build is not None
        return build

    def build_info(self, b: Build) -> dict[str, Any]:
        owner = self.users[b.owner_id]
        promoter = self.users.get(b.promoter_id) if b.promoter_id else None
        return {
            "id": b.id, "build_id": b.id, "name": b.name, "package_name": b.name,
            "package_id": b.pkg_id, "version": b.version, "release": b.release,
            "epoch": b.epoch, "nvr": b.nvr, "state": b.state, "task_id": b.task_id,
            "owner_id": owner.id, "owner_name": owner.name, "source": b.source,
            "draft": b.draft, "creation_event_id": b.create_event,
            "creation_time": iso(b.creation_ts), "creation_ts": b.creation_ts,
            "start_time": iso(b.creation_ts), "start_ts": b.creation_ts,
            "completion_time": iso(b.completion_ts), "completion_ts": b.completion_ts,
            "volume_id": 0, "volume_name": "DEFAULT", "extra": b.extra,
            "cg_id": None, "cg_name": None,
            "promoter_id": promoter.id if promoter else None,
            "promoter_name": promoter.name if promoter else None,
            "promotion_time": iso(b.promotion_ts), "promotion_ts": b.promotion_ts,
        }

    def _set_build_state(self, b: Build, new: int) -> None:
        old = b.state
        b.state = new
        if new != BS["BUILDING"]:
            b.completion_ts = time.time()
        self._new_event()
        task = self.tasks.get(b.task_id) if b.task_id else None
        self.emit("buildsys.build.state.change", messages.build_state_body(
            self.base_url, self.files_base_url, self.build_info(b),
            None if old == new else old, new,
            self.full_task_info(task) if task else None,
            iso_t(b.creation_ts) or "", iso_t(b.completion_ts)))

    def add_rawhide_build(self, name: str, version: str, release: str, *,
                          tag: str | None = None, owner: str | None = None,
                          commit: str | None = None, notify: bool = True) -> Build:
        """A packager's build appears in Koji and gets tagged (buildsys.tag if notify)."""
        with self.lock:
            tag_name = tag or self.trigger_tag
            owner_user = self.add_user(owner or self.rng_world.choice(PACKAGERS))
            commit = commit or f"{self.rng_world.getrandbits(160):040x}"
            src = f"git+https://src.fedoraproject.org/rpms/{name}.git#{commit}"
            if self.get_build(f"{name}-{version}-{release}"):
                raise koji.GenericError(f"Build already exists: {name}-{version}-{release}")
            now = time.time()
            task = Task(self._id("task"), "build", [src, "rawhide", {}], owner_user.id,
                        koji.PRIO_DEFAULT, now, state=ST["CLOSED"], start_ts=now,
                        completion_ts=now, host_id=next(iter(self.hosts)), package=name)
            self.tasks[task.id] = task
            b = Build(self._id("build"), self.package_id(name), name, version, release,
                      owner_user.id, self._new_event(), now, state=BS["COMPLETE"],
                      task_id=task.id, source=src, completion_ts=now,
                      extra={"source": {"original_url": src}})
            task.build_id = b.id
            self.add_build(b)
            self.sources[src] = b.id
            self._tag(self.get_tag(tag_name, strict=True), b, self.bodhi_user, notify=notify)
            return b

    trigger_tag = "f45"  # overwritten by the seed

    # ---------------------------------------------------------------- tagging
    def tagged(self, tag: Tag, event: int | None = None,
               package: str | None = None) -> list[Listing]:
        source = self._by_tag.get(tag.id, ()) if package is None else \
            self._by_tag_pkg.get((tag.id, package), ())
        rows = [li for li in source if li.active_at(event)]
        rows.sort(key=lambda li: (li.create_event, li.build_id), reverse=True)
        return rows

    def read_tagged(self, tag: Tag, *, event: int | None = None, inherit: bool = False,
                    latest: bool | int = False, package: str | None = None,
                    owner: str | None = None, prefix: str | None = None,
                    draft: bool | None = None, extra: bool = False) -> list[dict[str, Any]]:
        chain = self.ancestors(tag) if inherit else [tag]
        out: list[dict[str, Any]] = []
        seen: dict[int, int] = {}
        for t in chain:
            for li in self.tagged(t, event, package):
                b = self.builds[li.build_id]
                if b.state != BS["COMPLETE"]:
                    continue
                if package and b.name != package:
                    continue
                if prefix and not b.name.startswith(prefix):
                    continue
                if owner and self.users[b.owner_id].name != owner:
                    continue
                if draft is not None and b.draft != bool(draft):
                    continue
                if latest:
                    limit = 1 if latest is True else int(latest)
                    if seen.get(b.pkg_id, 0) >= limit:
                        continue
                    seen[b.pkg_id] = seen.get(b.pkg_id, 0) + 1
                row = self._tagged_row(b, t, li)
                if extra:
                    row["extra"] = b.extra
                out.append(row)
        return out

    # The columns of kojihub.readTaggedBuilds (1.35): no source, no *_ts, no cg.
    TAGGED_COLUMNS = (
        "tag_id", "tag_name", "id", "build_id", "version", "release", "epoch", "state",
        "completion_time", "promotion_time", "start_time", "task_id", "draft", "owner_id",
        "owner_name", "promoter_id", "promoter_name", "creation_event_id", "creation_time",
        "volume_id", "volume_name", "package_id", "package_name", "name", "nvr", "create_event",
    )

    def _tagged_row(self, b: Build, tag: Tag, li: Listing) -> dict[str, Any]:
        """One row of listTagged/getLatestBuilds, shaped like the hub's."""
        info = self.build_info(b)
        info.update({"tag_id": tag.id, "tag_name": tag.name, "create_event": li.create_event})
        return {key: info[key] for key in self.TAGGED_COLUMNS}

    def is_tagged(self, tag: Tag, b: Build) -> bool:
        return any(li.build_id == b.id and li.revoke_event is None
                   for li in self._by_tag_pkg.get((tag.id, b.name), ()))

    def _tag(self, tag: Tag, b: Build, user: User, notify: bool = True) -> int:
        if self.is_tagged(tag, b):
            raise koji.TagError(f"build {b.nvr} already tagged ({tag.name})")
        event = self._new_event()
        listing = Listing(tag.id, b.id, event, user.id)
        self.listings.append(listing)
        self._by_tag.setdefault(tag.id, []).append(listing)
        self._by_tag_pkg.setdefault((tag.id, b.name), []).append(listing)
        if notify:
            self.emit("buildsys.tag", messages.tag_body(
                self.base_url, {"id": tag.id, "name": tag.name}, self.build_info(b), user.name,
                self.users[b.owner_id].name))
        self._tag_changed(tag)
        return event

    def _untag(self, tag: Tag, b: Build, user: User, strict: bool = True) -> None:
        rows = [li for li in self.tagged(tag, package=b.name) if li.build_id == b.id]
        if not rows and strict:
            raise koji.TagError(f"build {b.nvr} not in tag {tag.name}")
        # As the hub: the revoke is an event even when nothing was tagged
        # (strict=False), and the postUntag callback announces it either way.
        event = self._new_event()
        for li in rows:
            li.revoke_event = event
        self.emit("buildsys.untag", messages.tag_body(
            self.base_url, {"id": tag.id, "name": tag.name}, self.build_info(b), user.name,
            self.users[b.owner_id].name))
        if rows:
            self._tag_changed(tag)

    def tag_build_now(self, tag_name: str, nvr: str, user: User | None = None) -> None:
        with self.lock:
            self._tag(self.get_tag(tag_name, strict=True), self.require_build(nvr),
                      user or self.bodhi_user)

    def untag_build_now(self, tag_name: str, nvr: str, user: User | None = None) -> None:
        with self.lock:
            self._untag(self.get_tag(tag_name, strict=True), self.require_build(nvr),
                        user or self.bodhi_user)

    # ------------------------------------------------------------------ repos
    def _tag_changed(self, tag: Tag) -> None:
        """Kojira before 1.35: regenerate the repos of build tags that see this
        tag. Koji 1.35 makes repos only on request (script.repos_on_request)."""
        if self.quiet or self.script.repos_on_request:
            return
        build_tags = {t.build_tag for t in self.targets.values() if not t.deleted}
        for tid in build_tags:
            bt = self.tags.get(tid)
            if bt and bt.deleted_event is None and tag.id in {a.id for a in self.ancestors(bt)}:
                self._request_regen(bt)

    def _request_regen(self, tag: Tag) -> None:
        if tag.id in self._regen_running:
            self._regen_dirty.add(tag.id)
            return
        self._regen_running.add(tag.id)
        repo = self._repo_init(tag)
        self.after(self.script.repo_delay, "repo_done", repo.id)

    def _repo_init(self, tag: Tag) -> Repo:
        repo = Repo(self._id("repo"), tag.id, self._new_event(), time.time())
        self.repos[repo.id] = repo
        self.emit("buildsys.repo.init",
                  messages.repo_body(self.base_url, {"id": tag.id, "name": tag.name}, repo.id))
        return repo

    def _repo_ready(self, repo: Repo) -> None:
        for other in self.repos.values():
            if other.tag_id == repo.tag_id and other.state == RS["READY"]:
                other.state = RS["EXPIRED"]
        repo.state = RS["READY"]

    def _repo_done(self, repo_id: int) -> None:
        with self.lock:
            repo = self.repos[repo_id]
            tag = self.tags[repo.tag_id]
            self._regen_running.discard(tag.id)
            if tag.deleted_event is not None:
                repo.state = RS["DELETED"]
                return
            self._repo_ready(repo)
            self._fulfil_repo_requests(repo)
            self._new_event()
            self.emit("buildsys.repo.done",
                      messages.repo_body(self.base_url, {"id": tag.id, "name": tag.name},
                                         repo.id))
            if tag.id in self._regen_dirty:
                self._regen_dirty.discard(tag.id)
                self._request_regen(tag)

    # ---------------------------------------------- Koji 1.35 repo requests
    def tag_last_change(self, tag: Tag) -> int:
        """The last event that changed what `tag` (with inheritance) holds."""
        events = [tag.create_event]
        for t in self.ancestors(tag):
            for li in self._by_tag.get(t.id, ()):
                events.append(li.create_event)
                if li.revoke_event is not None:
                    events.append(li.revoke_event)
        return max(events)

    def request_repo(self, user: User, tag: Tag, min_event: Any = None,
                     at_event: Any = None) -> dict[str, Any]:
        """repo.request: a READY repo new enough, else a (deduplicated) request
        that kojira serves by making a repo."""
        if at_event is not None and min_event is not None:
            raise koji.ParameterError("The min_event and at_event options conflict")
        if at_event is None:
            if min_event is None or min_event == "last":
                min_event = self.tag_last_change(tag)
            else:
                min_event = int(min_event)
        ready = [r for r in self.repos.values() if r.tag_id == tag.id
                 and r.state == RS["READY"] and (r.create_event >= min_event
                                                 if at_event is None else
                                                 r.create_event == at_event)]
        if ready:
            return {"repo": self.repo_info(max(ready, key=lambda r: r.create_event)),
                    "request": None, "duplicate": False}
        for req in self.repo_requests.values():
            if req["tag_id"] == tag.id and req["active"] and (
                    req["at_event"] == at_event if at_event is not None
                    else req["min_event"] is not None and req["min_event"] >= min_event):
                return {"repo": None, "request": dict(req), "duplicate": True}
        now = time.time()
        req_id = len(self.repo_requests) + 1
        req = {"id": req_id, "owner": user.id, "owner_name": user.name,
               "priority": koji.PRIO_DEFAULT, "tag_id": tag.id, "tag_name": tag.name,
               "at_event": at_event, "min_event": None if at_event is not None else min_event,
               "opts": {}, "create_time": iso(now), "create_ts": now, "update_time": iso(now),
               "update_ts": now, "active": True, "task_id": None, "task_state": None,
               "tries": 0, "repo_id": None}
        self.repo_requests[req_id] = req
        self._request_regen(tag)
        return {"repo": None, "request": dict(req), "duplicate": False}

    def check_repo_request(self, req_id: int) -> dict[str, Any]:
        req = self.repo_requests.get(int(req_id))
        if req is None:
            raise koji.GenericError("No such request")
        repo = self.repos.get(req["repo_id"]) if req["repo_id"] else None
        return {"repo": self.repo_info(repo) if repo else None, "request": dict(req)}

    def _fulfil_repo_requests(self, repo: Repo) -> None:
        for req in self.repo_requests.values():
            if req["active"] and req["tag_id"] == repo.tag_id and (
                    repo.create_event >= (req["min_event"] or 0) if req["at_event"] is None
                    else repo.create_event == req["at_event"]):
                req.update(active=False, repo_id=repo.id, update_ts=time.time(),
                           update_time=iso(time.time()))

    def repo_info(self, repo: Repo) -> dict[str, Any]:
        tag = self.tags[repo.tag_id]
        return {"id": repo.id, "state": repo.state, "create_event": repo.create_event,
                "create_ts": repo.create_ts, "creation_time": iso(repo.create_ts),
                "creation_ts": repo.create_ts, "dist": repo.dist, "task_id": None,
                "task_state": None, "tag_id": tag.id, "tag_name": tag.name,
                "begin_event": repo.create_event, "begin_ts": repo.create_ts,
                "end_event": None, "end_ts": None, "state_time": iso(repo.create_ts),
                "state_ts": repo.create_ts, "custom_opts": None,
                "opts": {"src": False, "debuginfo": False, "separate_src": False,
                         "maven": False}}

    def seed_repo(self, tag_name: str) -> None:
        """A READY repo for a build tag, without messages (world history)."""
        tag = self.get_tag(tag_name, strict=True)
        repo = Repo(self._id("repo"), tag.id, self._new_event(), time.time())
        self.repos[repo.id] = repo
        self._repo_ready(repo)

    # ---------------------------------------------------------------- tasks
    def task_info(self, t: Task, request: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": t.id, "state": t.state, "create_time": iso(t.create_ts),
            "create_ts": t.create_ts, "start_time": iso(t.start_ts), "start_ts": t.start_ts,
            "completion_time": iso(t.completion_ts), "completion_ts": t.completion_ts,
            "channel_id": t.channel_id, "host_id": t.host_id, "parent": t.parent,
            "label": t.label, "waiting": t.waiting, "awaited": t.awaited, "owner": t.owner_id,
            "method": t.method, "arch": t.arch, "priority": t.priority, "weight": t.weight,
        }
        if request:
            info["request"] = list(t.request)
        return info

    def children(self, t: Task) -> list[Task]:
        return [self.tasks[c] for c in self._children.get(t.id, ())]

    def full_task_info(self, t: Task) -> dict[str, Any]:
        """The task as the messaging plugin's get_full_task_info renders it."""
        info = self.task_info(t, request=True)
        for key in ("create_time", "start_time", "completion_time"):
            info[key] = {"create_time": t.create_ts, "start_time": t.start_ts,
                         "completion_time": t.completion_ts}[key]
            if info[key] is not None:
                info[key] = float(int(info[key]))
        info["host_name"] = self.hosts.get(t.host_id) if t.host_id else None
        info["url"] = f"{self.base_url}/koji/taskinfo?taskID={t.id}"
        info["result"] = t.result if t.state == ST["CLOSED"] else None
        info["owner"] = self.users[t.owner_id].name
        info["children"] = [self.full_task_info(c) for c in self.children(t)]
        return info

    def _task_state(self, t: Task, new: str) -> None:
        old = t.state_name
        t.state = ST[new]
        self.changed()
        now = time.time()
        if new == "OPEN":
            t.start_ts = now
        if new in ("CLOSED", "CANCELED", "FAILED"):
            t.completion_ts = now
        if t.parent is None and t.method == "build":
            opts = t.request[2] if len(t.request) > 2 and isinstance(t.request[2], dict) else {}
            if opts.get("scratch") or self.task_messages == "all":
                self.emit("buildsys.task.state.change", messages.task_state_body(
                    self.base_url, self.files_base_url, self.full_task_info(t), old, new))

    def new_task(self, method: str, request: list[Any], owner: User, priority: int,
                 package: str | None = None, parent: Task | None = None,
                 label: str | None = None, arch: str = "noarch") -> Task:
        t = Task(self._id("task"), method, list(request), owner.id, priority, time.time(),
                 parent=parent.id if parent else None, label=label, arch=arch, package=package)
        self.tasks[t.id] = t
        if parent is not None:
            self._children.setdefault(parent.id, []).append(t.id)
        return t

    def get_task(self, task_id: Any, strict: bool = True) -> Task | None:
        try:
            task_id = int(task_id)
        except (TypeError, ValueError):
            raise koji.ParameterError(f"Invalid type for value '{task_id}'") from None
        t = self.tasks.get(task_id)
        if t is None and strict:
            raise koji.GenericError(f"No such task: {task_id}")
        return t

    def task_result(self, t: Task) -> Any:
        if t.state_name == "CANCELED":
            raise koji.GenericError(f"Task {t.id} is canceled")
        if t.state_name not in ("CLOSED", "FAILED"):
            raise koji.GenericError(f"Task {t.id} is not finished")
        if t.fault:
            code, text = t.fault
            raise _fault_exception(code, text)
        return t.result

    # -------------------------------------------------------------- build tasks
    def submit_build(self, user: User, src: str, target: Target | str, opts: dict[str, Any],
                     priority: int) -> Task:
        """A build task; like the real hub, any target name is taken (the task
        fails if there is no such target)."""
        m = SCM_RE.match(src)
        package = m.group("name") if m else src.split("/")[-1]
        name = target if isinstance(target, str) else target.name
        t = self.new_task("build", [src, name, opts], user, priority, package=package)
        self.builds_submitted.append({"task_id": t.id, "src": src, "target": name,
                                      "opts": dict(opts), "package": package})
        self.after(self.script.start_delay, "start_build", t.id)
        return t

    def _start_build(self, task_id: int) -> None:
        with self.lock:
            t = self.tasks[task_id]
            if t.state != ST["FREE"]:
                return
            t.host_id = self.rng_build.choice(sorted(self.hosts))
            self._task_state(t, "OPEN")
            src, target_name, opts = t.request[0], t.request[1], t.request[2] or {}
            package = t.package or "unknown"
            outcome = self.script.next_outcome(package)
            srpm = self.new_task("buildSRPMFromSCM", [src, 0, {}], self.users[t.owner_id],
                                 t.priority - 1, package, parent=t, label="srpm")
            srpm.host_id, srpm.state, srpm.start_ts = t.host_id, ST["OPEN"], time.time()
            failure = self._check_source(src)
            target = self.get_target(target_name)
            if failure is None and target is None:
                failure = (koji.GenericError.faultCode, f"No such build target: {target_name}")
            if failure is None and opts.get("draft") and opts.get("scratch"):
                failure = (koji.GenericError.faultCode,
                           "Draft and scratch cannot be used together")
            if failure is not None:
                self._fail_task(t, failure)
                return
            assert target is not None
            base = self.builds[self.sources[src]]
            release = self._rebuilt_release(base.release, target)
            srpm.state, srpm.completion_ts = ST["CLOSED"], time.time()
            srpm.result = {"srpm": f"tasks/{srpm.id % 10000}/{srpm.id}/"
                                   f"{base.name}-{base.version}-{release}.src.rpm",
                           "logs": [], "brootid": srpm.id, "source": {"source": src, "url": src}}
            for arch in BUILD_ARCHES:
                child = self.new_task("buildArch", [f"{base.name}.src.rpm", 0, arch, True, {}],
                                      self.users[t.owner_id], t.priority - 1, package,
                                      parent=t, label=arch, arch=arch)
                child.host_id, child.state, child.start_ts = t.host_id, ST["OPEN"], time.time()
            if not opts.get("scratch"):
                existing = self.get_build(f"{base.name}-{base.version}-{release}")
                # The hub's new_build (host.initBuild): a draft may not share its target
                # NVR with any build; a failed/canceled build of the NVR may be rebuilt
                # (Koji recycles it).
                if existing is not None and not existing.draft and opts.get("draft"):
                    self._fail_task(t, (koji.GenericError.faultCode,
                                        f"Target build already exists: {existing.nvr} "
                                        f"(id={existing.id})"))
                    return
                if existing is not None and not existing.draft and existing.state in (
                        BS["COMPLETE"], BS["BUILDING"]):
                    state = BS[existing.state]
                    data = {"name": base.name, "version": base.version, "release": release,
                            "epoch": None, "source": src, "task_id": t.id}
                    self._fail_task(t, (koji.GenericError.faultCode,
                                        f"Build already exists (id={existing.id}, "
                                        f"state={state}): {data!r}"))
                    return
                bid = self._id("build")
                b = Build(bid, self.package_id(base.name), base.name, base.version,
                          koji.gen_draft_release(release, bid) if opts.get("draft") else release,
                          t.owner_id, self._new_event(), time.time(), task_id=t.id, source=src,
                          draft=bool(opts.get("draft")), extra={"source": {"original_url": src},
                          **({"custom_user_metadata": opts["custom_user_metadata"]}
                             if opts.get("custom_user_metadata") else {})})
                self.add_build(b)
                t.build_id = bid
                self._set_build_state(b, BS["BUILDING"])
            if outcome == "HANG":
                return
            self.after(self.script.duration(package), "finish_build", task_id, outcome)

    def _rebuilt_release(self, release: str, target: Target) -> str:
        dist = self.tag_extra(self.tags[target.build_tag]).get("rpm.macro.dist")
        if not dist:
            return release
        new, n = re.subn(r"\.(fc\d+|eln\d+)", dist, release, count=1)
        return new if n else release + dist

    def _check_source(self, src: str) -> tuple[int, str] | None:
        m = SCM_RE.match(src)
        if m is None:
            return (koji.BuildError.faultCode,
                    f"Invalid scm url or srpm path: {src}")
        if m.group("host") not in ALLOWED_SCM_HOSTS:
            return (koji.BuildError.faultCode,
                    f"SCM: {m.group('host')}:/rpms/{m.group('name')}.git is not in the list "
                    "of allowed SCMs")
        if src not in self.sources:
            return (koji.BuildError.faultCode,
                    f'Error running GIT command "git checkout {m.group("commit")}", see '
                    "checkout.log for details")
        return None

    def _finish_build(self, task_id: int, outcome: str) -> None:
        with self.lock:
            t = self.tasks[task_id]
            if t.state != ST["OPEN"]:
                return
            if outcome == "CANCELED":
                self.cancel_task(t)
                return
            if outcome == "FAILED":
                package = t.package or ""
                arch = self.rng_build.choice(BUILD_ARCHES)
                text = self.script.fail_reasons.get(package) or (
                    f"error building package (arch {arch}), mock exited with status 1; see "
                    "build.log or root.log for more information")
                self._fail_task(t, (koji.BuildError.faultCode, text), failed_arch=arch)
                return
            for child in self.children(t):
                if not child.finished:
                    child.state, child.completion_ts = ST["CLOSED"], time.time()
            if t.build_id is not None:
                b = self.builds[t.build_id]
                self._set_build_state(b, BS["COMPLETE"])
                target = self.get_target(t.request[1])
                if target is not None:
                    dest = self.tags[target.dest_tag]
                    tag_task = self.new_task("tagBuild", [dest.id, b.id, False, None, True],
                                             self.users[t.owner_id], t.priority - 1,
                                             t.package, parent=t, label="tag")
                    tag_task.host_id, tag_task.start_ts = t.host_id, time.time()
                    if not self.is_tagged(dest, b):
                        self._tag(dest, b, self.users[t.owner_id])
                    tag_task.state, tag_task.completion_ts = ST["CLOSED"], time.time()
            self._task_state(t, "CLOSED")

    def _fail_task(self, t: Task, fault: tuple[int, str], failed_arch: str | None = None) -> None:
        """Fail a build task: the failing child (the srpm step, or one arch) carries
        the fault, the other unfinished children are canceled (fail-fast)."""
        culprit = failed_arch or "srpm"
        for child in self.children(t):
            if child.finished:
                continue
            if child.label == culprit:
                child.fault, child.state = fault, ST["FAILED"]
            else:
                child.state = ST["CANCELED"]
            child.completion_ts = time.time()
        t.fault = fault
        if t.build_id is not None:
            self._set_build_state(self.builds[t.build_id], BS["FAILED"])
        self._task_state(t, "FAILED")

    def cancel_task(self, t: Task, recurse: bool = True) -> bool:
        if t.state_name == "CANCELED":
            return True
        if t.finished:
            return False
        if recurse:
            for child in self.children(t):
                self.cancel_task(child)
        if t.build_id is not None and self.builds[t.build_id].state == BS["BUILDING"]:
            self._set_build_state(self.builds[t.build_id], BS["CANCELED"])
        self._task_state(t, "CANCELED")
        return True

    # -------------------------------------------------------------- tag tasks
    def submit_tag_task(self, user: User, tag: Tag, b: Build) -> Task:
        t = self.new_task("tagBuild", [tag.id, b.id, False, None], user, 10, package=b.name)
        self.after(self.script.tag_task_delay, "tag_task", t.id)
        return t

    def _run_tag_task(self, task_id: int) -> None:
        with self.lock:
            t = self.tasks[task_id]
            if t.state != ST["FREE"]:
                return
            t.host_id = next(iter(sorted(self.hosts)))
            self._task_state(t, "OPEN")
            tag = self.tags.get(t.request[0])
            b = self.builds[t.request[1]]
            try:
                if tag is None or tag.deleted_event is not None:
                    raise koji.GenericError(f"No such tagInfo: {t.request[0]}")
                self._tag(tag, b, self.users[t.owner_id])
            except koji.GenericError as exc:
                t.fault = (exc.faultCode, str(exc))
                self._task_state(t, "FAILED")
                return
            self._task_state(t, "CLOSED")

    # ------------------------------------------------------------- side tags
    def create_side_tag(self, user: User, base: Tag, debuginfo: bool = False,
                        suffix: str | None = None) -> Tag:
        name = f"{base.name}-side-{self._next['tag']}"
        if suffix:
            name += f"-{suffix}"
        extra: dict[str, Any] = {"sidetag": True, "sidetag_user": user.name,
                                 "sidetag_user_id": user.id}
        if debuginfo:
            extra["with_debuginfo"] = True
        tag = Tag(self._id("tag"), name, base.id, self._new_event(), arches=base.arches,
                  extra=extra)
        self.tags[tag.id] = tag
        target = Target(self._id("target"), name, tag.id, tag.id)
        self.targets[target.id] = target
        self.side_tags_created.append(name)
        # Koji 1.35's plugin makes no repo (unless trigger_new_repo, which only
        # requests one); before, the base tag's current repo was copied:
        # repo.init is announced, the repo is READY at once, no repo.done.
        if self.script.repos_on_request:
            pass
        elif any(r.tag_id == base.id and r.state == RS["READY"] for r in self.repos.values()):
            self._repo_ready(self._repo_init(tag))
        else:
            self._request_regen(tag)
        return tag

    def remove_side_tag(self, tag: Tag) -> None:
        target = self.get_target(tag.name)
        if target is None:
            raise koji.GenericError("Target is missing for sidetag")
        if target.build_tag != tag.id or target.dest_tag != tag.id:
            raise koji.GenericError("Target does not match sidetag")
        target.deleted = True
        event = self._new_event()
        tag.deleted_event = event
        for li in self._by_tag.get(tag.id, ()):
            if li.revoke_event is None:
                li.revoke_event = event
        self.side_tags_removed.append(tag.name)

    def side_tag_owner(self, tag: Tag) -> int | None:
        return tag.extra.get("sidetag_user_id")


def _fault_exception(code: int, text: str) -> Exception:
    from xmlrpc.client import Fault

    err = koji.convertFault(Fault(code, text))
    return err if isinstance(err, Exception) else koji.GenericError(text)
