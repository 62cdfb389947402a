"""Which build a manual rebuild starts from: the latest Rawhide or the latest ELN one.

"Latest ELN" is the latest build in the build target's destination tag, as in
the original (not `koji.stable_tag`); the caller (the `resolve_components`
activity) looks both up, with tag inheritance, as the original's listTagged.

As the original's manual rebuild: with both, the newer by RPM version order
once the dist tag is ignored, and on equal versions the more recently created
(ELN on a tie); with one, that one (a component only in ELN was probably
renamed for RHEL); with neither, the request is rejected.

Pure (runs inside workflow code): stdlib and rpm_vercmp only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rpm_vercmp import vercmp

from ebs.contracts.koji import KojiBuild

RAWHIDE = "rawhide"
ELN = "eln"

# The %dist part of a Fedora or ELN release: .fc45, .eln150, or a bare .eln
_DIST = re.compile(r"\.(?:fc\d+|eln\d*)(?![A-Za-z0-9])")

BuildLike = KojiBuild | Mapping[str, Any] | None


@dataclass(frozen=True)
class RebuildChoice:
    build: KojiBuild | None  # None: rejected
    origin: str = ""  # "rawhide" | "eln"
    reason: str = ""  # why this build, or why none

    @property
    def accepted(self) -> bool:
        return self.build is not None


@dataclass(frozen=True)
class EVR:
    epoch: int
    version: str
    release: str


def strip_dist(release: str) -> str:
    """A release without its dist tag: "3.fc45" -> "3", "3.eln150.1" -> "3.1"."""
    return _DIST.sub("", release)


def split_nvr(nvr: str) -> tuple[str, str, str]:
    """name, version, release of an N-V-R (the name may contain dashes)."""
    parts = nvr.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not an N-V-R: {nvr!r}")
    return parts[0], parts[1], parts[2]


def compare_evr(a: EVR, b: EVR) -> int:
    """<0, 0 or >0 as `a` is older than, equal to or newer than `b` (RPM order)."""
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    return vercmp(a.version, b.version) or vercmp(a.release, b.release)


def _as_build(value: BuildLike) -> KojiBuild | None:
    if value is None:
        return None
    if isinstance(value, KojiBuild):
        return value if value.found else None
    if not value.get("found", True) or not value.get("nvr"):
        return None
    return KojiBuild(
        nvr=str(value["nvr"]),
        build_id=int(value.get("build_id") or value.get("id") or 0),
        component=str(
            value.get("component") or value.get("name") or value.get("package_name") or ""
        ),
        source=str(value.get("source") or ""),
        task_id=int(value.get("task_id") or 0),
        draft=bool(value.get("draft", False)),
        creation_ts=_creation_ts(value),
    )


def _creation_ts(value: Mapping[str, Any]) -> float:
    if value.get("creation_ts") is not None:
        return float(value["creation_ts"])
    created = value.get("creation_time")
    if created:
        try:
            return datetime.fromisoformat(str(created)).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def _epoch(value: BuildLike) -> int:
    if isinstance(value, Mapping):
        return int(value.get("epoch") or 0)
    return 0  # KojiBuild carries no epoch: the same package in both, compared as equal


def _evr(build: KojiBuild, epoch: int) -> EVR:
    _, version, release = split_nvr(build.nvr)
    return EVR(epoch, version, strip_dist(release))


def choose_build(rawhide: BuildLike, eln: BuildLike, component: str = "") -> RebuildChoice:
    """The build to rebuild from, given the latest of each tag (None if none)."""
    rawhide_build, eln_build = _as_build(rawhide), _as_build(eln)
    if rawhide_build is None and eln_build is None:
        what = f" of {component}" if component else ""
        return RebuildChoice(None, reason=f"no build{what} in either Rawhide or ELN")
    if eln_build is None:
        return RebuildChoice(rawhide_build, RAWHIDE, "no ELN build yet")
    if rawhide_build is None:
        return RebuildChoice(eln_build, ELN, "no Rawhide build (renamed for ELN?)")
    try:
        order = compare_evr(_evr(rawhide_build, _epoch(rawhide)), _evr(eln_build, _epoch(eln)))
    except ValueError as e:
        return RebuildChoice(None, reason=str(e))
    if order > 0:
        return RebuildChoice(rawhide_build, RAWHIDE, f"{rawhide_build.nvr} is newer")
    if order < 0:
        return RebuildChoice(eln_build, ELN, f"{eln_build.nvr} is newer")
    if rawhide_build.creation_ts > eln_build.creation_ts:
        return RebuildChoice(
            rawhide_build, RAWHIDE, "same version; the Rawhide build is more recent"
        )
    return RebuildChoice(eln_build, ELN, "same version; the ELN build is as recent or more")
