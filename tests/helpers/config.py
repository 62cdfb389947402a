"""The one ebs config file of tests and benchmarks that run a worker against
the simulator: every simulated package eligible, no mail, no OIDC, short timers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ebs.simulator import Simulator

# Short timers so a batch takes seconds.
FAST_TIMERS: dict[str, float] = {"lull": 1, "task_poll": 1, "repo_poll": 0.5, "stable_poll": 0.5}


def simulator_config(
    sim: Simulator,
    temporal_address: str,
    task_queue: str,
    *,
    namespace: str = "default",
    control: dict[str, Any] | None = None,
    email: dict[str, Any] | None = None,
    koji: dict[str, Any] | None = None,
    timers: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The config as data; `koji`, `timers` add to (or replace) the defaults."""
    return {
        "configuration": {
            "koji": {
                "server": sim.hub_url, "weburl": sim.weburl, "auth": "none",
                "trigger_tag": sim.layout.trigger_tag, "build_target": "eln",
                "stable_tag": "eln", "fail_fast": True, "username": sim.koji_user,
                **(koji or {}),
            },
            "bodhi": {"url": sim.bodhi_url, "auth": "none"},
            "control": control or {},
            "email": email or False,
            "open_id_connect": False,
        },
        "components": {"overrides": {n: {} for (n, _v, _r) in sim.layout.packages}},
        "temporal": {"address": temporal_address, "namespace": namespace,
                     "task_queue": task_queue},
        "timers": {**FAST_TIMERS, **(timers or {})},
    }


def write_config(path: Path, sim: Simulator, temporal_address: str, task_queue: str,
                 **options: Any) -> Path:
    """`simulator_config(...)` written to `path` (returned)."""
    path.write_text(yaml.safe_dump(simulator_config(sim, temporal_address, task_queue,
                                                    **options)))
    return path
