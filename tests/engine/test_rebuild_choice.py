"""The manual rebuild's choice between the latest Rawhide and the latest ELN build."""

from __future__ import annotations

import pytest
import yaml

from ebs.activities.settings import SettingsActivities
from ebs.config.holder import ConfigHolder
from ebs.config.loader import parse_config
from ebs.config.packages import build_package_lists
from ebs.contracts.koji import (
    BuildTarget,
    KojiBuild,
    LatestBuildsRequest,
    LatestBuildsResult,
)
from ebs.contracts.resolve import ResolveRequest
from ebs.workflows.rebuild_choice import (
    ELN,
    EVR,
    RAWHIDE,
    choose_build,
    compare_evr,
    split_nvr,
    strip_dist,
)


def build(nvr: str, created: float = 1000.0, **kw: object) -> KojiBuild:
    name = split_nvr(nvr)[0]
    return KojiBuild(nvr=nvr, component=name, creation_ts=created, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("1.fc45", "1"),
        ("3.eln150", "3"),
        ("3.eln", "3"),
        ("3.fc45.1", "3.1"),
        ("0.1.rc2.fc45", "0.1.rc2"),
        ("2.eln150.2", "2.2"),
        ("5", "5"),
        ("1.fc45~bootstrap", "1~bootstrap"),
        ("1.elnext1", "1.elnext1"),  # not a dist tag
        ("1.fcx", "1.fcx"),
    ],
)
def test_strip_dist(release: str, expected: str) -> None:
    assert strip_dist(release) == expected


def test_split_nvr() -> None:
    assert split_nvr("python-foo-bar-1.2-3.fc45") == ("python-foo-bar", "1.2", "3.fc45")
    with pytest.raises(ValueError, match="not an N-V-R"):
        split_nvr("bash-5.2")


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [
        (EVR(0, "1.10", "1"), EVR(0, "1.9", "1"), 1),
        (EVR(0, "1.0", "2"), EVR(0, "1.0", "10"), -1),
        (EVR(0, "1.0~rc1", "1"), EVR(0, "1.0", "1"), -1),
        (EVR(0, "1.0", "1"), EVR(0, "1.0", "1"), 0),
        (EVR(1, "0.1", "1"), EVR(0, "9.9", "9"), 1),
        (EVR(0, "1.0a", "1"), EVR(0, "1.0", "1"), 1),
    ],
)
def test_compare_evr_follows_rpm(a: EVR, b: EVR, sign: int) -> None:
    result = compare_evr(a, b)
    assert (result > 0) - (result < 0) == sign


def test_newer_rawhide_build_wins() -> None:
    rawhide = build("bash-5.3-1.fc45", created=100)
    eln = build("bash-5.2.37-4.eln150", created=900)
    choice = choose_build(rawhide, eln)
    assert choice.accepted and choice.build is rawhide and choice.origin == RAWHIDE


def test_newer_eln_build_wins() -> None:
    # e.g. a fix built in ELN first
    rawhide = build("bash-5.3-1.fc45", created=900)
    eln = build("bash-5.3-2.eln150", created=100)
    choice = choose_build(rawhide, eln)
    assert choice.build is eln and choice.origin == ELN


def test_release_numbers_compare_numerically() -> None:
    rawhide = build("glibc-2.41-10.fc45")
    eln = build("glibc-2.41-9.eln150")
    assert choose_build(rawhide, eln).build is rawhide


def test_same_version_newer_rawhide_creation_wins() -> None:
    rawhide = build("bash-5.3-1.fc45", created=2000)
    eln = build("bash-5.3-1.eln150", created=1000)
    choice = choose_build(rawhide, eln)
    assert choice.build is rawhide and "same version" in choice.reason


def test_same_version_newer_eln_creation_wins() -> None:
    rawhide = build("bash-5.3-1.fc45", created=1000)
    eln = build("bash-5.3-1.eln150", created=2000)
    assert choose_build(rawhide, eln).build is eln


def test_same_version_same_time_prefers_eln() -> None:
    rawhide = build("bash-5.3-1.fc45", created=1000)
    eln = build("bash-5.3-1.eln", created=1000)
    assert choose_build(rawhide, eln).origin == ELN


def test_renamed_component_compares_versions_not_names() -> None:
    rawhide = build("freeipa-4.12.2-3.fc45")
    eln = build("ipa-4.12.2-2.eln150")
    assert choose_build(rawhide, eln).build is rawhide


def test_only_in_eln_uses_the_eln_build() -> None:
    eln = build("ipa-4.12.2-2.eln150")
    choice = choose_build(None, eln)
    assert choice.build is eln and choice.origin == ELN
    not_found = KojiBuild(nvr="", found=False, reason="no build in f45")
    assert choose_build(not_found, eln).build is eln


def test_only_in_rawhide_uses_the_rawhide_build() -> None:
    rawhide = build("newpkg-1.0-1.fc45")
    choice = choose_build(rawhide, None)
    assert choice.build is rawhide and choice.origin == RAWHIDE
    assert choose_build(rawhide, KojiBuild(nvr="", found=False)).build is rawhide


def test_unknown_component_is_rejected_with_a_reason() -> None:
    choice = choose_build(None, None, component="nosuchpkg")
    assert not choice.accepted and choice.build is None
    assert choice.reason == "no build of nosuchpkg in either Rawhide or ELN"
    missing = KojiBuild(nvr="", found=False)
    assert choose_build(missing, missing).reason == "no build in either Rawhide or ELN"


def test_koji_dicts_are_accepted() -> None:
    # listTagged-style dicts: creation_time as ISO text, name, build_id, epoch
    rawhide = {
        "nvr": "bash-5.3-1.fc45",
        "name": "bash",
        "build_id": 11,
        "epoch": None,
        "creation_time": "2026-01-02 10:00:00.000000+00:00",
        "source": "git+https://src.fedoraproject.org/rpms/bash.git#abc",
    }
    eln = {
        "nvr": "bash-5.3-1.eln150",
        "name": "bash",
        "id": 22,
        "creation_time": "2026-01-01 10:00:00+00:00",
    }
    choice = choose_build(rawhide, eln)
    assert choice.build is not None and choice.origin == RAWHIDE
    assert (choice.build.build_id, choice.build.component) == (11, "bash")
    assert choice.build.source.endswith("#abc")
    assert choice.build.creation_ts > 0


def test_epoch_from_dicts_counts_first() -> None:
    rawhide = {"nvr": "foo-1.0-1.fc45", "epoch": 1}
    eln = {"nvr": "foo-2.0-1.eln150", "epoch": 0}
    assert choose_build(rawhide, eln).origin == RAWHIDE


def test_malformed_nvr_is_rejected() -> None:
    choice = choose_build(build("bash-5.3-1.fc45"), KojiBuild(nvr="garbage"))
    assert not choice.accepted and "not an N-V-R" in choice.reason


# --- against which tag: the build target's destination tag, as the original ----


class _TargetKoji:
    """Koji answers for resolve_components: a build target whose destination
    tag is not the configured stable_tag, and the latest build per tag."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.builds = {
            "f45": {"bash": "bash-5.3-1.fc45"},
            "eln-dest": {"bash": "bash-5.3-2.eln150"},  # newer, in the destination tag
            "eln-stable": {},
        }

    def get_build_target(self, name: str) -> BuildTarget:
        return BuildTarget(name, "eln-build", "eln-dest")

    def latest_builds(self, req: LatestBuildsRequest, on_progress: object = None
                      ) -> LatestBuildsResult:
        self.asked.append(req.tag)
        out = []
        for component in req.components:
            nvr = self.builds.get(req.tag, {}).get(component)
            out.append(KojiBuild(nvr=nvr, build_id=7, component=component, creation_ts=1.0)
                       if nvr else KojiBuild(nvr="", found=False, component=component))
        return LatestBuildsResult(builds=out)


def test_manual_rebuild_compares_with_the_targets_destination_tag() -> None:
    cfg = parse_config(yaml.safe_dump({
        "configuration": {
            "koji": {"trigger_tag": "f45", "build_target": "eln", "stable_tag": "eln-stable"},
        },
        "components": {"overrides": {"bash": {}}},
    }))
    koji = _TargetKoji()
    lists = build_package_lists({}, cfg.components.overrides)
    holder = ConfigHolder.fixed(cfg, lists)
    activities = SettingsActivities(holder, koji)  # type: ignore[arg-type]
    result = activities.resolve_components(ResolveRequest(["bash"]))
    assert koji.asked == ["f45", "eln-dest"]
    (cand,) = result.candidates
    assert cand.eln is not None and cand.eln.nvr == "bash-5.3-2.eln150"
    assert choose_build(cand.rawhide, cand.eln).origin == ELN
