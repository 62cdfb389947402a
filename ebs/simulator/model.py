"""The simulated Koji database rows and their hub-facing dict shapes.

Field names follow the hub (kojihub.py: get_build, readTaggedBuilds, Task.fields,
get_tag, get_build_target, repo_info) so code written against the simulator
reads real Koji answers the same way.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import koji


def iso(ts: float | None) -> str | None:
    """A hub timestamp string, e.g. '2026-11-02 10:11:12.123456+00:00'."""
    if ts is None:
        return None
    return str(datetime.datetime.fromtimestamp(ts, tz=datetime.UTC))


def iso_t(ts: float | None) -> str | None:
    """ISO 8601 with a 'T', as the messaging plugin writes creation_time."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat()


@dataclass
class User:
    id: int
    name: str
    perms: set[str] = field(default_factory=set)
    krb_principal: str | None = None

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": koji.USER_STATUS["NORMAL"],
            "usertype": koji.USERTYPES["NORMAL"],
            "krb_principals": [self.krb_principal] if self.krb_principal else [],
        }


@dataclass
class Tag:
    id: int
    name: str
    parent_id: int | None
    create_event: int
    arches: str = "aarch64 ppc64le s390x x86_64"
    extra: dict[str, Any] = field(default_factory=dict)
    locked: bool = False
    deleted_event: int | None = None

    @property
    def is_side_tag(self) -> bool:
        return bool(self.extra.get("sidetag"))


@dataclass
class Listing:
    tag_id: int
    build_id: int
    create_event: int
    creator_id: int
    revoke_event: int | None = None

    def active_at(self, event: int | None) -> bool:
        if event is None:
            return self.revoke_event is None
        return self.create_event <= event and (self.revoke_event is None
                                                or self.revoke_event > event)


@dataclass
class Target:
    id: int
    name: str
    build_tag: int
    dest_tag: int
    deleted: bool = False


@dataclass
class Build:
    id: int
    pkg_id: int
    name: str
    version: str
    release: str
    owner_id: int
    create_event: int
    creation_ts: float
    state: int = koji.BUILD_STATES["BUILDING"]
    task_id: int | None = None
    source: str | None = None
    draft: bool = False
    epoch: int | None = None
    completion_ts: float | None = None
    promoter_id: int | None = None
    promotion_ts: float | None = None
    extra: dict[str, Any] | None = None

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


@dataclass
class Task:
    id: int
    method: str
    request: list[Any]
    owner_id: int
    priority: int
    create_ts: float
    state: int = koji.TASK_STATES["FREE"]
    parent: int | None = None
    label: str | None = None
    arch: str = "noarch"
    channel_id: int = 1
    host_id: int | None = None
    start_ts: float | None = None
    completion_ts: float | None = None
    result: Any = None
    fault: tuple[int, str] | None = None
    weight: float = 0.2
    waiting: bool | None = None
    awaited: bool | None = None
    package: str | None = None  # component the task is about (for scripting)
    build_id: int | None = None  # the build record this task made, if any

    @property
    def state_name(self) -> str:
        return koji.TASK_STATES[self.state]

    @property
    def finished(self) -> bool:
        return self.state_name in ("CLOSED", "CANCELED", "FAILED")


@dataclass
class Repo:
    id: int
    tag_id: int
    create_event: int
    create_ts: float
    state: int = koji.REPO_STATES["INIT"]
    dist: bool = False
