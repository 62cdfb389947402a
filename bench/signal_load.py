"""Benchmark: do tag signals at the bridge's rate slow a running batch? (not a test)

One stack (dev server, simulator with zero-time builds, worker process) with
3N packages, so that each batch rebuilds packages of its own (a second batch
of the same builds would compare unlike work: Bodhi refuses an update for
builds already in one). A batch of N packages runs alone; the next N run
while a BatchCollector (paused, so that it starts no batch of its own) gets
tag signals at `--rate` per second from a process of its own, grouped as the
bridge groups them, as during a mass rebuild: the collector
queues them, hands them to its queue holders, and all of it shares the worker
with the batch; the last N run alone again. The baseline is the mean of the
two lone batches, so that a simulator that slows as it fills does not count
as the signals' doing. Reports the wall times and the slowdown.

    .venv/bin/python bench/signal_load.py --packages 2000 --rate 300

Target (issue 15): signals at 300/s slow the running batch by <= 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    StackOptions,
    add_common_options,
    await_result,
    common_options,
    emit,
    machine,
    stack,
    tag_sender,
)
from ebs.contracts.collector import CollectorState  # noqa: E402
from ebs.contracts.events import TagEvent  # noqa: E402
from ebs.contracts.names import SIGNAL_PAUSE  # noqa: E402
from ebs.workflows.collector import BatchCollector  # noqa: E402

TARGET_SLOWDOWN = 0.10


async def signal_at(handle: Any, rate: float, stop: asyncio.Event, sent: list[int],
                    concurrency: int = 64) -> None:
    """Tag signals at `rate` per second (`concurrency` in flight, grouped as the
    bridge groups them) until `stop`."""
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
        task = asyncio.ensure_future(one(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)


async def noise_process(address: str, workflow_id: str, rate: float) -> None:
    """`--noise`: signal_at in a process of its own, as the bridge is one, so
    that sending does not take the GIL from the simulator in the benchmark's
    process. Prints `sent N` twice a second and at the end; stops when its
    stdin closes."""
    from ebs.temporal_client import connect_to

    client = await connect_to(address)
    stop, sent = asyncio.Event(), [0]
    loop = asyncio.get_running_loop()
    eof = loop.run_in_executor(None, sys.stdin.read)
    eof.add_done_callback(lambda _: stop.set())
    noise = asyncio.ensure_future(signal_at(client.get_workflow_handle(workflow_id), rate,
                                            stop, sent))
    while not stop.is_set():
        print(f"sent {sent[0]}", flush=True)
        await asyncio.sleep(0.5)
    await noise
    print(f"sent {sent[0]}", flush=True)


class Noise:
    """The `--noise` process: tag signals to `workflow_id` at `rate` a second."""

    def __init__(self, address: str, workflow_id: str, rate: float) -> None:
        self.argv = [sys.executable, __file__, "--noise", address, workflow_id, str(rate)]
        self.sent = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            if line.startswith(b"sent "):
                self.sent = int(line.split()[1])

    async def stop(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        if await self._proc.wait() != 0:
            raise RuntimeError(f"the noise process failed ({self._proc.returncode})")
        assert self._reader is not None
        await self._reader


async def run(opts: StackOptions, rate: float, timeout: float) -> dict[str, Any]:
    """Three batches of `opts.packages // 3` packages: alone, under signals, alone."""
    async with stack(opts) as st:
        everything = st.tag_events()
        n = len(everything) // 3
        before, events, after = everything[:n], everything[n:2 * n], everything[2 * n:3 * n]
        settings = st.settings()
        me = psutil.Process()
        cpu: dict[str, dict[str, float]] = {}

        def cpu_from_now() -> Callable[[str], None]:
            st.worker_sampler.reset()
            st.temporal_sampler.reset()
            mine = sum(me.cpu_times()[:2])

            def record(phase: str) -> None:
                cpu[phase] = {
                    "worker": round(st.worker_sampler.cpu_seconds, 1),
                    "temporal": round(st.temporal_sampler.cpu_seconds, 1),
                    "bench+simulator": round(sum(me.cpu_times()[:2]) - mine, 1)}
            return record

        async def alone(batch: list[TagEvent], phase: str) -> float:
            record = cpu_from_now()
            started = time.monotonic()
            await await_result(st, await st.start_batch(batch, settings=settings), timeout)
            record(phase)
            return time.monotonic() - started

        alone_before = await alone(before, "alone before")

        collector = await st.client.start_workflow(
            BatchCollector.run, CollectorState(), task_queue=st.task_queue,
            id=f"ebs-collector-bench-{uuid.uuid4().hex[:8]}", start_signal=SIGNAL_PAUSE)
        noise = Noise(st.address, collector.id, rate)
        await noise.start()
        await asyncio.sleep(2)  # at full rate before the batch starts
        record = cpu_from_now()
        started = time.monotonic()
        signalled = noise.sent
        await await_result(st, await st.start_batch(events, settings=settings), timeout)
        loaded = time.monotonic() - started
        record("with signals")
        during = noise.sent - signalled
        await noise.stop()
        status = await collector.query(BatchCollector.status)
        await collector.terminate("benchmark done")
        alone_after = await alone(after, "alone after")
    baseline = (alone_before + alone_after) / 2
    return {
        "bench": "signal_load",
        "packages": len(events),
        "rate_target": rate,
        "rate_achieved": round(during / loaded, 1) if loaded else 0.0,
        "signals_sent": noise.sent,
        "collector_queue_length": status.queue_length,
        "batch_alone_seconds": round(baseline, 2),
        "batch_alone_before_seconds": round(alone_before, 2),
        "batch_alone_after_seconds": round(alone_after, 2),
        "batch_with_signals_seconds": round(loaded, 2),
        "slowdown": round(loaded / baseline - 1, 3),
        "cpu_seconds": cpu,
        "machine": machine(),
    }


def summary(r: dict[str, Any]) -> str:
    ok = r["slowdown"] <= TARGET_SLOWDOWN and r["rate_achieved"] >= 0.9 * r["rate_target"]
    return "\n".join([
        f"signal load, batch of {r['packages']}: alone {r['batch_alone_seconds']} s "
        f"(mean of {r['batch_alone_before_seconds']} s before and "
        f"{r['batch_alone_after_seconds']} s after), with "
        f"{r['rate_achieved']} tag signals/s (asked {r['rate_target']}) "
        f"{r['batch_with_signals_seconds']} s",
        f"  collector queued {r['collector_queue_length']} of {r['signals_sent']} signals",
        *(f"  CPU s {phase}: {secs}" for phase, secs in r["cpu_seconds"].items()),
        f"  target slowdown <= {TARGET_SLOWDOWN:.0%} at >= 90% of the rate: "
        f"{'met' if ok else 'MISSED'} (measured {r['slowdown']:.1%})",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--noise"]:
        address, workflow_id, rate = argv[1:4]
        asyncio.run(noise_process(address, workflow_id, float(rate)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=2000)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--timeout", type=float, default=900.0)
    add_common_options(p)
    a = p.parse_args(argv)
    opts = StackOptions(packages=3 * a.packages, **common_options(a))
    result = asyncio.run(run(opts, a.rate, a.timeout))
    emit(result, summary(result), a.out)
    return 0 if result["slowdown"] <= TARGET_SLOWDOWN else 1


if __name__ == "__main__":
    sys.exit(main())
