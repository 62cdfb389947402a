"""The benchmarks in bench/ still run: each script once, on ~20 packages.

Not a performance test (no timing is asserted): it proves the scripts can
start the dev server, the simulator and a worker process, run a batch, and
read back what they report (histories, Koji requests, latencies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import koji_load, latency, mass_rebuild
from bench.harness import StackOptions, emit

PACKAGES = 20


async def test_mass_rebuild_reports_a_finished_batch(tmp_path: Path) -> None:
    r = await mass_rebuild.run(StackOptions(packages=PACKAGES, task_poll=0.5), timeout=120)
    assert r["outcome"] == "succeeded", r["error"]
    assert r["states"] == {"stable": PACKAGES}
    assert r["workflows"] == 2  # the batch and its one attempt
    assert r["max_history_events"] > 0 and r["max_history_bytes"] > 0
    assert r["worker_peak_rss_mb"] > 0
    # every Koji request is accounted for, the builds went out as one multicall
    assert r["hub_requests"] == sum(r["hub_requests_by_kind"].values())
    assert r["hub_requests_by_kind"]["multiCall(build)"] == 1
    out = tmp_path / "results.jsonl"
    emit(r, mass_rebuild.summary(r), out)
    assert json.loads(out.read_text())["packages"] == PACKAGES


@pytest.mark.parametrize("mode", ["lost", "delivered"])
async def test_koji_load_counts_requests_per_attempt(mode: str) -> None:
    r = await koji_load.run(mode, PACKAGES, task_poll=0.5, build_seconds=0.0, opts_extra={},
                            timeout=120)
    assert r["outcome"] == "succeeded", r["error"]
    (attempt,) = r["attempts"]
    assert attempt["by_kind"]["multiCall(build)"] == 1
    if mode == "lost":
        assert attempt["poll_rounds"] >= 1
        assert r["signals"] == 0
    else:
        assert attempt["poll_rounds"] == 0  # the messages finished every task
        assert r["signals"] >= PACKAGES
    assert "per 1000 packages per attempt" in koji_load.summary(r)


async def test_latency_measures_every_task() -> None:
    r = await latency.run(PACKAGES, spread=1.0, path="direct", scratch=False, extra={},
                          timeout=120)
    assert not r["error"]
    assert r["tasks_measured"] == PACKAGES
    assert 0 < r["latency"]["p50"] <= r["latency"]["p95"] <= r["latency"]["max"]


async def test_signal_load_compares_a_batch_with_and_without_signals() -> None:
    from bench import signal_load

    r = await signal_load.run(StackOptions(packages=PACKAGES, task_poll=0.5), rate=50.0,
                              timeout=120, rounds=1)
    assert r["packages"] == PACKAGES // 3  # three batches, each of packages of its own
    assert len(r["batch_alone_runs"]) == 2 and min(r["batch_alone_runs"]) > 0
    assert r["batch_with_signals_runs"][0] > 0
    # every tag signalled is queued with the collector: none lost
    assert r["signals_sent"] > 0 and r["collector_queued"] == r["signals_sent"]
    assert "target slowdown" in signal_load.summary(r)


async def test_components_view_reports_request_times() -> None:
    from bench import components_view

    r = await components_view.run(200, requests=2)
    assert r["error"] == "", r["error"]
    assert r["denylist_entries"] == 10 and r["shard_state_bytes_max"] > 0
    assert set(r["warm"]) == {"search", "first_page", "html_search", "all_5000"}
    assert "target" in components_view.summary(r)
