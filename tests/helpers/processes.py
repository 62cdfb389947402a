"""Real ebs processes for crash tests: config files and workers as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ebs.simulator import Simulator


def write_config(path: Path, sim: Simulator, temporal_address: str, task_queue: str,
                 **timers: float) -> Path:
    data: dict[str, Any] = {
        "configuration": {
            "koji": {
                "server": sim.hub_url, "weburl": sim.weburl, "auth": "none",
                "trigger_tag": sim.layout.trigger_tag, "build_target": "eln",
                "stable_tag": "eln", "fail_fast": True, "username": sim.koji_user,
            },
            "bodhi": {"url": sim.bodhi_url, "auth": "none"},
            "email": False,
            "open_id_connect": False,
        },
        "components": {"overrides": {n: {} for (n, _v, _r) in sim.layout.packages}},
        "temporal": {"address": temporal_address, "namespace": "default",
                     "task_queue": task_queue},
        "timers": {"lull": 1, "task_poll": 1, "repo_poll": 0.5, "stable_poll": 0.5, **timers},
    }
    path.write_text(yaml.safe_dump(data))
    return path


class WorkerProcess:
    """`ebs worker` in a child process, killable like a real crash."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ebs", "worker", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def wait_until(pred: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
