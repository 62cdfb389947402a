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


# The Koji user of a bridge config: the owner of the builds it follows.
BRIDGE_KOJI_USER = "ebs-bot"


def write_bridge_config(path: Path, temporal_address: str, task_queue: str,
                        overrides: dict[str, dict[str, Any]], *, namespace: str = "default",
                        control: dict[str, Any] | None = None) -> Path:
    """An ebs config for the bus bridge alone: Koji and Bodhi unreachable (the
    bridge never calls them), the components `overrides` eligible."""
    data: dict[str, Any] = {
        "configuration": {
            "koji": {"server": "http://127.0.0.1:9/kojihub", "auth": "none",
                     "trigger_tag": "f45", "build_target": "eln", "stable_tag": "eln",
                     "username": BRIDGE_KOJI_USER},
            "bodhi": {"url": "http://127.0.0.1:9/", "auth": "none"},
            "control": {"pause": False, **(control or {})},
            "email": False,
            "open_id_connect": False,
        },
        "components": {"overrides": overrides},
        "temporal": {"address": temporal_address, "namespace": namespace,
                     "task_queue": task_queue},
    }
    path.write_text(yaml.safe_dump(data))
    return path
