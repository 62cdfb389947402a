"""A private RabbitMQ node (Debian/Fedora `rabbitmq-server`), for `ebs dev` and tests.

Own node name, AMQP port, distribution port, data and log directories, no
plugins; loopback only. As root the server drops to the `rabbitmq` user, so the
directories belong to it. Stopped with `rabbitmqctl -n NODE stop PIDFILE` (signals
to the wrapper script do not reach the Erlang VM, which runs in a process group
of its own); the VM's pid file also lets a later run stop a node whose owner
was SIGKILLed (:meth:`RabbitMQ.stop` works without having started it).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from ebs.devstack.processes import free_port, port_open
from ebs.devstack.waiting import wait_until

__all__ = ["RabbitMQ", "free_port"]

SYSTEM_WRAPPER = "/usr/sbin/rabbitmq-server"
LIB_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 60.0


def _binaries() -> tuple[str, str] | None:
    """(rabbitmq-server, rabbitmqctl) to run as the current user, or None."""
    if os.geteuid() == 0:
        # Debian's wrappers in /usr/sbin switch to the rabbitmq user.
        server = shutil.which("rabbitmq-server", path="/usr/sbin:/usr/bin:/sbin:/bin")
        ctl = shutil.which("rabbitmqctl", path="/usr/sbin:/usr/bin:/sbin:/bin")
    else:
        # The wrappers refuse other users; the real scripts run as anyone.
        server = str(LIB_BIN / "rabbitmq-server")
        ctl = str(LIB_BIN / "rabbitmqctl")
        if not os.access(server, os.X_OK):
            server = shutil.which("rabbitmq-server") or ""
            ctl = shutil.which("rabbitmqctl") or ""
    if not server or not ctl:
        return None
    return server, ctl


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Can user uid/gid reach `path` (x permission on every existing ancestor)?"""
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _reachable_data_dir(base: Path) -> Path:
    """As root the server runs as `rabbitmq`, which cannot enter e.g. /root or a
    0700 temp dir; then the data lives in /var/tmp under a name derived from
    `base`, so the same state dir finds the same broker data again."""
    if os.geteuid() != 0:
        return base
    user = pwd.getpwnam("rabbitmq")
    if _traversable_by(base.parent, user.pw_uid, user.pw_gid):
        return base
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"ebs-rabbitmq-{digest}"


class RabbitMQ:
    """One private broker node; `start`, `stop` and `restart` keep its data.

    With `base` (a directory that outlives the process, as `ebs dev` uses) the
    node keeps its name and queues across runs; without, a temporary one.
    """

    def __init__(self, base: Path | None = None, port: int | None = None,
                 node: str | None = None) -> None:
        found = _binaries()
        if found is None:
            raise FileNotFoundError(
                "rabbitmq-server is not installed (Debian/Fedora package rabbitmq-server)"
            )
        self.server_bin, self.ctl_bin = found
        self.node = node or f"ebstest{uuid.uuid4().hex[:10]}@localhost"
        self.port = port or free_port()
        self.dist_port = free_port()
        if base is None:
            self.base = Path(tempfile.mkdtemp(prefix="ebs-rabbitmq-"))
        else:
            self.base = _reachable_data_dir(base.resolve())
            self.base.mkdir(parents=True, exist_ok=True)
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        if os.geteuid() == 0:
            user = pwd.getpwnam("rabbitmq")
            for path in (self.base, *self.base.rglob("*")):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.pid_file = self.base / "rabbitmq.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = open(self.base.parent / f"{self.base.name}.out", "ab")  # noqa: SIM115

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
            RABBITMQ_PID_FILE=str(self.pid_file),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _port_open(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = subprocess.Popen(
            [self.server_bin],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            start_new_session=True,  # a terminal's or supervisor's group signal is ours to pass
        )
        proc = self._proc

        def running() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {proc.returncode}; "
                    f"see {self._out.name} and {self.base / 'log'}"
                )
            return True

        try:
            wait_until(self._port_open, START_TIMEOUT, f"RabbitMQ to open port {self.port}",
                       alive=running, interval=0.1)
        except TimeoutError:
            self.stop()
            raise

    def beam_pid(self) -> int | None:
        """The pid of this node's Erlang VM, if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "beam" not in proc.name():
                return None
            return pid
        except (OSError, ValueError, psutil.Error):
            return None

    def running(self) -> bool:
        return (self._proc is not None and self._proc.poll() is None) or (
            self.beam_pid() is not None
        )

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node (also one another process started: by its pid file),
        within about `timeout` s: rabbitmqctl first, SIGKILL when that is too slow."""
        deadline = time.monotonic() + timeout
        beam = self.beam_pid()
        if self.running():
            try:
                subprocess.run(
                    [self.ctl_bin, "-n", self.node, "stop", str(self.pid_file)],
                    env=self._env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=max(1.0, deadline - time.monotonic() - 1.5),
                    check=False,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                pass
            beam = beam or self.beam_pid()
            if beam is not None:
                _kill_after(beam, max(0.1, deadline - time.monotonic() - 1.0))
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=max(0.1, deadline - time.monotonic() - 0.5))
                except subprocess.TimeoutExpired:
                    _kill_group(self._proc.pid)
                    self._proc.wait(timeout=5)
        self._proc = None
        # The port must be free again before a restart binds it.
        while self._port_open() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop and start the same node: durable queues and persistent messages survive."""
        self.stop()
        self.start()

    def ctl(self, *args: str) -> str:
        """Run `rabbitmqctl -n NODE ARGS...` and return its output."""
        return subprocess.run(
            [self.ctl_bin, "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    def queue_depth(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages in `queue`; (0, 0) if it does not exist."""
        out = self.ctl(
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == queue:
                return int(parts[1]), int(parts[2])
        return 0, 0

    def consumers(self, queue: str) -> int:
        """How many consumers `queue` has (0 if it does not exist yet)."""
        out = self.ctl("list_queues", "-q", "--no-table-headers", "name", "consumers")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return 0

    def cleanup(self) -> None:
        self.stop()
        self._out.close()
        shutil.rmtree(self.base, ignore_errors=True)
        Path(self._out.name).unlink(missing_ok=True)


def _kill_after(pid: int, grace: float) -> None:
    """Wait up to `grace` s for `pid` to exit, then SIGKILL it."""
    try:
        proc = psutil.Process(pid)
        proc.wait(timeout=grace)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except psutil.Error:
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
