"""Child processes and ports of a local stack: `ebs dev`, the tests and the
benchmarks start Temporal, the simulator, workers and bridges through these.

A `Child` runs with its output in a log file; `stop()` is a clean shutdown
(SIGTERM, then SIGKILL), `kill()` a crash (SIGKILL, no shutdown)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

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


def check_ports_free(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Fail with a clear message naming the first port something else holds."""
    for name, port in ports.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise PortInUse(
                    f"port {port} ({name}) is already in use on {host}; stop what holds it "
                    f"or pick another with --{name}-port"
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
    in its own session, so a Ctrl-C reaches only us and we stop children in order."""

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

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or the OOM killer."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, and SIGKILL after `timeout` s; the exit status (0 if never started)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(timeout=10)
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def ebs_command(*args: str) -> list[str]:
    """The `ebs` CLI of this interpreter, as a child process."""
    return [sys.executable, "-m", "ebs", *args]
