"""Benchmark: what one build attempt costs the REAL Koji hub 1.35.3 (not a test).

Koji requests, and the hub's own CPU and PostgreSQL time, per 1,000 packages
per attempt, for ebs's call pattern and for the original ELNBuildSync's, side
by side in one run on the realstack fixture (tests/realstack: private
PostgreSQL, the real hub under gunicorn, the stand-in builder and kojira).

ebs (its real KojiAdapter, password login as the packager ``ebs``):
  submit   listTasks (de-duplication) + multicall ``build`` (500 a request)
  poll     multicall getTaskInfo of every task (500 a request), every task_poll
  finish   the last poll + multicall listBuilds by task (the drafts to promote)

the original (its kojihelpers/builds.py; plain koji.ClientSession calls):
  submit   multicall ``build`` in batches of koji_batch (500)
  poll     every task it still waits on: getTaskInfo, one request each
  finish   getTaskInfo + getTaskChildren(request=True) + getTaskResult of the
           SRPM child (here the stand-in builder's one child): 3 requests

An attempt = submit + ``--rounds`` polls while the builds run (default 12: a
one-hour build at the 5-minute poll both use) + the finishing round. Each
phase is measured on the real hub with ``--packages`` builds per side (the
builder is paused while tasks are submitted and polled open, then runs them
all), and scaled to 1,000 packages. Hub CPU: user+system seconds of the
gunicorn arbiter and its workers; PostgreSQL: CPU seconds of the postmaster and
its backends (exited ones included) and ``pg_stat_database.active_time`` of
the hub's database (time spent running statements).

    .venv/bin/python bench/realstack_koji_load.py --packages 100 [--rounds 12]

Requests are counted as multicalls (measured with N/2 calls a request, so
their count is the 1,000-package one) plus single calls (scaled where made per
task). CPU and PostgreSQL time scale linearly from N to 1,000.

Target: per attempt, ebs asks fewer requests of the hub and costs it less CPU
and PostgreSQL time than the original's pattern: ebs must never load Fedora's
hub more than the service it replaces.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import koji  # noqa: E402

from ebs.config.model import KojiConfig  # noqa: E402
from ebs.contracts.koji import BuildSpec, SubmitRequest, TaskPollRequest  # noqa: E402
from ebs.koji.adapter import KojiAdapter  # noqa: E402
from tests.realstack.hubenv import SKIP_REASON, hub_source  # noqa: E402
from tests.realstack.koji_stack import KojiStack  # noqa: E402

ORIGINAL_BATCH = 500  # the original's koji_batch
EBS_USER = "ebs"
CLK = os.sysconf("SC_CLK_TCK")


class CountingSession(koji.ClientSession):  # type: ignore[misc]
    """Counts HTTP requests: multicalls, and single calls."""

    multicalls = 0
    singles = 0

    def _sendOneCall(self, handler: str, headers: Any, request: Any) -> Any:
        body = request.decode() if isinstance(request, bytes) else str(request)
        if "<methodName>multiCall</methodName>" in body:
            CountingSession.multicalls += 1
        else:
            CountingSession.singles += 1
        return super()._sendOneCall(handler, headers, request)


def login(stack: KojiStack, user: str) -> CountingSession:
    s = CountingSession(stack.url, opts={"user": user, "password": stack.hub.passwords[user],
                                          "max_retries": 0, "anon_retry": False})
    s.login()
    return s


# ------------------------------------------------------------------- meters
def _stat(pid: int) -> tuple[float, float]:
    """(own utime+stime, reaped children's cutime+cstime) of pid, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLK, (cutime + cstime) / CLK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its live children, plus children it reaped."""
    own, reaped = _stat(root)
    return own + reaped + sum(_stat(c)[0] for c in _children(root))


@dataclass
class Cost:
    multicalls: float = 0.0
    singles: float = 0.0
    hub_cpu: float = 0.0
    pg_cpu: float = 0.0
    pg_active_ms: float = 0.0

    @property
    def requests(self) -> float:
        return self.multicalls + self.singles

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def times(self, k: float) -> Cost:
        return Cost(*(a * k for a in astuple(self)))

    def per_1000(self, k: float, singles_per_task: bool) -> Cost:
        """Scaled to 1,000 packages (k = 1000/N). Multicalls were measured with
        the chunk scaled alike (N/2 calls a request, as 500 of 1,000), so their
        count is already the 1,000-package one; single calls scale only where
        they are made per task (the original's), not once per phase (ebs's)."""
        return Cost(self.multicalls, self.singles * (k if singles_per_task else 1),
                    self.hub_cpu * k, self.pg_cpu * k, self.pg_active_ms * k)


def astuple(c: Cost) -> tuple[float, float, float, float, float]:
    return (c.multicalls, c.singles, c.hub_cpu, c.pg_cpu, c.pg_active_ms)


@dataclass
class Meter:
    stack: KojiStack
    postmaster: int = field(init=False)

    def __post_init__(self) -> None:
        self.postmaster = int((self.stack.pg.datadir / "postmaster.pid").read_text().split()[0])

    def _active_ms(self) -> float:
        pg = self.stack.pg
        cmd = [str(pg.bindir / "psql"), "-X", "-t", "-A", "-h", str(pg.socket_dir),
               "-p", str(pg.port), "-U", pg.user, "-d", "koji", "-c",
               "SELECT active_time FROM pg_stat_database WHERE datname = 'koji'"]
        if pg.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30)
        return float(out.stdout.strip() or 0)

    def snapshot(self) -> Cost:
        assert self.stack.hub.proc is not None
        time.sleep(1.1)  # let the backends that served us exit and flush their stats
        return Cost(CountingSession.multicalls, CountingSession.singles,
                    tree_cpu(self.stack.hub.proc.pid), tree_cpu(self.postmaster),
                    self._active_ms())

    def measure(self, fn: Callable[[], Any]) -> Cost:
        before = self.snapshot()
        fn()
        after = self.snapshot()
        # The meter's own psql connection adds one backend per snapshot: small,
        # and the same for both sides.
        return Cost(*(a - b for a, b in zip(astuple(after), astuple(before), strict=True)))


# -------------------------------------------------------------------- sides
def make_sources(stack: KojiStack, prefix: str, n: int) -> list[str]:
    names = [f"{prefix}{i:05d}" for i in range(n)]
    admin = stack.admin()
    try:
        with admin.multicall(strict=True, batch=500) as mc:
            for name in names:
                mc.packageListAdd("eln", name, owner="kojiadmin")
    finally:
        admin.logout()
    return [stack.builder.register_source(name, "1.0", "1") for name in names]


class EbsSide:
    name = "ebs"
    singles_per_task = False

    def __init__(self, stack: KojiStack, sources: list[str], chunk: int) -> None:
        self.stack, self.sources = stack, sources
        cfg = KojiConfig(server=stack.url, trigger_tag="f45", build_target="eln",
                         stable_tag="eln", username=EBS_USER, multicall_chunk=chunk)
        self.adapter = KojiAdapter(cfg, session_factory=lambda: login(stack, EBS_USER))
        self.adapter.user_id  # noqa: B018 - log in and learn the user before measuring
        self.tasks: list[int] = []

    def submit(self) -> None:
        res = self.adapter.submit_builds(SubmitRequest(
            target="eln", builds=[BuildSpec(f"p{i}", s) for i, s in enumerate(self.sources)],
            not_before=time.time() - 60, draft=True, workflow_id="bench-attempt"))
        self.tasks = [t.task_id for t in res.submitted]
        assert len(self.tasks) == len(self.sources), res

    def poll(self) -> None:
        self.adapter.poll_tasks(TaskPollRequest(self.tasks))

    def finish(self) -> None:
        self.adapter.poll_tasks(TaskPollRequest(self.tasks))
        builds = self.adapter.task_builds(TaskPollRequest(self.tasks))
        assert all(b.found for b in builds.builds), builds

    def close(self) -> None:
        self.adapter.close()


class OriginalSide:
    name = "original"
    singles_per_task = True

    def __init__(self, stack: KojiStack, sources: list[str], chunk: int) -> None:
        self.stack, self.sources, self.chunk = stack, sources, chunk
        self.session = login(stack, EBS_USER)
        self.tasks: list[int] = []

    def submit(self) -> None:
        with self.session.multicall(batch=self.chunk) as mc:
            calls = [mc.build(s, "eln", {"scratch": False, "fail_fast": False,
                                         "wait_repo": True}, priority=5)
                     for s in self.sources]
        self.tasks = [int(c.result) for c in calls]

    def poll(self) -> None:
        for task in self.tasks:
            self.session.getTaskInfo(task)

    def finish(self) -> None:
        for task in self.tasks:
            info = self.session.getTaskInfo(task)
            assert info["state"] == koji.TASK_STATES["CLOSED"], info
            children = self.session.getTaskChildren(task, request=True, strict=True)
            self.session.getTaskResult(children[0]["id"])

    def close(self) -> None:
        self.session.logout()


# ---------------------------------------------------------------------- run
def run(packages: int, rounds: int, measured_rounds: int) -> dict[str, Any]:
    source = hub_source()
    if source is None:
        raise SystemExit(SKIP_REASON)
    t0 = time.monotonic()
    # Both multicall 500 calls a request (of 1,000); at N packages, N/2.
    chunk = max(1, round(ORIGINAL_BATCH * packages / 1000))
    stack = KojiStack.start(source)
    try:
        meter = Meter(stack)
        sides: list[EbsSide | OriginalSide] = [
            EbsSide(stack, make_sources(stack, "bench-ebs-", packages), chunk),
            OriginalSide(stack, make_sources(stack, "bench-orig-", packages), chunk)]
        phases: dict[str, dict[str, Cost]] = {s.name: {} for s in sides}
        stack.builder.pause()
        for side in sides:
            phases[side.name]["submit"] = meter.measure(side.submit)
        for side in sides:
            total = Cost()
            for _ in range(measured_rounds):
                total = total + meter.measure(side.poll)
            phases[side.name]["poll"] = total.times(1 / measured_rounds)
        stack.builder.resume()
        stack.builder.wake()
        admin = stack.admin()
        try:
            stack.wait_tasks(admin, [t for s in sides for t in s.tasks],
                             timeout=60 + 3 * packages)
        finally:
            admin.logout()
        for side in sides:
            phases[side.name]["finish"] = meter.measure(side.finish)
            side.close()
    finally:
        stack.stop()
    scale = 1000 / packages
    report: dict[str, Any] = {
        "bench": "realstack_koji_load", "packages": packages, "rounds": rounds,
        "measured_rounds": measured_rounds, "seconds": round(time.monotonic() - t0, 1),
        "target": "ebs < original in requests, hub CPU, PostgreSQL CPU and active time",
        "per_1000": {},
    }
    for side in sides:
        ph = phases[side.name]
        ph["attempt"] = ph["submit"] + ph["poll"].times(rounds) + ph["finish"]
        report["per_1000"][side.name] = {
            k: {**asdict(v.per_1000(scale, side.singles_per_task)),
                "requests": v.per_1000(scale, side.singles_per_task).requests}
            for k, v in ph.items()}
    return report


def show(report: dict[str, Any]) -> None:
    print(f"Real Koji hub 1.35.3, {report['packages']} packages per side, scaled to 1,000; "
          f"an attempt = submit + {report['rounds']} open polls + finish "
          f"({report['seconds']} s)")
    print(f"{'':10} {'phase':8} {'requests':>10} {'hub CPU s':>10} {'PG CPU s':>9} "
          f"{'PG active ms':>13}")
    for name, ph in report["per_1000"].items():
        for phase in ("submit", "poll", "finish", "attempt"):
            c = ph[phase]
            print(f"{name:10} {phase:8} {c['requests']:>10.0f} {c['hub_cpu']:>10.2f} "
                  f"{c['pg_cpu']:>9.2f} {c['pg_active_ms']:>13.0f}")
    ebs, orig = report["per_1000"]["ebs"]["attempt"], report["per_1000"]["original"]["attempt"]
    met = all(ebs[k] < orig[k] for k in ("requests", "hub_cpu", "pg_cpu", "pg_active_ms"))
    print(f"target: per attempt, fewer Koji requests and less hub CPU and PostgreSQL time "
          f"than the original's pattern: {'MET' if met else 'NOT MET'} "
          f"({math.ceil(ebs['requests'])} vs {math.ceil(orig['requests'])} requests; "
          f"hub CPU {ebs['hub_cpu']:.2f} s vs {orig['hub_cpu']:.2f} s; "
          f"PostgreSQL CPU {ebs['pg_cpu']:.2f} s vs {orig['pg_cpu']:.2f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=100)
    p.add_argument("--rounds", type=int, default=12,
                   help="polls while the builds run (12: one hour at 5 minutes)")
    p.add_argument("--measured-rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results.jsonl"))
    args = p.parse_args()
    report = run(args.packages, args.rounds, args.measured_rounds)
    show(report)
    print(json.dumps(report))
    with args.out.open("a") as f:
        f.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
