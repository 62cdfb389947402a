"""Benchmark: completion latency, task message on the broker -> workflow acting (not a test).

A batch of N packages whose builds finish spread over `--spread` seconds. The
simulator publishes Koji's real messages (draft builds: buildsys.build.state.change;
with --scratch: buildsys.task.state.change) to a private RabbitMQ; the bus
bridge (`python -m ebs.ingest`, a real process with its default 16 consumers)
turns them into `task_state` signals to the BuildAttempt named in the build
request's custom_user_metadata.

For each task's final message: `published` is when the broker confirmed it,
`signalled` the WorkflowExecutionSignaled event's time, `acted` the
WorkflowTaskCompleted that followed it in the attempt's history (the workflow
ran its signal handler). Latency = acted - published; p50/p95 over all tasks.
The attempt's task poll is 300 s, so only messages can finish tasks early.

    .venv/bin/python bench/latency.py --packages 1000 [--spread 60] [--path bus|direct]

`--path direct` skips the broker: the bridge's decision and forwarder code run in
this process (for machines without rabbitmq-server).

Target: p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    Child,
    DirectBridge,
    EngineError,
    StackOptions,
    add_common_options,
    await_result,
    child_ids,
    common_options,
    emit,
    machine,
    percentile,
    stack,
    wait_until,
)
from ebs.contracts.events import TaskStateEvent  # noqa: E402
from ebs.contracts.names import SIGNAL_TASK_STATE  # noqa: E402
from ebs.ingest.sandbox import sandbox_messaging_config  # noqa: E402
from ebs.simulator.world import DEFAULT_USER  # noqa: E402

TARGET_P95 = 1.0
# buildsys.build.state.change `new` (koji.BUILD_STATES) -> the task's final state
BUILD_FINAL = {1: "CLOSED", 3: "FAILED", 4: "CANCELED"}


class RecordingSink:
    """Publishes through `inner` and notes when the broker confirmed each task's
    final message (task id -> epoch seconds)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.published: dict[int, float] = {}
        self.messages = 0
        self._lock = threading.Lock()

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        self.inner.publish(topic, body)
        now = time.time()
        task_id = final_task(topic, body)
        with self._lock:
            self.messages += 1
            if task_id is not None:
                self.published.setdefault(task_id, now)


def final_task(topic: str, body: dict[str, Any]) -> int | None:
    """The task a message reports finished, if it does."""
    if topic == "buildsys.task.state.change" and body.get("method") == "build" \
            and body.get("new") in ("CLOSED", "FAILED", "CANCELED"):
        return int(body["id"])
    if topic == "buildsys.build.state.change" and body.get("new") in BUILD_FINAL \
            and body.get("task_id"):
        return int(body["task_id"])
    return None


class DirectRecorder(DirectBridge):
    """The in-process bridge, noting final messages like RecordingSink."""

    def __init__(self, trigger_tag: str) -> None:
        super().__init__(trigger_tag, DEFAULT_USER)
        self.published: dict[int, float] = {}
        self.messages = 0

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        task_id = final_task(topic, body)
        now = time.time()
        self.messages += 1
        if task_id is not None:
            self.published.setdefault(task_id, now)
        super().publish(topic, body)


def messaging_toml(path: Path, amqp_url: str, queue: str) -> Path:
    path.write_text(sandbox_messaging_config(amqp_url, queue=queue, consumers=16,
                                             ebs_log_level="WARNING", app="ebs bench"))
    return path


async def acted_times(client: Any, workflow_id: str) -> dict[int, tuple[float, float]]:
    """task id -> (signalled, acted) for each final-state signal in the attempt."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    pending: list[tuple[int, float]] = []
    out: dict[int, tuple[float, float]] = {}
    for e in history.events:
        ts = e.event_time.ToDatetime().timestamp()
        if e.HasField("workflow_execution_signaled_event_attributes"):
            attrs = e.workflow_execution_signaled_event_attributes
            if attrs.signal_name != SIGNAL_TASK_STATE:
                continue
            (event,) = await client.data_converter.decode(attrs.input.payloads,
                                                          [TaskStateEvent])
            if event.state in ("CLOSED", "FAILED", "CANCELED") and event.task_id not in out:
                pending.append((event.task_id, ts))
        elif e.HasField("workflow_task_completed_event_attributes"):
            for task_id, signalled in pending:
                out.setdefault(task_id, (signalled, ts))
            pending = []
    return out


async def run(packages: int, spread: float, path: str, scratch: bool,
              extra: dict[str, Any], timeout: float) -> dict[str, Any]:
    broker = None
    amqp = None
    sink: Any
    if path == "bus":
        from ebs.bus import AmqpSink
        from ebs.devstack.rabbitmq import RabbitMQ

        broker = RabbitMQ()
        broker.start()
        amqp = AmqpSink("prod", amqp_url=broker.amqp_url)
        sink = RecordingSink(amqp)
    else:
        sink = DirectRecorder(trigger_tag="f45")
    bridge: Child | None = None
    error = ""
    try:
        opts = StackOptions(packages=packages, task_poll=300.0, scratch=scratch, sink=sink,
                            **extra)
        async with stack(opts) as st:
            for i, (name, _v, _r) in enumerate(st.sim.layout.packages):
                st.sim.set_duration(name, spread * (i + 1) / packages)
            if broker is not None:
                queue = f"bench-{uuid.uuid4().hex[:8]}"
                toml = messaging_toml(st.workdir / "messaging.toml", broker.amqp_url, queue)
                bridge = Child("bridge", [sys.executable, "-m", "ebs.ingest", "--config",
                                          str(st.config_path), "--messaging-config", str(toml)],
                               st.workdir / "bridge.log",
                               env={"PYTHONPATH": str(opts.engine)} if opts.engine else None,
                               cwd=opts.engine).start()
                await asyncio.to_thread(
                    wait_until, lambda: broker.consumers(queue) >= 8 or not bridge.alive(),
                    120, "the bridge's consumers")
                if not bridge.alive():
                    raise RuntimeError(f"the bridge exited:\n{bridge.tail()}")
            started = time.monotonic()
            handle = await st.start_batch(st.tag_events())
            try:
                await await_result(st, handle, timeout)
            except EngineError as err:
                error = str(err)
            wall = time.monotonic() - started
            acted: dict[int, tuple[float, float]] = {}
            for wid in await child_ids(st.client, handle.id):
                acted.update(await acted_times(st.client, wid))
            bridge_log = bridge.tail(5000) if bridge is not None else ""
    finally:
        if bridge is not None:
            bridge.stop()
        if amqp is not None:
            amqp.close()
        if broker is not None:
            broker.cleanup()
    published = dict(sink.published)
    total, to_signal, in_workflow = [], [], []
    for task_id, (signalled, done) in acted.items():
        if task_id in published:
            total.append(done - published[task_id])
            to_signal.append(signalled - published[task_id])
            in_workflow.append(done - signalled)

    def stats(values: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
                "max": round(max(values, default=0.0), 3)}

    return {
        "bench": "latency",
        "path": path,
        "packages": packages,
        "scratch": scratch,
        "spread_seconds": spread,
        "error": error,
        "wall_seconds": round(wall, 2),
        "messages_published": sink.messages,
        "final_messages": len(published),
        "tasks_measured": len(total),
        "latency": stats(total),
        "published_to_signalled": stats(to_signal),
        "signalled_to_acted": stats(in_workflow),
        "bridge_log_tail": bridge_log[-1500:] if error else "",
        "machine": machine(),
    }


def summary(r: dict[str, Any]) -> str:
    lat = r["latency"]
    ok = lat["p95"] <= TARGET_P95 and r["tasks_measured"] >= r["packages"] and not r["error"]
    return "\n".join([
        f"completion latency, {r['packages']} tasks finishing over {r['spread_seconds']} s, "
        f"via {'the broker and the bridge process' if r['path'] == 'bus' else 'in-process bridge'}"
        f" ({'scratch: task.state.change' if r['scratch'] else 'draft: build.state.change'}):",
        *([f"  ERROR: {r['error']}"] if r["error"] else []),
        f"  measured {r['tasks_measured']} of {r['packages']} tasks; "
        f"{r['messages_published']} messages published",
        f"  published -> acted: p50 {lat['p50']} s, p95 {lat['p95']} s, max {lat['max']} s "
        f"(target p95 <= {TARGET_P95} s: {'met' if ok else 'MISSED'})",
        f"  of which published -> signalled {r['published_to_signalled']}, "
        f"signalled -> acted {r['signalled_to_acted']}",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packages", type=int, default=1000)
    p.add_argument("--spread", type=float, default=60.0,
                   help="builds finish evenly over this many seconds (0: all at once)")
    p.add_argument("--path", choices=["bus", "direct"], default="bus")
    p.add_argument("--scratch", action="store_true",
                   help="scratch builds (buildsys.task.state.change) instead of draft builds")
    p.add_argument("--timeout", type=float, default=900.0)
    add_common_options(p)
    a = p.parse_args(argv)
    r = asyncio.run(run(a.packages, a.spread, a.path, a.scratch, common_options(a), a.timeout))
    emit(r, summary(r), a.out)
    return 0 if r["latency"]["p95"] <= TARGET_P95 and not r["error"] else 1


if __name__ == "__main__":
    sys.exit(main())
