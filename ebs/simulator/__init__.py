"""A Koji (and Bodhi) simulator speaking the real wire protocols.

One HTTP server process: the unmodified ``koji.ClientSession`` talks to
``/kojihub`` (XML-RPC, multicall, Koji's fault codes), the Bodhi simulator sits
under ``/bodhi``, content-resolver package lists under ``/content-resolver``,
and ``/_sim`` scripts it. It is the test double for ebs and the sandbox of
``ebs dev``.

    with Simulator(seed=1, sink=ListSink()) as sim:
        session = koji.ClientSession(sim.hub_url)
        sim.script.outcomes["bash"] = ["FAILED", "CLOSED"]
        ...

Fidelity notes (where the simulator follows Koji/Fedora on purpose):
- buildsys.task.state.change is published only for scratch parent tasks, as
  Fedora's koji-fedoramessaging plugin does; real (draft) builds announce
  themselves with buildsys.build.state.change (carrying task_id). Pass
  ``task_messages="all"`` to also get task messages for every build task.
- tagBuild creates a tagBuild task (returns its id); the tag happens when the
  task runs. "already tagged" is that task failing with a TagError.
- createSideTag copies the base tag's ready repo (repo.init only, READY at once).
- Anonymous sessions act as the default user ("elnbuildsync"); Kerberos is not
  simulated.

Persistence: with ``state_file`` (``ebs sim --state-file PATH``) the world is
loaded from PATH if it exists (instead of seeding) and saved back atomically
soon after every change and on stop; builds, tag tasks and repo regenerations
that were pending resume, and Bodhi updates waiting to go stable still do.
Not kept: the call logs and messages not yet delivered when the process died.

Simplifications: no package lists (tagging never fails with "not in list"),
no policies beyond side-tag ownership and the sidetag_admin check on extra,
build opts wait_repo/fail_fast are recorded but do not change timing, no
newRepo tasks (repos regenerate on the scheduler, announced by repo.init/done).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import koji

from ebs.devstack.waiting import wait_until

from .bodhi import BodhiSim
from .hub import CallRecord, Hub
from .model import Build
from .persist import Persister, StateFileError, encode_state, load_state, wrap_state
from .script import FaultRule, Script
from .seed import WorldLayout, seed_world
from .server import SimApp, serve
from .sinks import FanoutSink, ListSink, MessageSink, NullSink, Published
from .snapshot import StateError, layout_state, restore_layout, restore_world, world_state
from .world import DEFAULT_USER, World

log = logging.getLogger(__name__)

__all__ = [
    "Simulator", "MessageSink", "ListSink", "NullSink", "FanoutSink", "Published", "FaultRule",
    "Script", "SimKojiView", "StateFileError", "WorldLayout",
]


class SimKojiView:
    """The Bodhi simulator's window on Koji (ebs.simulator.bodhi.KojiView)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def tagged_nvrs(self, tag: str) -> list[str]:
        w = self._sim.world
        with w.lock:
            t = w.get_tag(tag)
            if t is None:
                return []
            return [b["nvr"] for b in w.read_tagged(t, latest=True)]

    def tag_nvr(self, tag: str, nvr: str) -> None:
        self._sim.world.tag_build_now(tag, nvr, self._sim.world.bodhi_user)

    def untag_nvr(self, tag: str, nvr: str) -> None:
        self._sim.world.untag_build_now(tag, nvr, self._sim.world.bodhi_user)

    def tag_exists(self, tag: str) -> bool:
        w = self._sim.world
        with w.lock:
            return w.get_tag(tag) is not None

    def remove_side_tag(self, tag: str) -> None:
        w = self._sim.world
        with w.lock:
            w.remove_side_tag(w.get_tag(tag, strict=True))


class Simulator:
    def __init__(self, seed: int | str = 0, sink: MessageSink | None = None, *,
                 layout: WorldLayout | None = None, task_messages: str = "scratch",
                 default_user: str = DEFAULT_USER,
                 default_user_perms: Iterable[str] = ("sidetag_admin",),
                 bodhi: bool = True, state_file: str | os.PathLike[str] | None = None,
                 save_interval: float = 0.5) -> None:
        """state_file: load the world from this file if it exists, save it there
        (at most every `save_interval` seconds, and on stop). A file that cannot
        be used raises StateFileError."""
        self.seed = seed
        self.sink: MessageSink = sink if sink is not None else NullSink()
        self._layout_template = layout
        self._task_messages = task_messages
        self._default_user = default_user
        self._default_user_perms = tuple(default_user_perms)
        self._want_bodhi = bodhi
        self.state_file = Path(state_file) if state_file is not None else None
        self._save_interval = save_interval
        self._persister: Persister | None = None
        self._bodhi_state: dict[str, Any] | None = None  # to restore when Bodhi mounts
        self.restored = False  # the world came from the state file
        self.app = SimApp(self)
        self._server: Any = None
        self.host = "127.0.0.1"
        self.port = 0
        self.bodhi_app: Any = None  # a BodhiSim once started with bodhi=True
        self.world: World
        self.hub: Hub
        self.layout: WorldLayout
        self._build_world(load=True)

    # ------------------------------------------------------------- lifecycle
    def _build_world(self, load: bool = False) -> None:
        world = World(self.seed, self.sink, base_url=self.url if self.port else "",
                      default_user=self._default_user,
                      default_user_perms=self._default_user_perms,
                      task_messages=self._task_messages)
        saved = load_state(self.state_file) if load and self.state_file is not None else None
        if saved is not None:
            self.layout = self._restore(world, saved)
            self.restored = True
        else:
            template = self._layout_template or WorldLayout()
            self.layout = seed_world(world, WorldLayout(template.rawhide, template.eln,
                                                        template.packages))
            self._bodhi_state = None
            self.restored = False
        self.world = world
        self.hub = Hub(world, stall=self.app.stopping.wait)
        if self._persister is not None:
            world.on_change = self._persister.mark
            self._persister.mark()

    def _restore(self, world: World, saved: dict[str, Any]) -> WorldLayout:
        try:
            layout = restore_layout(saved["layout"])
            restore_world(world, saved["koji"], self._default_user, self._default_user_perms)
            if saved.get("bodhi") is not None:
                BodhiSim.check_state(saved["bodhi"])
        except (StateError, ValueError) as exc:
            raise StateFileError(f"simulator state file {self.state_file} is corrupt: "
                                 f"{exc}") from None
        if saved.get("seed") != self.seed:
            log.warning("simulator: %s was saved with seed %r, not %r; its world is used",
                        self.state_file, saved.get("seed"), self.seed)
        self._bodhi_state = saved.get("bodhi")
        log.info("simulator: world restored from %s (last event %d, %d tasks, %d pending "
                 "actions)", self.state_file, world.last_event, len(world.tasks),
                 len(world.timed))
        return layout

    def _state_text(self) -> str:
        """The whole simulator state as JSON (Bodhi's lock, then the world's, as
        Bodhi takes them when it tags builds)."""
        world, bodhi = self.world, self.bodhi_app
        if bodhi is None:
            with world.lock:
                return encode_state(wrap_state(self.seed, layout_state(self.layout),
                                               world_state(world), self._bodhi_state))
        with bodhi.lock, world.lock:
            return encode_state(wrap_state(self.seed, layout_state(self.layout),
                                           world_state(world), bodhi.state()))

    def save_state(self) -> None:
        """Save the state file now (StateFileError if it cannot be written)."""
        if self.state_file is None:
            raise ValueError("this simulator has no state file")
        if self._persister is not None:
            self._persister.save_now()
        else:
            Persister(self.state_file, self._state_text).save_now()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        if self.state_file is not None:
            persister = Persister(self.state_file, self._state_text, self._save_interval)
            persister.save_now()  # fail early (StateFileError) if the file is not writable
            self._persister = persister
            self.world.on_change = persister.mark
        self._server = serve(self.app, host, port)
        self.host, self.port = host, self._server.server_port
        self.world.base_url = self.url
        self.world.start()
        self._mount_bodhi()
        if self._persister is not None:
            self._persister.start()
        self._server.start()
        log.info("simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        self.app.stopping.set()
        # The clocks stop first: what is pending stays pending (and saved), even
        # while the HTTP server takes its time (~0.1 s) to finish.
        if self.bodhi_app is not None:
            self.bodhi_app.close()  # no stable push after this; pending ones stay saved
        self.world.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._persister is not None:
            self._persister.stop()  # the final save
            self._persister = None
            self.world.on_change = None
            if self.bodhi_app is not None:
                self._bodhi_state = self.bodhi_app.state()
        self._close_bodhi()

    def __enter__(self) -> Simulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, seed: int | str | None = None) -> None:
        """A fresh world on the same server (same seed unless given)."""
        if seed is not None:
            self.seed = seed
        self.world.stop()
        self._close_bodhi()
        self._bodhi_state = None
        self._build_world()
        if self._server is not None:
            self.world.base_url = self.url
            self.world.start()
            self._mount_bodhi()

    def _mount_bodhi(self) -> None:
        if not self._want_bodhi:
            return
        seed = self.seed if isinstance(self.seed, int) else sum(self.seed.encode())
        bodhi = BodhiSim(SimKojiView(self), seed=seed)
        if self._bodhi_state is not None:
            bodhi.restore_state(self._bodhi_state)  # checked when the file was loaded
        self.bodhi_app = bodhi
        if self._persister is not None:
            bodhi.on_change = self._persister.mark
            self._persister.mark()

    def _close_bodhi(self) -> None:
        if self.bodhi_app is not None:
            self.bodhi_app.close()
        self.bodhi_app = None

    # ------------------------------------------------------------------ urls
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def koji_user(self) -> str:
        """The Koji user anonymous sessions act as (ebs's configuration.koji.username)."""
        return self._default_user

    @property
    def hub_url(self) -> str:
        return f"{self.url}/kojihub"

    @property
    def weburl(self) -> str:
        return f"{self.url}/koji"

    @property
    def bodhi_url(self) -> str:
        return f"{self.url}/bodhi"

    @property
    def content_resolver_url(self) -> str:
        return f"{self.url}/content-resolver"

    # ------------------------------------------------------------ scripting
    @property
    def script(self) -> Script:
        return self.world.script

    def script_update(self, data: dict[str, Any]) -> None:
        with self.world.lock:
            self.world.script.update(data)
        self.world.changed()

    def set_outcomes(self, package: str, outcomes: list[str] | str) -> None:
        self.script_update({"outcomes": {package: outcomes}})

    def set_duration(self, package: str | None, seconds: float) -> None:
        if package is None:
            self.script_update({"default_duration": seconds})
        else:
            self.script_update({"durations": {package: seconds}})

    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self.world.lock:
            self.world.script.faults.append(rule)
        self.world.changed()
        return rule

    def set_chaos(self, drop: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0) -> None:
        self.script_update({"drop": drop, "duplicate": duplicate, "reorder": reorder})

    def set_repo_delay(self, seconds: float) -> None:
        self.script_update({"repo_delay": seconds})

    def finish_task(self, task_id: int, outcome: str = "CLOSED") -> None:
        """End a task now (e.g. one scripted to HANG)."""
        w = self.world
        with w.lock:
            t = w.get_task(task_id, strict=True)
            assert t is not None
            if t.state == koji.TASK_STATES["FREE"]:
                w._start_build(task_id)
        w._finish_build(task_id, outcome)

    # ---------------------------------------------------------------- world
    def add_rawhide_build(self, name: str, version: str, release: str, *,
                          owner: str | None = None, commit: str | None = None,
                          tag: str | None = None) -> Build:
        """A new Rawhide build tagged into the trigger tag (buildsys.tag goes out)."""
        if "." not in release:
            release = f"{release}.fc{self.layout.rawhide}"
        return self.world.add_rawhide_build(name, version, release, owner=owner, commit=commit,
                                            tag=tag)

    def start_activity(self, interval: float) -> None:
        """Sandbox liveliness: every `interval` seconds a packager ships a new
        Rawhide build of a (seeded-random) package, which lands in the trigger tag."""
        world = self.world

        def tick() -> None:
            if world is not self.world or interval <= 0:
                return  # reset or stopped meanwhile
            with world.lock:
                name, version, _ = world.rng_world.choice(self.layout.packages)
                latest = world.read_tagged(world.get_tag(self.layout.trigger_tag, strict=True),
                                           latest=True, package=name)
                release = latest[0]["release"] if latest else f"0.fc{self.layout.rawhide}"
                head, _, rest = release.partition(".")
                bumped = f"{int(head) + 1}.{rest}" if head.isdigit() else f"1.{rest}"
                version = latest[0]["version"] if latest else version
            try:
                world.add_rawhide_build(name, version, bumped)
            except Exception:
                log.exception("simulator activity: new build of %s failed", name)
            world.scheduler.call_later(interval, tick)

        world.scheduler.call_later(interval, tick)

    def koji_view(self) -> SimKojiView:
        return SimKojiView(self)

    def session(self, **opts: Any) -> koji.ClientSession:
        """An anonymous koji.ClientSession on this hub (what the sandbox uses)."""
        return koji.ClientSession(self.hub_url, opts=opts or None)

    def koji_config(self, **overrides: Any) -> Any:
        """An ebs KojiConfig pointing at this simulator."""
        from ebs.config.model import KojiConfig

        fields: dict[str, Any] = {
            "trigger_tag": self.layout.trigger_tag, "build_target": "eln",
            "stable_tag": "eln", "server": self.hub_url, "weburl": self.weburl,
            "topurl": f"{self.url}/kojifiles",
        }
        fields.update(overrides)
        return KojiConfig(**fields)

    # --------------------------------------------------------- observation
    @property
    def calls(self) -> list[CallRecord]:
        with self.world.lock:
            return list(self.hub.calls)

    def calls_named(self, method: str) -> list[CallRecord]:
        return [c for c in self.calls if c.method == method]

    @property
    def http_requests(self) -> int:
        return self.app.http_requests

    def hub_requests(self) -> int:
        return self.app.requests_by_path.get("/kojihub", 0)

    @property
    def side_tags_created(self) -> list[str]:
        return list(self.world.side_tags_created)

    @property
    def side_tags_removed(self) -> list[str]:
        return list(self.world.side_tags_removed)

    @property
    def builds_submitted(self) -> list[dict[str, Any]]:
        return list(self.world.builds_submitted)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until queued bus messages have reached the sink."""
        return self.world.outbox.flush(timeout)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no timed action is pending and the outbox is drained.

        Tasks scripted to HANG schedule nothing, so they do not block this.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.world.scheduler.pending() == 0 and \
                    self.flush(max(0.0, deadline - time.monotonic())):
                if self.world.scheduler.pending() == 0:
                    return True
            time.sleep(0.005)
        return False

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 interval: float = 0.01) -> Any:
        """Poll predicate until truthy (returned) or raise TimeoutError."""
        return wait_until(predicate, timeout, "a simulator condition", interval=interval)

    def summary(self) -> dict[str, Any]:
        w = self.world
        with w.lock:
            return {
                "url": self.url, "hub_url": self.hub_url, "bodhi_url": self.bodhi_url,
                "content_resolver": self.content_resolver_url, "seed": self.seed,
                "last_event": w.last_event, "builds": len(w.builds), "tasks": len(w.tasks),
                "side_tags": [t.name for t in w.tags.values()
                              if t.is_side_tag and t.deleted_event is None],
                "http_requests": self.http_requests, "hub_calls": len(self.hub.calls),
                "trigger_tag": self.layout.trigger_tag,
                "bodhi": self.bodhi_app is not None,
                "state_file": str(self.state_file) if self.state_file else None,
                "restored": self.restored,
            }

