"""Benchmark of the bus bridge (`ebs ingest`), not a test.

Measures, with a private RabbitMQ and a Temporal dev server on this machine
and the bridge as a real process (`python -m ebs.ingest`):

* filtered: messages/s the bridge consumes and drops (Koji's usual traffic:
  other tags, other people's tasks, repos of tags that are not side tags);
* signals: eligible tag messages/s it turns into signals to the BatchCollector
  (signal-with-start, acknowledged only after Temporal accepted each one).

The queue is filled first, then the bridge starts and the clock runs until the
queue is empty (and, for signals, the collector holds every component).

    .venv/bin/python bench/ingest.py [--filtered 5000] [--signals 2000] [--consumers 1,4,8]

Targets: >= 1000 messages/s filtered, >= 300 signals/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.service import RPCError  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from ebs.activities.queue import QueueActivities  # noqa: E402
from ebs.bus import koji_message  # noqa: E402
from ebs.contracts.collector import CollectorSettings, CollectorStatus  # noqa: E402
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS  # noqa: E402
from ebs.devstack.processes import Child, free_port  # noqa: E402
from ebs.ingest.sandbox import sandbox_messaging_config  # noqa: E402
from ebs.temporal_client import connect_to  # noqa: E402
from ebs.workflows.collector import BatchCollector  # noqa: E402
from ebs.workflows.queue import CollectorQueue  # noqa: E402
from tests.helpers.config import write_bridge_config  # noqa: E402
from tests.helpers.rabbitmq import RabbitMQ  # noqa: E402
from tests.helpers.temporal import start_local  # noqa: E402

ROUTING_KEYS = [
    "org.fedoraproject.prod.buildsys.tag",
    "org.fedoraproject.prod.buildsys.task.state.change",
    "org.fedoraproject.prod.buildsys.repo.init",
    "org.fedoraproject.prod.buildsys.repo.done",
]


@activity.defn(name="collector_settings")
async def collector_settings() -> CollectorSettings:
    return CollectorSettings(lull=24 * 3600.0)  # no batch starts during the run


def tag_body(name: str, tag: str) -> dict[str, Any]:
    return {
        "build_id": 1,
        "name": name,
        "tag_id": 1,
        "instance": "primary",
        "tag": tag,
        "user": "bodhi",
        "version": "1.0",
        "release": "1.fc45",
        "owner": "packager",
    }


def task_body(task_id: int) -> dict[str, Any]:
    return {
        "id": task_id,
        "info": {
            "id": task_id,
            "method": "buildArch",
            "host_id": 3,
            "arch": "x86_64",
            "result": None,
            "request": ["tasks/1/foo.src.rpm", 5, "x86_64", True, {}],
            "children": [],
            "state": 2,
            "create_time": 1.0,
        },
        "method": "buildArch",
        "attribute": "state",
        "old": "OPEN",
        "new": "CLOSED",
        "srpm": "foo",
        "owner": "someone",
        "base_url": "https://koji.example",
        "files_base_url": "https://kojipkgs.example",
        "instance": "primary",
    }


def irrelevant(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for i in range(n):
        kind = i % 3
        if kind == 0:
            yield "buildsys.tag", tag_body(f"pkg-{i}", "f45-updates-candidate")
        elif kind == 1:
            yield "buildsys.task.state.change", task_body(i)
        else:
            yield "buildsys.repo.done", {"repo_id": i, "tag": "f45-build", "tag_id": 2}


def eligible(names: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in names:
        yield "buildsys.tag", tag_body(name, "f45")


def fill_queue(broker: RabbitMQ, queue: str, messages: Iterator[tuple[str, dict[str, Any]]]) -> int:
    """Declare the durable queue and publish real Koji messages into it."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = conn.channel()
    channel.queue_declare(queue, durable=True)
    for key in ROUTING_KEYS:
        channel.queue_bind(queue, "amq.topic", routing_key=key)
    channel.confirm_delivery()
    count = 0
    for topic, body in messages:
        msg = koji_message(topic, body, "prod")
        channel.basic_publish("amq.topic", msg.topic, msg._encoded_body, msg._properties)
        count += 1
    conn.close()
    return count


def write_configs(
    workdir: Path, broker: RabbitMQ, queue: str, address: str, task_queue: str, names: list[str]
) -> tuple[Path, Path]:
    config = write_bridge_config(workdir / "ebs.yaml", address, task_queue,
                                 {n: {} for n in names or ["bash"]})
    messaging = workdir / "messaging.toml"
    messaging.write_text(sandbox_messaging_config(broker.amqp_url, queue=queue,
                                                  ebs_log_level="WARNING", app="ebs bench"))
    return config, messaging


def start_bridge(config: Path, messaging: Path, consumers: int, metrics_port: int,
                 log: Path) -> Child:
    argv = [sys.executable, "-m", "ebs.ingest", "--config", str(config),
            "--messaging-config", str(messaging), "--consumers", str(consumers),
            "--metrics-port", str(metrics_port)]
    return Child("bridge", argv, log, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT).start()


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _busy(before: Any, after: Any) -> float:
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    total = sum(after) - sum(before)
    return 1.0 - idle / total if total > 0 else 0.0


def settled(metrics_port: int) -> int:
    """Messages the bridge has settled for good (ebs_bridge_messages, all but requeued)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "ebs_bridge_messages":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") != "requeued":
                total += sample.value
    return int(total)


async def collector_size(client: Client) -> int:
    try:
        status = await client.get_workflow_handle(COLLECTOR_WORKFLOW_ID).query(
            QUERY_STATUS, result_type=CollectorStatus
        )
    except RPCError:
        return 0
    return status.queue_length


async def run_case(
    *,
    broker: RabbitMQ,
    client: Client,
    address: str,
    workdir: Path,
    consumers: int,
    filtered: int,
    signals: int,
) -> tuple[float, float]:
    """(seconds, messages) for one bridge run over a pre-filled queue."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    names = [f"comp-{uuid.uuid4().hex[:10]}" for _ in range(signals)]
    config, messaging = write_configs(workdir, broker, queue, address, task_queue, names)
    total = fill_queue(broker, queue, irrelevant(filtered) if filtered else eligible(names))
    # A fresh collector per case: its history should not carry the previous run.
    try:
        await client.get_workflow_handle(COLLECTOR_WORKFLOW_ID).terminate("bench")
    except RPCError:
        pass
    # The collector and its queue holders (a queue over `hand_over_at` goes there).
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BatchCollector, CollectorQueue],
        activities=[collector_settings, *QueueActivities(client, task_queue).all()],
    )
    async with worker:
        log = workdir / f"bridge-{queue}.log"
        metrics_port = free_port()
        proc = start_bridge(config, messaging, consumers, metrics_port, log)
        try:
            # The clock runs from the first settled message to the last.
            while (first := settled(metrics_port)) == 0:
                if not proc.alive():
                    raise RuntimeError(f"bridge exited: {proc.tail()}")
                await asyncio.sleep(0.005)
            start = time.monotonic()
            bridge_cpu = _cpu(proc.pid)
            system_cpu = psutil.cpu_times()
            while settled(metrics_port) < total:
                if not proc.alive():
                    raise RuntimeError(f"bridge exited: {proc.tail()}")
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - start
            bridge_cpu = _cpu(proc.pid) - bridge_cpu
            busy = _busy(system_cpu, psutil.cpu_times())
            print(
                f"    bridge CPU {bridge_cpu / elapsed:.0%} of a core; machine busy {busy:.0%} "
                f"of {psutil.cpu_count()} cores"
            )
        finally:
            proc.stop(60)
        assert broker.queue_depth(queue) == (0, 0), "messages left in the queue"
        if signals:
            queued = await collector_size(client)
            assert queued == signals, f"the collector holds {queued} of {signals}"
    return elapsed, total - first


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filtered", type=int, default=5000, help="irrelevant messages")
    parser.add_argument("--signals", type=int, default=2000, help="eligible tag messages")
    parser.add_argument("--consumers", default="1,4,8", help="consumer counts to try")
    parser.add_argument(
        "--sqlite", action="store_true", help="dev server on a SQLite file (default: in memory)"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.consumers.split(",")]

    broker = RabbitMQ()
    broker.start()
    workdir = Path(tempfile.mkdtemp(prefix="ebs-bench-ingest-"))
    port = free_port()
    env = await start_local(
        port=port,
        ui=False,
        dev_server_extra_args=(
            ["--db-filename", str(workdir / "temporal.db")] if args.sqlite else []
        ),
        dev_server_log_level="error",
    )
    address = f"127.0.0.1:{port}"
    rows = []
    try:
        client = await connect_to(address)
        for consumers in counts:
            secs, n = await run_case(
                broker=broker,
                client=client,
                address=address,
                workdir=workdir,
                consumers=consumers,
                filtered=args.filtered,
                signals=0,
            )
            rows.append(("filtered", consumers, n, secs))
            print(f"filtered  consumers={consumers}: {n / secs:,.0f} msgs/s")
            secs, n = await run_case(
                broker=broker,
                client=client,
                address=address,
                workdir=workdir,
                consumers=consumers,
                filtered=0,
                signals=args.signals,
            )
            rows.append(("signals", consumers, n, secs))
            print(f"signals   consumers={consumers}: {n / secs:,.0f} signals/s")
    finally:
        await env.shutdown()
        broker.cleanup()
    print()
    print(f"{'case':<9} {'consumers':>9} {'messages':>9} {'seconds':>8} {'per second':>11}")
    for case, consumers, n, secs in rows:
        print(f"{case:<9} {consumers:>9} {n:>9} {secs:>8.2f} {n / secs:>11,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK's native threads can crash interpreter finalization
