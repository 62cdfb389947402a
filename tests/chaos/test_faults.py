"""Koji and Bodhi misbehaving: transient faults on a share of all requests
(retried, same result), permanent ones (fail fast, with a clear reason and an
email, without hammering Koji)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ebs.contracts.batch import BatchResult
from ebs.simulator.script import FaultRule
from tests.chaos.faults import Interceptor, RandomFaults
from tests.chaos.harness import (
    STANDARD_CONTROL,
    STANDARD_EXPECTED,
    STANDARD_PACKAGES,
    Outcome,
    TemporalServer,
    World,
    until,
)
from tests.chaos.record import Row, Rows
from tests.helpers.smtp import LoopbackController, Recorder, recording_server

GROUP = "Koji/Bodhi faults"
BODHI_KINDS = (
    {"kind": "http_error"},  # an HTML 500 page
    {"kind": "bodhi_error", "status": 503},  # Bodhi's JSON error, service unavailable
    {"kind": "lost_response"},  # done, then a 502 from the proxy
    {"kind": "slow", "delay": 1.0},
)


@pytest.fixture
def smtp() -> Iterator[tuple[LoopbackController, Recorder]]:
    yield from recording_server()


def email_to(ctl: LoopbackController) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": ctl.port, "smtp_username": "",
            "from": "ebs@example.org", "recipients": ["eln@example.org"], "starttls": False}


async def transient_faults(world: World, rate: float, seed: int,
                           names: list[str]) -> dict[str, Any]:
    """The standard batch (or some of its packages) with `rate` of Koji and of
    Bodhi requests failing."""
    world.script_standard()
    koji = Interceptor(world.sim).randomly(RandomFaults(rate, seed=seed, delay=1.0))
    for kind in BODHI_KINDS:
        world.sim.bodhi_app.add_fault("*", times=None, probability=rate / len(BODHI_KINDS),
                                      **kind)
    await world.start_worker_ready()
    started = time.monotonic()
    result = await world.result(await world.start_batch(names), 600)
    bodhi = Counter(c.fault for c in world.sim.bodhi_app.calls() if c.fault)
    return {
        "out": world.outcome(names, result),
        "seconds": time.monotonic() - started,
        "koji": koji,
        "bodhi": bodhi,
        "bodhi_requests": len(world.sim.bodhi_app.calls()),
    }


async def test_transient_faults_on_every_koji_and_bodhi_call(
    temporal: TemporalServer, tmp_path: Path, chaos: Rows
) -> None:
    """Three packages, one retried (each fault costs a 5 s retry backoff); the
    soak below runs the whole standard batch."""
    await run_transient(temporal, tmp_path, chaos, rate=0.10, seeds=[3],
                        names=["bash", "coreutils", "glibc"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_transient_faults_soak(temporal: TemporalServer, tmp_path: Path,
                                     chaos: Rows) -> None:
    """More seeds, and a harsher rate."""
    await run_transient(temporal, tmp_path, chaos, rate=0.10, seeds=[11, 12, 13, 14],
                        names=STANDARD_PACKAGES)
    await run_transient(temporal, tmp_path / "harsh", chaos, rate=0.25, seeds=[21, 22],
                        names=STANDARD_PACKAGES)


def kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"


async def run_transient(temporal: TemporalServer, tmp_path: Path, chaos: Rows, rate: float,
                        seeds: list[int], names: list[str]) -> None:
    worlds = [World(f"faults-{seed}", temporal, tmp_path / str(seed), control=STANDARD_CONTROL)
              for seed in seeds]
    try:
        runs = await asyncio.gather(*(transient_faults(w, rate, s, names)
                                      for w, s in zip(worlds, seeds, strict=True)))
    finally:
        for world in worlds:
            await asyncio.to_thread(world.close)
    problems = []
    for seed, run in zip(seeds, runs, strict=True):
        koji, bodhi, out = run["koji"], run["bodhi"], run["out"]
        requests = koji.requests + run["bodhi_requests"]
        injected = koji.injected + sum(bodhi.values())
        want = {n: STANDARD_EXPECTED[n] for n in names}
        ok = out.packages == want and out.clean
        chaos.add(Row(
            f"{rate:.0%} transient faults on every Koji and Bodhi request, "
            f"{len(names)} packages", GROUP,
            injected=injected,
            injected_detail=f"seed {seed}: Koji {kinds(koji.counts)}, Bodhi {kinds(bodhi)}, "
            f"of {requests} requests",
            duplicates=out.duplicates, losses=len(out.lost_packages),
            leaked_side_tags=len(out.leaked_side_tags), seconds=round(run["seconds"], 1),
            ok=ok,
        ))
        if injected < 0.4 * rate * requests:
            problems.append(f"seed {seed}: only {injected} faults in {requests} requests")
        if not ok:
            problems.append(f"seed {seed}: {out.problems()}; {out.packages}; {koji.log}")
    assert not problems, "\n".join(problems)


async def test_side_tag_creation_interrupted_leaves_no_side_tag(
    temporal: TemporalServer, tmp_path: Path, chaos: Rows
) -> None:
    """Koji creates the side tag and the answer is lost (HTTP 500 after the
    fact), or creates it and the request key cannot be written (HTTP 500 on
    editSideTag): either way the retry must end up with one side tag, removed."""
    lost = World("lost-answer", temporal, tmp_path / "lost")
    lost.sim.add_fault(FaultRule("createSideTag", "http500", times=1, after=True))
    key = World("key-write", temporal, tmp_path / "key")
    key.sim.add_fault(FaultRule("editSideTag", "http500", times=1))
    worlds = {"createSideTag answer lost": lost, "HTTP 500 on editSideTag": key}

    async def run(world: World) -> tuple[Any, float]:
        await world.start_worker_ready()
        started = time.monotonic()
        result = await world.result(await world.start_batch(["bash"]), 180)
        return world.outcome(["bash"], result), time.monotonic() - started

    try:
        outs = await asyncio.gather(*(run(w) for w in worlds.values()))
    finally:
        for world in worlds.values():
            await asyncio.to_thread(world.close)
    for what, (out, seconds) in zip(worlds, outs, strict=True):
        chaos.add(Row(
            f"side tag creation interrupted: {what}", GROUP, injected=1,
            injected_detail="one HTTP 500, retried by Temporal", duplicates=out.duplicates,
            losses=len(out.lost_packages), leaked_side_tags=len(out.leaked_side_tags),
            seconds=round(seconds, 1), ok=out.clean,
        ))
    for out, _ in outs:
        assert out.packages["bash"] == STANDARD_EXPECTED["bash"]
    assert [out.leaked_side_tags for out, _ in outs] == [[], []]


# ---- permanent faults ------------------------------------------------------------------


async def permanent(world: World, names: list[str]
                    ) -> tuple[BatchResult, float, int, Outcome, Counter[str]]:
    await world.start_worker_ready()
    before = world.sim.hub_requests()
    started = time.monotonic()
    result = await world.result(await world.start_batch(names), 120)
    seconds = time.monotonic() - started
    calls = Counter(c.method for c in world.sim.calls)
    return (result, seconds, world.sim.hub_requests() - before, world.outcome(names, result),
            calls)


async def test_permanent_faults_fail_fast_with_a_reason_and_an_email(
    temporal: TemporalServer, tmp_path: Path, chaos: Rows,
    smtp: tuple[LoopbackController, Recorder],
) -> None:
    ctl, rec = smtp
    email = email_to(ctl)
    names = ["bash", "coreutils", "glibc"]
    auth = World("auth", temporal, tmp_path / "auth", email=email)
    auth.sim.add_fault(FaultRule.auth_failure("*", times=None))
    target = World("target", temporal, tmp_path / "target", email=email,
                   koji={"build_target": "eln-no-such-target"})
    later = World("auth-later", temporal, tmp_path / "later", email=email)
    later.sim.add_fault(FaultRule.auth_failure("build", times=None))
    worlds = {"auth": auth, "target": target, "later": later}
    try:
        runs = dict(zip(worlds, await asyncio.gather(
            *(permanent(w, names) for w in worlds.values())), strict=True))
        await until(lambda: len(rec.received) >= 3, 30, "three emails")
    finally:
        for world in worlds.values():
            await asyncio.to_thread(world.close)

    mails = [m.message.as_string() for m in rec.received]
    cases = {
        "auth": ("Koji authentication failure on every call", "Not logged-in",
                 {"getBuildTarget": 1}),
        "target": ("unknown build target", "No such build target: eln-no-such-target",
                   {"getBuildTarget": 1}),
        "later": ("Koji authentication failure at build submission", "Not logged-in",
                  {"build": len(names)}),
    }
    problems = []
    for key, (what, reason, most) in cases.items():
        result, seconds, requests, out, calls = runs[key]
        states = {p.state for p in result.packages}
        mailed = [text for text in mails if result.batch_id in text and reason in text]
        hammered = {m: calls[m] for m, n in most.items() if calls[m] > n}
        ok = (states == {"failed"} and reason in result.error and len(mailed) == 1
              and not hammered and out.clean)
        chaos.add(Row(
            f"permanent fault: {what}", GROUP, injected=1,
            injected_detail=f"{requests} Koji requests in all, {seconds:.1f} s to fail",
            duplicates=out.duplicates, losses=0, leaked_side_tags=len(out.leaked_side_tags),
            seconds=round(seconds, 1), ok=ok,
            notes=f"error: {result.error[:90]}; emails: {len(mailed)}",
        ))
        if not ok:
            problems.append(f"{key}: states {states}, error {result.error!r}, mails "
                            f"{len(mailed)}, calls {dict(calls)}, {out.problems()}")
    assert not problems, "\n".join(problems)
