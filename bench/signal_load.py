"""Benchmark: do tag signals at the bridge's rate slow a running batch? (not a test)

One stack (dev server, simulator with zero-time builds, worker process) with
(2R + 1) x N packages, so that each batch rebuilds packages of its own (a
second batch of the same builds would compare unlike work: Bodhi refuses an
update for builds already in one). Each batch runs as it does in production:
a BatchCollector is sent its N packages as tag signals (grouped as the bridge
groups them), waits out its lull and starts the batch as its child. The first
batch runs alone; then, R times (`--rounds`, default 2), one runs while its
collector gets tag signals at `--rate` per second from a process of its own
(as the bridge is one), from the batch's start to its end, as during a mass
rebuild, and the next runs alone again. Each batch's time is its workflow's,
start to close, as Temporal recorded it. The baseline is the mean of the lone
batches, the loaded figure the mean of the others: interleaved, so that a
simulator that slows as it fills does not count as the signals' doing.

    .venv/bin/python bench/signal_load.py --packages 2000 --rate 300

Target (issue 15): signals at 300/s slow the running batch by <= 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    Stack,
    StackOptions,
    add_common_options,
    await_result,
    common_options,
    emit,
    machine,
    stack,
    tag_sender,
)
from bench.mass_rebuild import signal_all  # noqa: E402
from ebs.contracts.collector import CollectorState  # noqa: E402
from ebs.contracts.events import TagEvent  # noqa: E402
from ebs.contracts.names import SIGNAL_PAUSE  # noqa: E402
from ebs.devstack.waiting import eventually  # noqa: E402
from ebs.workflows.collector import BatchCollector  # noqa: E402

TARGET_SLOWDOWN = 0.10


async def signal_at(handle: Any, rate: float, stop: asyncio.Event, sent: list[int],
                    first: int = 0, concurrency: int = 64) -> None:
    """Tag signals at `rate` per second (`concurrency` in flight, grouped as the
    bridge groups them) until `stop`; components `noise-<first>` onwards."""
    gate = asyncio.Semaphore(concurrency)
    sender = tag_sender(handle)
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        async with gate:
            await sender.submit(TagEvent(
                f"noise-{n:06d}", f"noise-{n:06d}-1-1.fc45", event_id=f"noise-{n}"))
            sent[0] += 1

    n = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        task = asyncio.ensure_future(one(first + n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)


async def noise_process(address: str, rate: float, first: int) -> None:
    """`--noise`: signal_at in a process of its own, as the bridge is one, so
    that sending does not take the GIL from the simulator in the benchmark's
    process. Connects, then waits for a line on stdin naming the collector;
    signals it until stdin closes. Prints `sent N` twice a second and at the end."""
    from ebs.temporal_client import connect_to

    client = await connect_to(address)
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    workflow_id = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
    if not workflow_id:
        return
    stop, sent = asyncio.Event(), [0]
    eof = loop.run_in_executor(None, sys.stdin.read)
    eof.add_done_callback(lambda _: stop.set())
    noise = asyncio.ensure_future(signal_at(client.get_workflow_handle(workflow_id), rate,
                                            stop, sent, first))
    while not stop.is_set():
        print(f"sent {sent[0]}", flush=True)
        await asyncio.sleep(0.5)
    await noise
    print(f"sent {sent[0]}", flush=True)


class Noise:
    """The `--noise` process: tag signals at `rate` a second, for components
    numbered from `first`; started (connected) ahead, so that `go` starts the
    signals at once."""

    def __init__(self, address: str, rate: float, first: int = 0) -> None:
        self.argv = [sys.executable, __file__, "--noise", address, str(rate), str(first)]
        self.sent = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 60)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            if line.startswith(b"sent "):
                self.sent = int(line.split()[1])
            elif line.strip() == b"ready":
                self._ready.set()

    async def go(self, workflow_id: str) -> None:
        """Start signalling `workflow_id`."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(f"{workflow_id}\n".encode())
        await self._proc.stdin.drain()

    async def stop(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        if await self._proc.wait() != 0:
            raise RuntimeError(f"the noise process failed ({self._proc.returncode})")
        assert self._reader is not None
        await self._reader


@dataclass
class Round:
    seconds: float  # the batch's workflow, start to close
    signalled: int  # tags the noise process sent while the batch ran
    sent: int  # tags it sent in all
    queued: int  # components the collector held once the batch had ended


async def collector_batch(st: Stack, events: list[TagEvent], noise: Noise | None,
                          timeout: float) -> Round:
    """A fresh collector, sent `events` as the bridge sends them; once its
    batch has started, `noise` signals the collector until the batch ends."""
    handle = await st.client.start_workflow(
        BatchCollector.run, CollectorState(), task_queue=st.task_queue,
        id=f"ebs-collector-bench-{uuid.uuid4().hex[:8]}", start_signal=SIGNAL_PAUSE)
    await signal_all(handle, events)
    await handle.signal(BatchCollector.resume)

    async def batch_id() -> str:
        return (await handle.query(BatchCollector.status)).current_batch_id

    batch = st.client.get_workflow_handle(
        await eventually(batch_id, within=timeout, what="the collector's batch", interval=0.02))
    signalled = 0
    if noise is not None:
        await noise.go(handle.id)
        signalled = noise.sent
    await await_result(st, batch, timeout)
    if noise is not None:
        signalled = noise.sent - signalled
        # paused first: the lull after the last tag must not start a batch of them
        await handle.signal(BatchCollector.pause)
        await noise.stop()
    described = await batch.describe()
    assert described.close_time is not None
    status = await handle.query(BatchCollector.status)
    await handle.terminate("benchmark done")
    return Round((described.close_time - described.start_time).total_seconds(), signalled,
                 noise.sent if noise else 0, status.queue_length)


async def run(opts: StackOptions, rate: float, timeout: float, rounds: int = 2
              ) -> dict[str, Any]:
    """2 * `rounds` + 1 batches of packages of their own: alone, then `rounds`
    times under signals and alone again."""
    async with stack(opts) as st:
        everything = st.tag_events()
        n = len(everything) // (2 * rounds + 1)
        groups = [everything[i * n:(i + 1) * n] for i in range(2 * rounds + 1)]
        me = psutil.Process()
        cpu: dict[str, dict[str, float]] = {}

        async def measured(phase: str, events: list[TagEvent], noise: Noise | None) -> Round:
            st.worker_sampler.reset()
            st.temporal_sampler.reset()
            mine = sum(me.cpu_times()[:2])
            r = await collector_batch(st, events, noise, timeout)
            cpu[phase] = {
                "worker": round(st.worker_sampler.cpu_seconds, 1),
                "temporal": round(st.temporal_sampler.cpu_seconds, 1),
                "bench+simulator": round(sum(me.cpu_times()[:2]) - mine, 1)}
            return r

        alone = [await measured("alone 1", groups[0], None)]
        loaded: list[Round] = []
        for r in range(rounds):
            # (each round's noise tags other components: none is a redelivery)
            noise = Noise(st.address, rate, first=sum(x.sent for x in loaded))
            await noise.start()
            loaded.append(await measured(f"with signals {r + 1}", groups[2 * r + 1], noise))
            alone.append(await measured(f"alone {r + 2}", groups[2 * r + 2], None))
    baseline = statistics.mean(x.seconds for x in alone)
    with_signals = statistics.mean(x.seconds for x in loaded)
    signalling = sum(x.seconds for x in loaded)
    return {
        "bench": "signal_load",
        "packages": n,
        "rounds": rounds,
        "rate_target": rate,
        "rate_achieved": round(sum(x.signalled for x in loaded) / signalling, 1),
        "signals_sent": sum(x.sent for x in loaded),
        "collector_queued": sum(x.queued for x in loaded),
        "batch_alone_seconds": round(baseline, 2),
        "batch_alone_runs": [round(x.seconds, 2) for x in alone],
        "batch_with_signals_seconds": round(with_signals, 2),
        "batch_with_signals_runs": [round(x.seconds, 2) for x in loaded],
        "slowdown": round(with_signals / baseline - 1, 3),
        "cpu_seconds": cpu,
        "machine": machine(),
    }


def summary(r: dict[str, Any]) -> str:
    ok = r["slowdown"] <= TARGET_SLOWDOWN and r["rate_achieved"] >= 0.9 * r["rate_target"]
    return "\n".join([
        f"signal load, batches of {r['packages']}: alone {r['batch_alone_seconds']} s "
        f"(mean of {r['batch_alone_runs']}), with {r['rate_achieved']} tag signals/s "
        f"(asked {r['rate_target']}) {r['batch_with_signals_seconds']} s "
        f"(mean of {r['batch_with_signals_runs']})",
        f"  the collectors queued {r['collector_queued']} of the {r['signals_sent']} "
        "tags signalled",
        *(f"  CPU s {phase}: {secs}" for phase, secs in r["cpu_seconds"].items()),
        f"  target slowdown <= {TARGET_SLOWDOWN:.0%} at >= 90% of the rate: "
        f"{'met' if ok else 'MISSED'} (measured {r['slowdown']:.1%})",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--noise"]:
        address, rate, first = argv[1:4]
        asyncio.run(noise_process(address, float(rate), int(first)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=2000)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--rounds", type=int, default=2,
                   help="batches under signals, each followed by one alone")
    add_common_options(p)
    a = p.parse_args(argv)
    opts = StackOptions(packages=(2 * a.rounds + 1) * a.packages, **common_options(a))
    result = asyncio.run(run(opts, a.rate, a.timeout, a.rounds))
    emit(result, summary(result), a.out)
    return 0 if result["slowdown"] <= TARGET_SLOWDOWN else 1


if __name__ == "__main__":
    sys.exit(main())
