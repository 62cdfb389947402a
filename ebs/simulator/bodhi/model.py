"""The Bodhi simulator's data: releases, updates, the call log, and what it
needs from Koji. JSON shapes are those of Bodhi 26's REST answers."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

UPDATE_TYPES = ("security", "bugfix", "enhancement", "newpackage", "unspecified")
SEVERITIES = ("unspecified", "urgent", "high", "medium", "low")
SUGGESTIONS = ("unspecified", "reboot", "logout")
UPDATE_STATUSES = ("pending", "testing", "stable", "unpushed", "obsolete", "side_tag_active",
                   "side_tag_expired")
RELEASE_STATES = ("disabled", "pending", "frozen", "current", "archived")

# Operation names: what faults target and what the call log records.
OPERATIONS = (
    "releases", "release", "csrf", "create_update", "list_updates", "get_update",
    "oidc_discovery", "oidc_authorize", "oidc_token", "oidc_userinfo", "login_token",
)

# SimUpdate's datetime fields (ISO strings in saved state).
UPDATE_DATES = ("date_submitted", "date_modified", "date_testing", "date_stable")

SESSION_COOKIE = "bodhi_session"
AUTH_COOKIE = "auth_tkt"
DATE_FMT = "%Y-%m-%d %H:%M:%S"


class KojiView(Protocol):
    """What the Bodhi simulator needs from Koji (the Koji simulator provides it).

    ``tagged_nvrs`` should answer like ``listTagged(tag, latest=True)``.
    """

    def tagged_nvrs(self, tag: str) -> list[str]: ...
    def tag_nvr(self, tag: str, nvr: str) -> None: ...
    def untag_nvr(self, tag: str, nvr: str) -> None: ...
    def tag_exists(self, tag: str) -> bool: ...
    def remove_side_tag(self, tag: str) -> None: ...


@dataclass
class SimRelease:
    """A Bodhi release; the fields are those of Bodhi's release JSON."""

    name: str
    long_name: str
    version: str
    branch: str
    dist_tag: str
    stable_tag: str
    testing_tag: str
    candidate_tag: str
    pending_signing_tag: str = ""
    pending_testing_tag: str = ""
    pending_stable_tag: str = ""
    override_tag: str = ""
    id_prefix: str = "FEDORA"
    state: str = "pending"
    composed_by_bodhi: bool = False
    create_automatic_updates: bool = True
    package_manager: str = "dnf"
    testing_repository: str | None = "updates-testing"
    mail_template: str = "fedora_errata_template"
    eol: str | None = None
    released_on: str | None = None
    setting_status: str | None = None
    # Not in Bodhi's JSON: the Koji build tag side tags are made from (their
    # inheritance is how real Bodhi finds the release of a side tag).
    build_tag: str = ""
    # Not in Bodhi's JSON: the dist tag in NVRs (".fc45", ".eln").
    nvr_dist: str = ""

    def __post_init__(self) -> None:
        if self.state not in RELEASE_STATES:
            raise ValueError(f"release state must be one of {RELEASE_STATES}, not {self.state!r}")
        self.build_tag = self.build_tag or f"{self.stable_tag}-build"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["build_tag"], data["nvr_dist"]
        # Computed by real Bodhi from its config; these are its defaults (an
        # unconfigured release: no mandatory days, critpath 14, karma 2).
        data.update(critpath_mandatory_days_in_testing=14, mandatory_days_in_testing=0,
                    critpath_min_karma=2, min_karma=2)
        return data


def default_releases() -> list[SimRelease]:
    """Fedora Rawhide (F45) and ELN, both pending and not composed by Bodhi."""
    return [
        fedora_release("F45", "Fedora 45", "45", "rawhide", "f45", setting_status="pre_beta",
                       nvr_dist=".fc45"),
        fedora_release("ELN", "Fedora ELN", "eln", "eln", "eln", testing_repository=None,
                       nvr_dist=".eln"),
    ]


def fedora_release(name: str, long_name: str, version: str, branch: str, tag: str,
                   **extra: Any) -> SimRelease:
    """A release with Fedora's tag names, all derived from its dist tag."""
    return SimRelease(
        name=name, long_name=long_name, version=version, branch=branch, dist_tag=tag,
        stable_tag=tag, testing_tag=f"{tag}-updates-testing",
        candidate_tag=f"{tag}-updates-candidate", pending_signing_tag=f"{tag}-signing-pending",
        pending_testing_tag=f"{tag}-updates-testing-pending",
        pending_stable_tag=f"{tag}-updates-pending", override_tag=f"{tag}-override", **extra,
    )


@dataclass
class SimUpdate:
    alias: str
    release: SimRelease
    builds: list[str]
    notes: str
    type: str
    user: str
    from_tag: str | None = None
    severity: str = "unspecified"
    suggest: str = "unspecified"
    status: str = "pending"
    request: str | None = "testing"
    display_name: str = ""
    close_bugs: bool = True
    autokarma: bool = True
    autotime: bool = True
    stable_karma: int = 3
    unstable_karma: int = -3
    stable_days: int = 0
    require_bugs: bool = True
    require_testcases: bool = True
    date_submitted: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_modified: datetime | None = None
    date_testing: datetime | None = None
    date_stable: datetime | None = None

    def to_json(self, base_url: str) -> dict[str, Any]:
        def date(value: datetime | None) -> str | None:
            return value.strftime(DATE_FMT) if value else None

        nvrs = sorted(self.builds)
        return {
            "alias": self.alias,
            "title": " ".join(nvrs),
            "display_name": self.display_name,
            "notes": self.notes,
            "type": self.type,
            "severity": self.severity,
            "suggest": self.suggest,
            "status": self.status,
            "request": self.request,
            "locked": False,
            "pushed": self.status == "stable",
            "critpath": False,
            "critpath_groups": None,
            "close_bugs": self.close_bugs,
            "autokarma": self.autokarma,
            "autotime": self.autotime,
            "stable_karma": self.stable_karma,
            "unstable_karma": self.unstable_karma,
            "stable_days": self.stable_days,
            "require_bugs": self.require_bugs,
            "require_testcases": self.require_testcases,
            "karma": 0,
            "content_type": "rpm",
            "test_gating_status": None,  # Bodhi's, when gating is not required
            "meets_testing_requirements": True,
            "date_submitted": date(self.date_submitted),
            "date_modified": date(self.date_modified),
            "date_approved": None,
            "date_pushed": date(self.date_stable),
            "date_testing": date(self.date_testing),
            "date_stable": date(self.date_stable),
            "release": self.release.to_json(),
            "builds": [
                # Signed once the signer moved it to the testing-pending tag.
                {"nvr": nvr, "release_id": None, "signed": self.status != "pending",
                 "type": "rpm", "epoch": 0}
                for nvr in nvrs
            ],
            "bugs": [],
            "comments": [],
            "user": {"name": self.user, "email": None, "avatar": None, "openid": None,
                     "groups": [{"name": "packager"}]},
            "test_cases": [],
            "updateid": self.alias,
            "from_tag": self.from_tag,
            "version_hash": hashlib.sha1(" ".join(nvrs).encode()).hexdigest(),
            "url": f"{base_url}updates/{self.alias}",
        }


@dataclass
class SimCall:
    """One request the simulator answered."""

    time: float
    method: str
    path: str
    operation: str
    params: dict[str, list[str]]
    form: dict[str, list[str]]
    status: int = 0
    fault: str = ""
    user: str | None = None

