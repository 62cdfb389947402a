"""Input and report of the scheduled ConfigRefresh workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConfigRefreshRequest:
    sync_schedules: bool = True  # re-apply timers.* to the schedules afterwards


@dataclass
class WorkerRefresh:
    """One worker process's answer to a scheduled config refresh."""

    worker: str  # the worker's Temporal identity
    ok: bool = True
    version: str = ""  # the config version it runs now
    previous_version: str = ""
    error: str = ""  # why the refresh failed (the previous config is kept)


@dataclass
class ConfigRefreshReport:
    workers: list[WorkerRefresh] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # listed but did not answer
    schedules: list[str] = field(default_factory=list)  # schedule changes made afterwards
