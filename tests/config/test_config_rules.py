"""The pure name rules: exclude / skip_tag matching and ordering."""

from __future__ import annotations

import pytest

from ebs.config.rules import DEFAULT_ORDERING, first_match, is_skip_tag, matches_any, ordering_for

SKIP_TAG = [
    "^fedora-release$",
    "^rust$",
    r"^llvm[0-9\.]*$",
    r"^clang[0-9\.]*$",
    "^ocaml.*",
    "gtk3",
]
ORDERING = {"^ocaml$": 0, r"^llvm[0-9\.]*$": 0, r"^clang[0-9\.]*$": 1, "^ocaml.*": 5}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fedora-release", True),
        ("fedora-release-common", False),
        ("rust", True),
        ("rust-serde", False),
        ("llvm", True),
        ("llvm19", True),
        ("llvm-toolset", False),
        ("clang17.0", True),
        ("ocaml-findlib", True),
        ("gtk3", True),
        ("webkitgtk3", True),  # unanchored patterns match anywhere (re.search)
        ("bash", False),
    ],
)
def test_skip_tag(name: str, expected: bool) -> None:
    assert is_skip_tag(SKIP_TAG, name) is expected
    assert matches_any(SKIP_TAG, name) is expected


def test_no_patterns_match_nothing() -> None:
    assert not matches_any([], "bash")
    assert first_match([], "bash") is None


def test_first_match_reports_the_pattern() -> None:
    assert first_match(["^kernel$", "kernel"], "kernel") == "^kernel$"
    assert first_match(["^kernel$", "kernel"], "kernel-tools") == "kernel"


def test_ordering_first_matching_pattern_wins() -> None:
    assert ordering_for(ORDERING, "ocaml") == 0  # "^ocaml$" comes before "^ocaml.*"
    assert ordering_for(ORDERING, "ocaml-findlib") == 5
    assert ordering_for({"^ocaml.*": 5, "^ocaml$": 0}, "ocaml") == 5
    assert ordering_for(ORDERING, "clang") == 1
    assert ordering_for(ORDERING, "llvm18") == 0


def test_ordering_default() -> None:
    assert DEFAULT_ORDERING == 1000
    assert ordering_for(ORDERING, "bash") == 1000
    assert ordering_for({}, "bash") == 1000
    assert ordering_for(ORDERING, "bash", default=7) == 7
