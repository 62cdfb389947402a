"""Eligibility: package lists (upstream ↔ downstream names) and exclude patterns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ebs.config.eligibility import NOT_LISTED, ComponentNames, Eligibility
from ebs.config.model import AutoPackageList, ControlConfig, Override
from ebs.config.packages import PackageLists, build_package_lists, fetch_package_lists
from tests.config.test_config_packages import ListServer

CONTROL = ControlConfig(exclude=["^kernel$", "^shim.*", "texlive", "^freeipa-client$", "^idm$"])
OVERRIDES = {
    "ipa": Override(upstream_name="freeipa"),
    "idm-tools": Override(upstream_name="idm"),
    "extrapackage": Override(),
}


@pytest.fixture
def lists_server() -> Iterator[ListServer]:
    server = ListServer()
    server.set_list("eln", "source", ["bash", "kernel", "shim-unsigned-x64", "ipa", "texlive"])
    server.set_list("eln", "buildroot-source", ["gcc", "freeipa-client"])
    yield server
    server.close()


@pytest.fixture
def eligibility(lists_server: ListServer) -> Eligibility:
    apl = AutoPackageList(view=["eln"], content_resolver=lists_server.url)
    return Eligibility(fetch_package_lists(apl, OVERRIDES), CONTROL)


@pytest.mark.parametrize("name", ["bash", "gcc", "freeipa", "extrapackage"])
def test_eligible_upstream_names(eligibility: Eligibility, name: str) -> None:
    assert eligibility.is_eligible(name)
    assert eligibility.why_not(name) is None


def test_renamed_component(eligibility: Eligibility) -> None:
    # Fedora builds "freeipa"; ELN calls it "ipa".
    assert eligibility.downstream_name("freeipa") == "ipa"
    assert eligibility.upstream_name("ipa") == "freeipa"
    assert eligibility.is_eligible("freeipa")
    assert eligibility.is_eligible("ipa", downstream=True)
    assert not eligibility.is_eligible("ipa")  # no Fedora package called ipa is rebuilt
    assert eligibility.why_not("ipa") == NOT_LISTED
    assert not eligibility.is_eligible("freeipa", downstream=True)


def test_not_listed(eligibility: Eligibility) -> None:
    assert not eligibility.is_eligible("firefox")
    assert eligibility.why_not("firefox") == "not in the ELN package lists"
    assert eligibility.why_not("firefox", downstream=True) == "not in the ELN package lists"
    assert eligibility.downstream_name("firefox") is None
    assert eligibility.upstream_name("firefox") is None


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("kernel", "^kernel$"),
        ("shim-unsigned-x64", "^shim.*"),
        ("texlive", "texlive"),
        ("freeipa-client", "^freeipa-client$"),
    ],
)
def test_excluded(eligibility: Eligibility, name: str, pattern: str) -> None:
    assert not eligibility.is_eligible(name)
    assert eligibility.why_not(name) == f"excluded by pattern '{pattern}'"
    assert eligibility.why_not(name, downstream=True) == f"excluded by pattern '{pattern}'"


def test_exclude_applies_to_either_name_of_a_renamed_component(eligibility: Eligibility) -> None:
    # "^idm$" names the Fedora package; the ELN one is idm-tools.
    assert eligibility.why_not("idm") == "excluded by pattern '^idm$'"
    assert eligibility.why_not("idm-tools", downstream=True) == "excluded by pattern '^idm$'"


def test_exact_message_for_kernel(eligibility: Eligibility) -> None:
    assert eligibility.why_not("kernel") == "excluded by pattern '^kernel$'"


def test_resolve_accepts_either_name(eligibility: Eligibility) -> None:
    assert eligibility.resolve("ipa") == ComponentNames(upstream="freeipa", downstream="ipa")
    assert eligibility.resolve("freeipa") == ComponentNames(upstream="freeipa", downstream="ipa")
    assert eligibility.resolve("bash") == ComponentNames("bash", "bash")
    assert eligibility.resolve("firefox") is None


def test_empty_lists_make_nothing_eligible() -> None:
    eligibility = Eligibility(PackageLists(), ControlConfig())
    assert eligibility.why_not("bash") == NOT_LISTED


def test_no_excludes() -> None:
    lists = build_package_lists({"kernel": "eln/source"}, {})
    assert Eligibility(lists, ControlConfig()).is_eligible("kernel")
