"""`ebs dev` stopped every way a user or a supervisor stops it leaves no
process behind: SIGINT, SIGTERM and SIGTERM to its process group exit within
10 s; after a SIGKILL, the next start stops what the killed run left (its
RabbitMQ node, the dev server, the simulator, the worker...) first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ebs.devstack.rabbitmq import _reachable_data_dir
from tests.helpers.processes import wait_until
from tests.helpers.rabbitmq import free_port

pytestmark = pytest.mark.broker

EXIT_WITHIN = 10.0


class Dev:
    """One `ebs dev --no-demo` in a session of its own (so its process group
    is not ours), output in a file."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.out = state.parent / f"{state.name}.{time.monotonic_ns()}.out"
        ports = [a for n in ("temporal", "ui", "api", "sim", "amqp")
                 for a in (f"--{n}-port", str(free_port()))]
        with self.out.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ebs", "dev", "--state-dir", str(state), "--no-demo",
                 *ports],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text()

    def wait_up(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, self.output()
            return "ebs dev is up" in self.output()

        wait_until(up, 180, "ebs dev to come up")


def left_behind(state: Path) -> list[str]:
    """Live processes of a stack: those naming its state dir, and its Erlang VM."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if (str(state) in cmd and proc.pid != me
                    and proc.info["status"] != psutil.STATUS_ZOMBIE):
                found.append(f"{proc.pid} {cmd[:150]}")
        except psutil.Error:
            pass
    try:
        beam = psutil.Process(int(beam_pid_file(state).read_text()))
        if beam.status() != psutil.STATUS_ZOMBIE and "beam" in beam.name():
            found.append(f"{beam.pid} {beam.name()} (RabbitMQ node)")
    except (OSError, psutil.Error, ValueError):
        pass
    return found


def beam_pid_file(state: Path) -> Path:
    """Where `ebs dev`'s node writes its VM's pid (as root, maybe under /var/tmp)."""
    return _reachable_data_dir((state / "rabbitmq").resolve()) / "rabbitmq.pid"


def stack_processes(dev: Dev) -> list[psutil.Process]:
    found = psutil.Process(dev.proc.pid).children(recursive=True)
    assert any("temporal" in " ".join(p.cmdline()) for p in found), found
    return found


def assert_all_gone(procs: list[psutil.Process], state: Path) -> None:
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert not left_behind(state), left_behind(state)


@pytest.mark.parametrize("how", [
    "SIGINT", "SIGTERM",
    # the same shut-down path as SIGTERM, sent to every process at once: slow
    pytest.param("SIGTERM to the process group", marks=pytest.mark.slow),
])
def test_every_way_of_stopping_ebs_dev_is_quick_and_leaves_nothing(
    tmp_path: Path, how: str
) -> None:
    state = tmp_path / "state"
    dev = Dev(state)
    try:
        dev.wait_up()
        procs = stack_processes(dev)
        assert beam_pid_file(state).exists()
        started = time.monotonic()
        if how == "SIGINT":
            dev.proc.send_signal(signal.SIGINT)
        elif how == "SIGTERM":
            dev.proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(dev.proc.pid, signal.SIGTERM)  # a terminal closing, a supervisor
        dev.proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if dev.proc.poll() is None:
            dev.proc.send_signal(signal.SIGINT)
            dev.proc.wait(timeout=30)
    assert took < EXIT_WITHIN, (took, dev.output())
    assert "Traceback" not in dev.output(), dev.output()
    assert not (state / "dev-run.json").exists()
    assert_all_gone(procs, state)


def test_the_next_start_stops_what_a_sigkilled_ebs_dev_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Dev(state)
    second: Dev | None = None
    try:
        first.wait_up()
        procs = stack_processes(first)
        beam_pid = int(beam_pid_file(state).read_text())
        first.proc.kill()
        first.proc.wait(timeout=10)
        # The children outlive it (each in a session of its own)...
        assert any(p.is_running() for p in procs)
        assert psutil.pid_exists(beam_pid)
        # ...until the next start in the same state dir.
        second = Dev(state)
        second.wait_up()
        out = second.output()
        assert "left by an earlier ebs dev" in out and "RabbitMQ node" in out, out
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, [p.cmdline() for p in alive]
        assert not psutil.pid_exists(beam_pid) or psutil.Process(beam_pid).status() == (
            psutil.STATUS_ZOMBIE)
        procs = stack_processes(second)
        second.proc.send_signal(signal.SIGTERM)
        second.proc.wait(timeout=30)
    finally:
        for dev in (first, second):
            if dev is not None and dev.proc.poll() is None:
                dev.proc.send_signal(signal.SIGINT)
                dev.proc.wait(timeout=30)
    assert_all_gone(procs, state)
