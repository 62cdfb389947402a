"""`ebs sim` / `python -m ebs.simulator`: run the simulator as a server."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from . import Simulator, StateFileError
from .sinks import MessageSink, NullSink


def run(*, host: str, port: int, seed: str, amqp_url: str | None, env: str,
        task_messages: str, activity: float, state_file: str | None, verbose: bool) -> int:
    """Serve until SIGINT/SIGTERM; the exit status (2: the state file cannot be used).
    The options are those of `ebs sim` (ebs.cli.services), which parses them."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sink: MessageSink = NullSink()
    if amqp_url:
        from ebs.bus import AmqpSink

        sink = AmqpSink(env, amqp_url=amqp_url)
    world_seed: int | str = int(seed) if seed.lstrip("-").isdigit() else seed
    try:
        sim = Simulator(seed=world_seed, sink=sink, task_messages=task_messages,
                        state_file=state_file)
        sim.start(host, port)
    except StateFileError as exc:
        print(f"ebs sim: error: {exc}", file=sys.stderr)
        close_sink = getattr(sink, "close", None)
        if close_sink is not None:
            close_sink()
        return 2
    if activity > 0:
        sim.start_activity(activity)
    print(f"ebs simulator: Koji hub {sim.hub_url}  Bodhi {sim.bodhi_url}  "
          f"control {sim.url}/_sim/state", flush=True)
    if state_file:
        print(f"ebs simulator: state in {state_file} "
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
