"""The EbsPackages value stays within Temporal's per-value size limit."""

from __future__ import annotations

import json

from ebs.contracts.search import SEARCH_VALUE_BYTES, packages_value


def test_small_lists_are_kept_whole() -> None:
    names = ["bash", "glibc", "python3.14"]
    assert packages_value(names) == names


def test_a_mass_rebuild_is_cut_to_fit_one_value() -> None:
    names = [f"python-{i:05d}-with-a-long-name" for i in range(10_000)]
    kept = packages_value(names)
    assert 0 < len(kept) < len(names) and kept == names[: len(kept)]
    assert len(json.dumps(kept).encode()) < SEARCH_VALUE_BYTES
    assert len(json.dumps(names[: len(kept) + 1]).encode()) >= SEARCH_VALUE_BYTES - 48
