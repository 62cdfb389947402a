"""`ebs dev`, the README's first command, end to end: every part as a real
process, the demo batch through the bus, the bridge, Temporal and the simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.processes import wait_until
from tests.helpers.rabbitmq import free_port


def _ports() -> list[str]:
    names = ["temporal", "ui", "api", "sim", "amqp"]
    return [arg for name in names for arg in (f"--{name}-port", str(free_port()))]


def test_dev_runs_the_demo_batch_and_stops_cleanly(tmp_path: Path) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ebs", "dev", "--state-dir", str(tmp_path / "state"),
             "--exit-after-demo", *_ports()],
            capture_output=True, text=True, timeout=240,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"ebs dev did not finish the demo: {err.stdout!r} {err.stderr!r}")
    out = proc.stdout
    assert proc.returncode == 0, (out, proc.stderr, _logs(tmp_path))
    assert "status page" in out and "Temporal Web UI" in out
    assert "demo: tagged 6 packages" in out
    # slices, a retry that succeeds, a package that fails every attempt
    assert "partial — 6 package(s), 5 built, 1 failed; failed: rust" in out, out
    # ebs's own messages, from the private broker, in the log and for the status page
    assert "bus: org.fedoraproject.dev.ebs.batch.started: ebs started ELN" in out, out
    assert "bus: org.fedoraproject.dev.ebs.package.failed: ebs failed to rebuild rust-" in out
    assert "bus: org.fedoraproject.dev.ebs.batch.finished: " in out
    recorded = (tmp_path / "state" / "logs" / "messages.jsonl").read_text()
    assert recorded.count("ebs.package.built") == 5, recorded
    worker_log = (tmp_path / "state" / "logs" / "worker.log").read_text()
    assert "slice 0 attempt 1" in worker_log and "slice 1000 attempt 2" in worker_log
    assert (tmp_path / "state" / "temporal.db").exists()


def test_dev_names_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = _ports()
        args[args.index("--api-port") + 1] = str(port)
        proc = subprocess.run(
            [sys.executable, "-m", "ebs", "dev", "--state-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 2
    assert f"port {port} (api) is already in use" in proc.stderr
    # ...and names what holds it (this test's own process).
    assert f"by pid {os.getpid()} (" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _logs(tmp_path: Path) -> str:
    logs = tmp_path / "state" / "logs"
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("*.log"))
    ) if logs.exists() else ""


def test_dev_resumes_an_interrupted_batch_after_a_restart(tmp_path: Path) -> None:
    """Stopped mid-batch (Ctrl-C), started again: Temporal's SQLite file and the
    simulator's state file carry the batch on to the same result."""
    import signal

    state = tmp_path / "state"
    ports = _ports()
    first = subprocess.Popen(
        [sys.executable, "-m", "ebs", "dev", "--state-dir", str(state), *ports],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    worker_log = state / "logs" / "worker.log"
    def at_slice_10() -> bool:
        assert first.poll() is None, _logs(tmp_path)
        return "slice 10 attempt 1" in (worker_log.read_text() if worker_log.exists() else "")

    try:
        wait_until(at_slice_10, 120, "slice 10's first attempt")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=90)
    assert "slice 1000" not in worker_log.read_text()  # interrupted before the last slice
    second = subprocess.run(
        [sys.executable, "-m", "ebs", "dev", "--state-dir", str(state), "--no-demo",
         "--exit-after-demo", *ports],
        capture_output=True, text=True, timeout=240,
    )
    assert second.returncode == 0, (second.stdout, second.stderr, _logs(tmp_path))
    assert "partial — 6 package(s), 5 built, 1 failed; failed: rust" in second.stdout
    assert "(restored)" in (state / "logs" / "sim.log").read_text()


def test_dev_interrupted_while_starting_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) before the stack is up stops what had started."""
    import signal

    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-m", "ebs", "dev", "--state-dir", str(tmp_path / "state"), *_ports()],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    me = psutil.Process(proc.pid)

    def temporal_started() -> list[psutil.Process]:
        assert proc.poll() is None, _logs(tmp_path)
        try:
            children = me.children(recursive=True)
            return children if any("temporal" in " ".join(c.cmdline()) for c in children) else []
        except psutil.Error:  # a child came and went while we looked
            return []

    started = wait_until(temporal_started, 60, "the Temporal dev server to start")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    alive = [c for c in started if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [c.cmdline() for c in alive]
