"""`python -m ebs.simulator` / `ebs sim`: run the simulator as a server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from . import Simulator, StateFileError
from .sinks import MessageSink, NullSink


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ebs sim", description=(
        "Run the Koji + Bodhi simulator: Koji XML-RPC at /kojihub, Bodhi at /bodhi, "
        "content-resolver lists at /content-resolver, control at /_sim."))
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8880, help="port (0: any free port)")
    p.add_argument("--seed", default="0", help="random seed (same seed, same world)")
    p.add_argument("--amqp-url", default=None,
                   help="publish Koji messages to this AMQP broker (default: discard them)")
    p.add_argument("--env", default="prod", help="fedora-messaging topic environment")
    p.add_argument("--task-messages", choices=("scratch", "all"), default="scratch",
                   help="which build tasks get buildsys.task.state.change (Fedora: scratch)")
    p.add_argument("--activity", type=float, default=0.0, metavar="SECONDS",
                   help="every SECONDS, a new Rawhide build lands in the trigger tag "
                        "(0: only when scripted)")
    p.add_argument("--state-file", default=None, metavar="PATH",
                   help="keep the world in this JSON file: load it on start if it exists "
                        "(instead of seeding), save it after changes and on exit, so builds "
                        "and side tags survive a restart")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sink: MessageSink = NullSink()
    if args.amqp_url:
        from ebs.bus import AmqpSink

        sink = AmqpSink(args.env, amqp_url=args.amqp_url)
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    try:
        sim = Simulator(seed=seed, sink=sink, task_messages=args.task_messages,
                        state_file=args.state_file)
        sim.start(args.host, args.port)
    except StateFileError as exc:
        print(f"ebs sim: error: {exc}", file=sys.stderr)
        close_sink = getattr(sink, "close", None)
        if close_sink is not None:
            close_sink()
        return 2
    if args.activity > 0:
        sim.start_activity(args.activity)
    print(f"ebs simulator: Koji hub {sim.hub_url}  Bodhi {sim.bodhi_url}  "
          f"control {sim.url}/_sim/state", flush=True)
    if args.state_file:
        print(f"ebs simulator: state in {args.state_file} "
              f"({'restored' if sim.restored else 'new world'})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    sim.stop()
    close = getattr(sink, "close", None)
    if close is not None:
        close()
    return 0
