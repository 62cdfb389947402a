"""Child processes and ports of a local stack: `ebs dev`, the tests and the
benchmarks start Temporal, the simulator, workers and bridges through these.

A `Child` runs with its output in a log file; `stop()` is a clean shutdown
(SIGTERM to its process group, then SIGKILL), `kill()` a crash (SIGKILL, no
shutdown). `ebs dev` records its children in a state file so that the next
`ebs dev` stops what a SIGKILLed one left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil

from ebs.devstack.waiting import wait_for, wait_until

__all__ = [
    "Child", "PortInUse", "check_ports_free", "ebs_command", "free_port", "port_open",
    "wait_for", "wait_until",
]


class PortInUse(Exception):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_holder(port: int) -> str:
    """Who listens on `port`: "pid 123 (python3 -m http.server)", or "" if unknown."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return ""
    for c in conns:
        if c.laddr and c.laddr.port == port and c.pid and c.status in (
            psutil.CONN_LISTEN, psutil.CONN_NONE
        ):
            try:
                proc = psutil.Process(c.pid)
                cmd = " ".join(proc.cmdline()) or proc.name()
            except psutil.Error:
                cmd = "?"
            if len(cmd) > 120:
                cmd = cmd[:117] + "..."
            return f"pid {c.pid} ({cmd})"
    return ""


def check_ports_free(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Fail with a clear message naming the first port something else holds, and
    the process holding it."""
    for name, port in ports.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                holder = port_holder(port)
                by = f" by {holder}" if holder else ""
                raise PortInUse(
                    f"port {port} ({name}) is already in use on {host}{by}; stop what holds "
                    f"it or pick another with --{name.replace(' ', '-')}-port"
                ) from None


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class Child:
    """One child process, its stdout and stderr appended to `log`.

    `env` is added to this process's environment; `new_session` puts the child
    in its own session (and process group), so a Ctrl-C reaches only us, we
    stop children in order, and a stop reaches the child's own children too."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    new_session: bool = True
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                cwd=self.cwd,
                start_new_session=self.new_session,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.new_session:
            _signal_group(self.proc.pid, sig)
        elif self.proc.poll() is None:
            self.proc.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM to the child (its process group, when it leads one)."""
        if self.alive():
            self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or the OOM killer."""
        if self.alive():
            self._signal(signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=10)

    def wait_or_kill(self, deadline: float) -> None:
        """Wait until `deadline` (time.monotonic()), then SIGKILL the group."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)  # stragglers of the group, too
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, and SIGKILL after `timeout` s; the exit status (0 if never started)."""
        if self.proc is None:
            return 0
        self.terminate()
        self.wait_or_kill(time.monotonic() + timeout)
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.wait(timeout)

    def record(self) -> dict[str, Any]:
        assert self.proc is not None
        return {"name": self.name, "pid": self.proc.pid,
                "create_time": _create_time(self.proc.pid)}

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def ebs_command(*args: str) -> list[str]:
    """The `ebs` CLI of this interpreter, as a child process."""
    return [sys.executable, "-m", "ebs", *args]


def stop_all(children: Iterable[Child], grace: float) -> None:
    """SIGTERM every child at once; SIGKILL what is left after `grace` s."""
    children = list(children)
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.wait_or_kill(deadline)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:  # gone already
        pass


def _create_time(pid: int) -> float:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


class RunRecord:
    """`<state dir>/dev-run.json`: what the running `ebs dev` started.

    Written as each part starts, removed on a clean exit; found by the next
    start if `ebs dev` was SIGKILLed, which then stops what is left.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"pid": os.getpid(), "create_time": _create_time(os.getpid()),
                                     "children": [], "rabbitmq": None}
        self._written = False

    def add(self, child: Child) -> None:
        self.data["children"].append(child.record())
        self._write()

    def set_rabbitmq(self, base: Path, node: str, port: int) -> None:
        self.data["rabbitmq"] = {"base": str(base), "node": node, "port": port}
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)
        self._written = True

    def remove(self) -> None:
        if self._written:  # never another run's record
            self.path.unlink(missing_ok=True)


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process `pid` if it is the one recorded (not a later one reusing the pid)."""
    try:
        proc = psutil.Process(pid)
        if create_time and abs(proc.create_time() - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def reap_leftovers(path: Path, grace: float = 5.0,
                   say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Stop what a killed `ebs dev` of this state dir left running; returns what
    was stopped. Refuses (RuntimeError) when that `ebs dev` is still alive."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return []
    owner = _same_process(int(data.get("pid", 0)), float(data.get("create_time", 0)))
    if owner is not None and owner.pid != os.getpid():
        raise RuntimeError(
            f"another ebs dev (pid {owner.pid}) is running with this state dir; stop it "
            "first or use another --state-dir"
        )
    stopped: list[str] = []
    procs: list[tuple[str, psutil.Process]] = []
    for rec in data.get("children", []):
        proc = _same_process(int(rec["pid"]), float(rec.get("create_time", 0)))
        if proc is not None:
            procs.append((rec["name"], proc))
    for name, proc in procs:
        say(f"stopping {name} (pid {proc.pid}) left by an earlier ebs dev")
        _signal_group(proc.pid, signal.SIGTERM)
        stopped.append(name)
    _gone, alive = psutil.wait_procs([p for _, p in procs], timeout=grace)
    for proc in alive:
        _signal_group(proc.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    rmq = data.get("rabbitmq")
    if rmq:
        from ebs.devstack.rabbitmq import RabbitMQ

        broker = RabbitMQ(Path(rmq["base"]), port=int(rmq["port"]), node=str(rmq["node"]))
        broker.base = Path(rmq["base"])  # as recorded (already the reachable dir)
        broker.pid_file = broker.base / "rabbitmq.pid"
        if broker.running():
            say(f"stopping RabbitMQ node {rmq['node']} left by an earlier ebs dev")
            broker.stop(timeout=30)
            stopped.append("rabbitmq")
    path.unlink(missing_ok=True)
    return stopped
