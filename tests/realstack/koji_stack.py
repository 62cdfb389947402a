"""The Koji half of the real stack: PostgreSQL + hub + builder + kojira,
seeded with a Fedora-shaped layout.

    stack = KojiStack.start()          # ~seconds; stack.stop() ends what it started
    stack.hub.url                      # http://127.0.0.1:<port>/kojihub
    stack.session("ebs")               # a password-logged-in ClientSession
    stack.builder.script("bash", "fail", "succeed")
    stack.rawhide_source("bash")       # the SCM URL of bash's Rawhide build

Layout (Rawhide 45, ELN 150, like the simulator's seed):

* ``f45`` (the trigger tag ebs's sandbox config names), ``f45-build``
  (dist ``.fc45``), ``f45-updates-candidate``, target ``rawhide``;
  every package has a Rawhide build ``<name>-<version>-<release>.fc45``
  tagged in ``f45`` (a real build: build task, RPMs, tagBuild).
* ``eln`` (stable), ``eln-build`` (parent eln, dist ``.eln150``, side tags
  are made of it), ``eln-updates-candidate``; target ``eln``:
  eln-build → eln-updates-candidate. Each package has an older ELN build
  ``<name>-<version>-<release-1>.eln150`` in ``eln``.
* Bodhi's tags of the ELN release: ``eln-signing-pending``,
  ``eln-updates-testing``, ``eln-updates-testing-pending``,
  ``eln-updates-pending``, ``eln-override`` (parent eln).
* Package lists on ``f45`` and ``eln`` (side tags inherit them).

Users (password = ``stack.hub.passwords[name]``): ``kojiadmin`` (admin),
``ebs`` (no permissions: a normal packager, so no sidetag_admin),
``kojira`` (repo), host ``builder-1``. ``add_user`` makes more.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import koji

from ebs.devstack.waiting import wait_until
from tests.realstack.hubenv import realstack_dir
from tests.realstack.koji_builder import StandInBuilder, scm_url
from tests.realstack.koji_hub import ADMIN, KojiHub
from tests.realstack.kojira import StandInKojira
from tests.realstack.postgres import PostgresServer

RAWHIDE = 45
ELN = 150
TRIGGER_TAG = f"f{RAWHIDE}"
EBS_USER = "ebs"
# A small Fedora-like set (name, version, rawhide release): enough for every test,
# small enough to seed in a couple of seconds.
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("bash", "5.2.37", "1"), ("sed", "4.9", "4"), ("grep", "3.11", "10"),
    ("gawk", "5.3.1", "1"), ("tar", "1.35", "6"), ("make", "4.4.1", "10"),
    ("xz", "5.8.1", "1"), ("findutils", "4.10.0", "5"),
)
BODHI_TAG_SUFFIXES = ("signing-pending", "updates-testing", "updates-testing-pending",
                      "updates-pending", "override")


@dataclass
class KojiStack:
    pg: PostgresServer
    hub: KojiHub
    builder: StandInBuilder
    kojira: StandInKojira
    workdir: Path
    packages: tuple[tuple[str, str, str], ...] = PACKAGES
    started_in: float = 0.0
    rawhide_nvrs: dict[str, str] = field(default_factory=dict)
    eln_nvrs: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.hub.url

    @classmethod
    def start(cls, source: Path, packages: tuple[tuple[str, str, str], ...] = PACKAGES,
              sidetag_suffixes: tuple[str, ...] = (),
              policy: dict[str, str] | None = None) -> KojiStack:
        """policy: hub policies replacing koji_hub.DEFAULT_POLICY's of the same name."""
        t0 = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="ebs-realstack-"))
        workdir.chmod(0o755)
        pg = PostgresServer(workdir / "pg")
        hub = KojiHub(pg, source, workdir=workdir / "hub", sidetag_suffixes=sidetag_suffixes,
                      policy=policy)
        builder = StandInBuilder(hub, workdir / "builder",
                                 rpm_cache=realstack_dir() / "rpm-cache")
        kojira = StandInKojira(hub, on_pass=builder.wake)
        builder.rpm_cache_names = {name for name, _v, _r in packages}
        stack = cls(pg, hub, builder, kojira, workdir, packages)
        try:
            pg.start()
            hub.start()
            hub.add_user(EBS_USER)
            builder.start()
            kojira.start()
            stack._layout()
            stack._seed_builds()
        except BaseException:
            stack.stop()
            raise
        stack.started_in = time.monotonic() - t0
        return stack

    def stop(self) -> None:
        for part in (self.kojira, self.builder):
            try:
                part.stop()
            except Exception:
                pass
        self.hub.stop()
        self.pg.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------ sessions
    def session(self, user: str | None = EBS_USER) -> koji.ClientSession:
        return self.hub.session(user)

    def admin(self) -> koji.ClientSession:
        return self.hub.session(ADMIN)

    def add_user(self, name: str, perms: tuple[str, ...] = ()) -> str:
        return self.hub.add_user(name, perms=perms)

    def koji_config_dict(self, **overrides: Any) -> dict[str, Any]:
        """The `configuration.koji` section of an ebs config for this hub."""
        return {"server": self.hub.url, "weburl": self.hub.weburl, "auth": "none",
                "trigger_tag": TRIGGER_TAG, "build_target": "eln", "stable_tag": "eln",
                "username": EBS_USER, **overrides}

    # -------------------------------------------------------------- layout
    def _layout(self) -> None:
        admin = self.admin()
        try:
            arches = "x86_64"
            fc, eln = f".fc{RAWHIDE}", f".eln{ELN}"
            admin.createTag(TRIGGER_TAG, arches=arches)
            admin.createTag(f"{TRIGGER_TAG}-build", parent=TRIGGER_TAG, arches=arches,
                            extra={"rpm.macro.dist": fc})
            admin.createTag(f"{TRIGGER_TAG}-updates-candidate", parent=TRIGGER_TAG)
            admin.createBuildTarget("rawhide", f"{TRIGGER_TAG}-build",
                                    f"{TRIGGER_TAG}-updates-candidate")
            admin.createTag("eln", arches=arches)
            admin.createTag("eln-build", parent="eln", arches=arches,
                            extra={"rpm.macro.dist": eln, "rpm.macro.rhel": "11",
                                   "rpm.macro.eln": str(ELN)})
            admin.createTag("eln-updates-candidate", parent="eln")
            admin.createBuildTarget("eln", "eln-build", "eln-updates-candidate")
            for suffix in BODHI_TAG_SUFFIXES:
                admin.createTag(f"eln-{suffix}", parent="eln")
            with admin.multicall(strict=True) as mc:
                for name, _v, _r in self.packages:
                    mc.packageListAdd(TRIGGER_TAG, name, owner=ADMIN)
                    mc.packageListAdd("eln", name, owner=ADMIN)
        finally:
            admin.logout()

    def add_package(self, name: str) -> None:
        """Put `name` on the package lists (a package a test makes up)."""
        admin = self.admin()
        try:
            admin.packageListAdd(TRIGGER_TAG, name, owner=ADMIN)
            admin.packageListAdd("eln", name, owner=ADMIN)
        finally:
            admin.logout()

    def rawhide_source(self, name: str) -> str:
        for n, version, release in self.packages:
            if n == name:
                return scm_url(n, version, release)
        raise KeyError(name)

    def _seed_builds(self) -> None:
        """A Rawhide build per package in the trigger tag and an older ELN build
        in eln, made by real build tasks, then tagged (as Bodhi would)."""
        jobs: list[tuple[str, str, str]] = []  # (src, target, final tag)
        for name, version, release in self.packages:
            head = release.split(".")[0]
            old = str(max(int(head) - 1, 0)) if head.isdigit() else "0"
            jobs.append((self.builder.register_source(name, version, release),
                         "rawhide", TRIGGER_TAG))
            jobs.append((self.builder.register_source(name, version, old), "eln", "eln"))
        # skip_tag: they are tagged into their final tags below, as Bodhi would
        tasks = self.run_builds([(src, target) for src, target, _ in jobs],
                                opts={"skip_tag": True})
        admin = self.admin()
        try:
            with admin.multicall(strict=True) as mc:
                calls = [mc.listBuilds(taskID=task_id) for task_id in tasks]
            builds = [c.result[0] for c in calls]
            with admin.multicall(strict=True) as mc:
                for (_src, _target, tag), build in zip(jobs, builds, strict=True):
                    mc.tagBuildBypass(tag, build["build_id"])
        finally:
            admin.logout()
        for (_src, target, _tag), build in zip(jobs, builds, strict=True):
            (self.rawhide_nvrs if target == "rawhide" else self.eln_nvrs)[build["name"]] = \
                build["nvr"]

    def run_builds(self, jobs: list[tuple[str, str]], timeout: float = 60.0,
                   opts: dict[str, Any] | None = None) -> list[int]:
        """Submit (src, target) builds as the admin and wait for them all to
        close; returns the task ids. Raises if any fails."""
        admin = self.admin()
        try:
            with admin.multicall(strict=True) as mc:
                calls = [mc.build(src, target, opts or {}) for src, target in jobs]
            tasks = [int(c.result) for c in calls]
            self.builder.wake()
            self.wait_tasks(admin, tasks, timeout)
            return tasks
        finally:
            admin.logout()

    @staticmethod
    def wait_tasks(session: koji.ClientSession, tasks: list[int], timeout: float = 60.0,
                   require_closed: bool = True) -> list[dict[str, Any]]:
        finished = {koji.TASK_STATES[s] for s in ("CLOSED", "FAILED", "CANCELED")}
        infos: list[dict[str, Any]] = []

        def all_finished() -> bool:
            nonlocal infos
            with session.multicall(strict=True) as mc:
                calls = [mc.getTaskInfo(t) for t in tasks]
            infos = [c.result for c in calls]
            return all(i["state"] in finished for i in infos)

        wait_until(all_finished, timeout, lambda: f"tasks {tasks} to finish (last {infos})",
                   interval=0.1)
        if require_closed:
            bad = [i for i in infos if i["state"] != koji.TASK_STATES["CLOSED"]]
            for info in bad:
                try:
                    session.getTaskResult(info["id"])
                except koji.GenericError as exc:
                    raise AssertionError(f"task {info['id']} {info['method']}: {exc}") \
                        from exc
            if bad:
                raise AssertionError(f"tasks did not close: {bad}")
        return infos
