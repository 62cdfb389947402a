"""`ebs dev`, the README's first command, end to end: every part as a real
process, the demo batch through the bus, the bridge, Temporal and the simulator."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "Traceback" not in proc.stderr


def _logs(tmp_path: Path) -> str:
    logs = tmp_path / "state" / "logs"
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("*.log"))
    ) if logs.exists() else ""
