"""One interface over the simulator and the real hub, so a contract test has
one body for both (``koji_backend`` fixture, parametrized ``sim`` / ``real``).

Both backends act as a normal packager account (``ebs`` on the hub; the
simulator's default user, made without sidetag_admin) and offer the same
scripting: fresh Rawhide builds, build outcomes, held builds, a second user.
"""

from __future__ import annotations

from typing import Any, Protocol

import koji

from ebs.config.model import KojiConfig
from ebs.devstack.waiting import wait_until
from ebs.koji.adapter import KojiAdapter
from ebs.simulator import ListSink, Simulator
from tests.realstack.koji_stack import EBS_USER, TRIGGER_TAG, KojiStack

FINISHED = ("CLOSED", "FAILED", "CANCELED")
# builder outcome -> simulator outcome
SIM_OUTCOMES = {"succeed": "CLOSED", "fail": "FAILED", "hold": "HANG"}


class KojiBackend(Protocol):
    kind: str
    adapter: KojiAdapter
    username: str

    def session(self) -> koji.ClientSession:
        """A raw session acting as the ebs user."""
        ...

    def other_session(self) -> koji.ClientSession:
        """A raw session acting as another normal user."""
        ...

    def rawhide_build(self, name: str, version: str = "1.0", release: str = "1") -> str:
        """A new package with a Rawhide build in the trigger tag; returns its NVR."""
        ...

    def script(self, package: str, *outcomes: str) -> None:
        """Outcomes of the next builds of package (succeed/fail/hold); the last repeats."""
        ...

    def release(self, package: str) -> None:
        """Let held builds of package finish successfully."""
        ...

    def adapter_with(self, **cfg: Any) -> KojiAdapter: ...

    def close(self) -> None: ...


def wait_task_states(adapter: KojiAdapter, task_ids: list[int], timeout: float = 60,
                     done: tuple[str, ...] = FINISHED) -> list[str]:
    from ebs.contracts.koji import TaskPollRequest

    states: list[str] = []

    def finished() -> list[str] | None:
        nonlocal states
        states = [t.state for t in adapter.poll_tasks(TaskPollRequest(task_ids)).tasks]
        return states if all(s in done for s in states) else None

    return wait_until(finished, timeout, interval=0.1,
                      what=lambda: f"tasks {task_ids} to be {done} (last {states})")


class SimBackend:
    kind = "sim"

    def __init__(self) -> None:
        self.sim = Simulator(seed=7, sink=ListSink(), default_user_perms=())
        self.sim.start("127.0.0.1", 0)
        self.adapter = self.adapter_with()
        self.username = self.adapter.username
        self._other: Any = None

    def adapter_with(self, **cfg: Any) -> KojiAdapter:
        return KojiAdapter(self.sim.koji_config(**cfg), timeout=30, tag_wait=20)

    def session(self) -> koji.ClientSession:
        return self.sim.session(max_retries=0)

    def other_session(self) -> koji.ClientSession:
        # The simulator serves every caller as its default user; another user
        # is the same hub with that user as default.
        world = self.sim.world
        with world.lock:
            other = world.add_user("someone-else")
            saved = world.default_user
        return _AsUser(self.sim, other, saved)

    def rawhide_build(self, name: str, version: str = "1.0", release: str = "1") -> str:
        return self.sim.add_rawhide_build(name, version, release).nvr

    def script(self, package: str, *outcomes: str) -> None:
        seq = [SIM_OUTCOMES[o] for o in outcomes]
        self.sim.set_outcomes(package, seq + [seq[-1]] * 50)

    def release(self, package: str) -> None:
        w = self.sim.world
        with w.lock:
            hung = [t.id for t in w.tasks.values()
                    if t.method == "build" and t.package == package and t.state_name == "OPEN"]
        for task_id in hung:
            self.sim.finish_task(task_id, "CLOSED")

    def close(self) -> None:
        self.adapter.close()
        self.sim.stop()


class _AsUser:
    """A session whose calls the simulator serves as `user` (swapped in per call)."""

    def __init__(self, sim: Simulator, user: Any, default: Any) -> None:
        self._sim, self._user, self._default = sim, user, default
        self._session = sim.session(max_retries=0)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._session, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            world = self._sim.world
            with world.lock:
                world.default_user = self._user
            try:
                return method(*args, **kwargs)
            finally:
                with world.lock:
                    world.default_user = self._default
        return call


class RealBackend:
    kind = "real"

    def __init__(self, stack: KojiStack) -> None:
        self.stack = stack
        self.adapter = self.adapter_with()
        self.username = EBS_USER
        self._n = 0

    def _login(self, user: str) -> koji.ClientSession:
        s = koji.ClientSession(self.stack.url, opts={
            "anon_retry": False, "max_retries": 0, "retry_interval": 1, "timeout": 30,
            "user": user, "password": self.stack.hub.passwords[user]})
        s.login()
        return s

    def adapter_with(self, **cfg: Any) -> KojiAdapter:
        config = KojiConfig(**self.stack.koji_config_dict(**cfg))
        return KojiAdapter(config, timeout=30, tag_wait=20,
                           session_factory=lambda: self._login(EBS_USER))

    def session(self) -> koji.ClientSession:
        return self._login(EBS_USER)

    def other_session(self) -> koji.ClientSession:
        if "someone-else" not in self.stack.hub.passwords:
            self.stack.add_user("someone-else")
        return self._login("someone-else")

    def rawhide_build(self, name: str, version: str = "1.0", release: str = "1") -> str:
        self.stack.add_package(name)
        src = self.stack.builder.register_source(name, version, release)
        [task] = self.stack.run_builds([(src, "rawhide")])
        admin = self.stack.admin()
        try:
            [build] = admin.listBuilds(taskID=task)
            admin.tagBuildBypass(TRIGGER_TAG, build["build_id"])
            return str(build["nvr"])
        finally:
            admin.logout()

    def script(self, package: str, *outcomes: str) -> None:
        self.stack.builder.script(package, *outcomes)

    def release(self, package: str) -> None:
        self.stack.builder.release(package)

    def close(self) -> None:
        self.adapter.close()
