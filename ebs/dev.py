"""`ebs dev`: the embedded default, everything on this machine.

Starts, as child processes it supervises: the Temporal dev server (SQLite file
under the state dir, Web UI), a private RabbitMQ, the simulator (Koji + Bodhi,
publishing real Koji topics to that broker), one worker, the bus bridge and
the API. Ctrl-C, SIGTERM or SIGHUP (to it or its process group) stops them all
within seconds; a later run first stops whatever a SIGKILLed run left (recorded
in <state dir>/dev-run.json). With --demo (the
default) it tags a handful of packages so a batch with slices, a retry, a
failure and a Bodhi update happens within a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ebs.devstack.processes import (
    Child,
    PortInUse,
    RunRecord,
    check_ports_free,
    ebs_command,
    port_open,
    reap_leftovers,
    stop_all,
    wait_for,
)
from ebs.devstack.rabbitmq import free_port
from ebs.ingest.sandbox import SANDBOX_QUEUE, sandbox_messaging_config
from ebs.temporal_client import temporal_cli_path

log = logging.getLogger("ebs.dev")

# Every way of stopping `ebs dev` is done within 10 s.
CHILD_GRACE = 5.0
BROKER_STOP_TIMEOUT = 8.0
STOP_TIMEOUT = 9.0


# What --demo does: (package, sim outcomes); the sandbox config orders llvm
# first (slice 0) and glibc next (slice 10), skips tagging fedora-release and llvm.
DEMO = [
    ("llvm", ["CLOSED"]),
    ("glibc", ["CLOSED"]),
    ("bash", ["FAILED", "CLOSED"]),  # fails once, then succeeds
    ("rust", ["FAILED"] * 3),  # fails every attempt: a real failure
    ("fedora-release", ["CLOSED"]),  # skip_tag: built, not tagged into the side tag
    ("coreutils", ["CLOSED"]),
]


@dataclass
class DevOptions:
    """What `ebs dev` was asked for: its options, parsed (with their defaults and
    help) by ebs.cli.services."""

    state_dir: Path
    config: Path | None
    messaging_config: Path | None
    no_sim: bool
    demo: bool
    temporal_port: int
    ui_port: int
    api_port: int
    sim_port: int
    amqp_port: int
    worker_metrics_port: int  # 0: a free port
    ingest_metrics_port: int  # 0: a free port
    exit_after_demo: bool


def web_ui_origins(ui_port: int) -> list[str]:
    """The origins a browser gives the dev server's Web UI."""
    return [f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"]


def temporal_argv(a: DevOptions, state: Path) -> list[str]:
    """`temporal server start-dev` for `ebs dev`: SQLite file in the state dir, and a
    Web UI that decodes ebs's compressed payloads through the API's codec server
    (ebs.payload_codec, ebs.api.codec) with no step of the user's."""
    return [
        temporal_cli_path(), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", str(a.temporal_port), "--ui-port", str(a.ui_port),
        "--ui-codec-endpoint", f"http://127.0.0.1:{a.api_port}/codec",
        "--db-filename", str(state / "temporal.db"), "--log-level", "warn",
    ]


class DevStack:
    def __init__(self, args: DevOptions) -> None:
        self.args = args
        self.state: Path = args.state_dir.resolve()
        self.logs = self.state / "logs"
        self.children: list[Child] = []
        self.broker: Any = None
        self.sim_url = f"http://127.0.0.1:{args.sim_port}"
        self.config_path = self.state / "ebs.yaml"
        self.messaging_path = self.state / "messaging.toml"
        self.record = RunRecord(self.state / "dev-run.json")
        self.bus: Any = None  # BusWatch: ebs's own messages on the private broker

    # ---- start -----------------------------------------------------------

    def start(self) -> None:
        a = self.args
        ports = {"temporal": a.temporal_port, "ui": a.ui_port, "api": a.api_port}
        a.worker_metrics_port = a.worker_metrics_port or free_port()
        a.ingest_metrics_port = a.ingest_metrics_port or free_port()
        ports["worker metrics"] = a.worker_metrics_port
        ports["ingest metrics"] = a.ingest_metrics_port
        if not a.no_sim:
            ports["sim"] = a.sim_port
        if a.messaging_config is None:
            ports["amqp"] = a.amqp_port
        self.state.mkdir(parents=True, exist_ok=True)
        # A run that was SIGKILLed left its processes (and ports) behind.
        reap_leftovers(self.record.path, say=lambda m: print(m, flush=True))
        check_ports_free(ports)
        self._start_temporal()
        amqp_url = self._start_broker() if a.messaging_config is None else None
        if not a.no_sim:
            # The simulated Koji/Bodhi keep their world beside Temporal's SQLite
            # file, so a batch interrupted by Ctrl-C resumes on the next run.
            argv = ["sim", "--port", str(a.sim_port), "--seed", "0",
                    "--state-file", str(self.state / "simulator.json")]
            if amqp_url:
                argv += ["--amqp-url", amqp_url]
            self._spawn("sim", ebs_command(*argv))
            wait_for(lambda: port_open(a.sim_port), 30, "simulator", self.children[-1].alive)
        self._write_config(amqp_url)
        if amqp_url:
            from ebs.devstack.messages import BusWatch

            self.bus = BusWatch(amqp_url, self.logs / "messages.jsonl")
        self._spawn("worker", ebs_command("worker", "--config", str(self.config_path),
                                          "--metrics-port", str(a.worker_metrics_port)))
        ingest = self._spawn("ingest", ebs_command(
            "ingest", "--config", str(self.config_path),
            "--messaging-config", str(self.messaging_path),
            "--metrics-port", str(a.ingest_metrics_port)))
        if self.broker is not None:
            # Messages published before the bridge has declared and bound its
            # queue would be unroutable, and lost.
            wait_for(lambda: self.broker.consumers(SANDBOX_QUEUE) > 0, 60, "bridge",
                     ingest.alive)
        self._spawn("api", ebs_command(
            "api", "--config", str(self.config_path), "--port", str(a.api_port),
            "--allow-anonymous-writes",
            "--metrics-from", f"http://127.0.0.1:{a.worker_metrics_port}/metrics",
            "--metrics-from", f"http://127.0.0.1:{a.ingest_metrics_port}/metrics"))
        wait_for(lambda: port_open(a.api_port), 60, "API", self.children[-1].alive)

    def _spawn(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.logs / f"{name}.log").start()
        self.children.append(child)
        self.record.add(child)
        return child

    def _start_temporal(self) -> None:
        a = self.args
        child = self._spawn("temporal", temporal_argv(a, self.state))
        wait_for(lambda: port_open(a.temporal_port), 60, "Temporal dev server", child.alive)
        asyncio.run(self._register_search_attributes())

    async def _register_search_attributes(self) -> None:
        from ebs.temporal_client import connect_to, register_search_attributes

        deadline = time.monotonic() + 30
        while True:
            try:
                client = await connect_to(f"127.0.0.1:{self.args.temporal_port}")
                await register_search_attributes(client, "default")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def _start_broker(self) -> str:
        from ebs.devstack.rabbitmq import RabbitMQ

        # One node per state dir: it keeps its queue across runs, and two
        # stacks in different dirs do not collide.
        tag = hashlib.sha256(str(self.state).encode()).hexdigest()[:8]
        self.broker = RabbitMQ(self.state / "rabbitmq", port=self.args.amqp_port,
                               node=f"ebsdev{tag}@localhost")
        self.record.set_rabbitmq(self.broker.base, self.broker.node, self.broker.port)
        self.broker.start()
        return str(self.broker.amqp_url)

    def _write_config(self, amqp_url: str | None) -> None:
        from ebs.config.loader import example_path

        a = self.args
        if a.config is not None:
            data = yaml.safe_load(a.config.read_text())
        else:
            data = yaml.safe_load(example_path("sandbox").read_text())
            koji = data["configuration"]["koji"]
            koji["server"] = f"{self.sim_url}/kojihub"
            koji["weburl"] = f"{self.sim_url}/koji"
            data["configuration"]["bodhi"]["url"] = f"{self.sim_url}/bodhi/"
            # The real package-list resolver, against the simulator's Content Resolver.
            data["components"]["autopackagelist"] = {
                "view": ["eln", "eln-extras"],
                "source": ["source", "buildroot-source"],
                "content_resolver": f"{self.sim_url}/content-resolver",
            }
            if amqp_url:  # the worker announces batches on the private broker
                from ebs.devstack.messages import publish_toml

                publish = self.state / "publish.toml"
                publish.write_text(publish_toml(amqp_url))
                data["messaging"] = {"config": str(publish),
                                     "recent_log": str(self.logs / "messages.jsonl")}
        data.setdefault("temporal", {})
        data["temporal"]["address"] = f"127.0.0.1:{a.temporal_port}"
        data["temporal"]["ui_url"] = f"http://127.0.0.1:{a.ui_port}"
        # The embedded Web UI calls the API's codec server from the browser.
        api = data.get("api") or {}
        origins = list(api.get("codec_cors_origins") or [])
        origins += [o for o in web_ui_origins(a.ui_port) if o not in origins]
        data["api"] = {**api, "codec_cors_origins": origins}
        self.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        if amqp_url is None:  # no broker of ours: the user's messaging config
            assert a.messaging_config is not None
            self.messaging_path.write_text(a.messaging_config.read_text())
        else:
            self.messaging_path.write_text(sandbox_messaging_config(amqp_url))

    # ---- demo and watching -------------------------------------------------

    def _sim_post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"{self.sim_url}/_sim/{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def demo(self) -> None:
        self._sim_post("script", {"outcomes": {name: out for name, out in DEMO},
                                  "default_duration": 2.0})
        stamp = int(time.time()) % 100000
        for name, _ in DEMO:
            self._sim_post("rawhide-build", {"name": name, "version": "99",
                                             "release": f"{stamp}"})
        print(f"demo: tagged {len(DEMO)} packages into Rawhide: "
              + ", ".join(n for n, _ in DEMO), flush=True)

    def urls(self) -> str:
        a = self.args
        lines = [
            f"  Temporal Web UI   http://127.0.0.1:{a.ui_port}",
            f"  status page       http://127.0.0.1:{a.api_port}/status.html",
            f"  API (OpenAPI)     http://127.0.0.1:{a.api_port}/docs",
            f"  metrics           http://127.0.0.1:{a.api_port}/metrics",
        ]
        if not a.no_sim:
            lines.append(f"  simulator         {self.sim_url}/_sim/state")
        lines.append(f"  logs              {self.logs}/")
        return "\n".join(lines)

    async def watch(self, stop: asyncio.Event) -> int:
        """Print a line per finished batch; return when asked or a child dies."""
        from ebs.contracts.collector import CollectorStatus
        from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS
        from ebs.temporal_client import connect_to

        client = await connect_to(f"127.0.0.1:{self.args.temporal_port}")
        seen: set[str] = set()
        first = True
        while not stop.is_set():
            for child in self.children:
                if not child.alive():
                    print(f"\n{child.name} exited unexpectedly; last lines of {child.log}:\n"
                          f"{child.tail()}", file=sys.stderr)
                    return 1
            try:
                st: CollectorStatus = await client.get_workflow_handle(
                    COLLECTOR_WORKFLOW_ID).query(QUERY_STATUS, result_type=CollectorStatus)
                for b in st.recent_batches:
                    if b.batch_id not in seen:
                        seen.add(b.batch_id)
                        if not first:
                            print(_summary(b), flush=True)
                        if self.args.exit_after_demo and not first:
                            self._print_bus()  # batch.finished precedes the batch's end
                            return 0
                first = False
            except Exception:
                first = False  # the collector starts with the first tag
            self._print_bus()
            try:
                await asyncio.wait_for(stop.wait(), timeout=2)
            except TimeoutError:
                pass
        return 0

    def _print_bus(self) -> None:
        if self.bus is not None:
            for line in self.bus.poll():
                print(line, flush=True)

    def stop(self) -> None:
        """Stop everything at once, within STOP_TIMEOUT: the children get
        SIGTERM (SIGKILL after CHILD_GRACE s), the broker rabbitmqctl stop."""
        if self.bus is not None:
            self.bus.close()
        broker = None
        if self.broker is not None:
            broker = threading.Thread(target=self._stop_broker, daemon=True)
            broker.start()
        try:
            stop_all(self.children, CHILD_GRACE)
        except Exception as err:  # the broker must still stop
            print(f"could not stop every child: {err}", file=sys.stderr)
        if broker is not None:
            broker.join(STOP_TIMEOUT)
        self.record.remove()

    def _stop_broker(self) -> None:
        try:
            self.broker.stop(timeout=BROKER_STOP_TIMEOUT)
        except Exception as err:
            print(f"could not stop RabbitMQ: {err}", file=sys.stderr)


def _summary(b: Any) -> str:
    failed = f"; failed: {', '.join(b.failed_components)}" if b.failed_components else ""
    return (f"batch {b.batch_id}: {b.outcome} — {b.packages} package(s), "
            f"{b.succeeded} built, {b.failed} failed{failed}")


def run(args: DevOptions) -> int:
    """`ebs dev`: start everything, watch until stopped; the exit status (2: a
    port is taken, 1: a part did not start, 130: interrupted while starting)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stack = DevStack(args)

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Until the watch loop takes over, SIGTERM (and SIGHUP: the terminal closed)
    # interrupts start-up as Ctrl-C does, so that all stop what had started.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        stack.start()
    except KeyboardInterrupt:
        _shut_down(stack, "interrupted while starting; stopping…")
        return 130
    except PortInUse as err:
        print(f"ebs dev: {err}", file=sys.stderr)
        stack.stop()
        return 2
    except (RuntimeError, TimeoutError, FileNotFoundError) as err:
        print(f"ebs dev: could not start: {err}", file=sys.stderr)
        for child in stack.children:
            if not child.alive():
                print(f"--- {child.log}\n{child.tail()}", file=sys.stderr)
        stack.stop()
        return 1
    print("ebs dev is up:\n" + stack.urls(), flush=True)
    if args.demo and not args.no_sim:
        stack.demo()

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        return await stack.watch(stop)

    try:
        code = asyncio.run(run())
    finally:
        _shut_down(stack, "stopping…")
    return code


def _shut_down(stack: DevStack, message: str) -> None:
    """Stop every child; a second Ctrl-C (or SIGTERM) must not leave half of
    them running."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    print(message, flush=True)
    stack.stop()



