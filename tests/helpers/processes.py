"""Real ebs processes for crash tests: workers as child processes.

The process wrapper and the waits are ebs.devstack's (what `ebs dev` runs on);
the config file is tests.helpers.config's."""

from __future__ import annotations

from pathlib import Path

from ebs.devstack.processes import Child, ebs_command, free_port
from ebs.devstack.waiting import eventually, until, wait_until
from tests.helpers.config import write_config

__all__ = ["Child", "WorkerProcess", "eventually", "free_port", "until", "wait_until",
           "write_config"]


class WorkerProcess(Child):
    """`ebs worker --config CONFIG` in a child process, killable like a real crash."""

    def __init__(self, config: Path, log: Path) -> None:
        super().__init__("worker", ebs_command("worker", "--config", str(config)), log)
