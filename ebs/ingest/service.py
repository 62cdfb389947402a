"""`ebs ingest`: run the bridge until SIGTERM/SIGINT (ebs.cli.services parses
its options).

Configuration: the ebs config (trigger tag, eligibility, Koji user, Temporal)
and fedora-messaging's standard TOML (broker, queue, bindings, QoS, logging),
from --messaging-config, else $FEDORA_MESSAGING_CONF, else
/etc/fedora-messaging/config.toml; a file named by the first two must exist
(exit 2). Examples: ebs/ingest/conf/.

On SIGTERM the bridge stops consuming, lets in-flight messages settle (their
signals finish, or they go back to the queue) and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from ebs.bus import load_messaging_config
from ebs.config.holder import ConfigHolder
from ebs.config.model import EbsConfig
from ebs.config.sources import NO_SOURCE
from ebs.ingest.bridge import DEFAULT_CONSUMERS, Bridge
from ebs.ingest.forward import Forwarder, Unavailable
from ebs.ingest.rules import rules_of

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
DEFAULT_MESSAGING_CONF = "/etc/fedora-messaging/config.toml"


def consumer_count(explicit: int | None) -> int:
    """--consumers, else `consumers` in the TOML's [consumer_config], else 8."""
    if explicit is not None:
        return explicit
    from fedora_messaging import config as fm_config

    value = (fm_config.conf.get("consumer_config") or {}).get("consumers", DEFAULT_CONSUMERS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"consumer_config.consumers must be a positive integer, not {value!r}")
    return value


async def serve(
    holder: ConfigHolder,
    *,
    consumers: int = DEFAULT_CONSUMERS,
    stop: asyncio.Event | None = None,
    refresh_config: bool = True,
    reconnect_max_delay: float = 30.0,
    on_started: Callable[[Bridge], None] | None = None,
) -> int:
    """Run the bridge on the running loop until `stop` is set; the exit status.

    fedora-messaging's configuration must be loaded (ebs.bus.load_messaging_config).
    """
    from ebs.temporal_client import connect

    cfg = holder.current().config
    stop = stop or asyncio.Event()
    fatal: list[BaseException] = []
    loop = asyncio.get_running_loop()

    def on_fatal(err: BaseException) -> None:
        fatal.append(err)
        loop.call_soon_threadsafe(stop.set)

    if not cfg.configuration.koji.username:
        log.info(
            "koji.username is not set: task and build messages of any owner are forwarded "
            "to the build attempt they name; an attempt accepts them only for task ids "
            "it submitted"
        )
    forwarder = Forwarder(lambda: connect(cfg.temporal), cfg.temporal.task_queue)
    try:
        await forwarder.client()
    except Unavailable as err:
        log.warning("%s; messages wait in the queue until it answers", err)
    bridge = Bridge(
        rules_of(holder),
        forwarder,
        loop,
        consumers=consumers,
        on_fatal=on_fatal,
        reconnect_max_delay=reconnect_max_delay,
    )
    await asyncio.to_thread(bridge.start)
    if on_started is not None:
        on_started(bridge)
    refresher = asyncio.create_task(holder.refresh_forever()) if refresh_config else None
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing in-flight messages")
        await asyncio.to_thread(bridge.stop)
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
    if fatal:
        log.error("the bridge stopped because a consumer failed: %r", fatal[0])
        return EXIT_FAILED
    return EXIT_OK


def _rawhide_resolver() -> Callable[[EbsConfig], str]:
    """Bodhi's Rawhide stable tag for the config being loaded, for `trigger_tag:
    rawhide` (as the worker does); Bodhi is asked only when the trigger tag is
    `rawhide`."""
    from ebs.bodhi.adapter import BodhiFor

    bodhi_for = BodhiFor()
    return lambda cfg: bodhi_for(cfg).rawhide_stable_tag()


def run(
    config: str | Sequence[str],
    *,
    messaging_config: str | None = None,
    consumers: int | None = None,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
    logging_config: bool = True,
) -> int:
    """`ebs ingest`: blocks until SIGTERM/SIGINT; the exit status.

    `config` is one config source or several merged in order (paths, http(s)
    URLs, git+URL#ref[:path]), as for the worker, re-read every
    timers.config_refresh: the bridge's trigger tag and eligibility follow the
    same config repository as the worker's. The other arguments are the
    options of `ebs ingest` (ebs.cli.services), which parses them;
    `logging_config=False` is its --no-logging-config.
    """
    specs = [config] if isinstance(config, str) else list(config)
    if not specs:
        print(f"ebs ingest: {NO_SOURCE}", file=sys.stderr)
        return EXIT_CONFIG
    named = messaging_config or os.environ.get("FEDORA_MESSAGING_CONF")
    if named and not os.path.isfile(named):
        # fedora-messaging would silently fall back to its defaults.
        how = "--messaging-config" if messaging_config else "$FEDORA_MESSAGING_CONF"
        print(f"ebs ingest: {how}: no such file: {named}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        load_messaging_config(messaging_config)
        n = consumer_count(consumers)
    except Exception as err:  # ConfigurationException, ValueError
        print(f"ebs ingest: fedora-messaging configuration: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if logging_config:
        from fedora_messaging import config as fm_config

        fm_config.conf.setup_logging()
        ebs_logger = logging.getLogger("ebs")
        if ebs_logger.level == logging.NOTSET:  # the TOML says nothing about ebs
            ebs_logger.setLevel(logging.INFO)
    if not named and not os.path.exists(DEFAULT_MESSAGING_CONF):
        log.warning(
            "no fedora-messaging configuration at %s: using the library's defaults "
            "(broker on localhost, a private queue bound to everything)",
            DEFAULT_MESSAGING_CONF,
        )
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_addr)
    try:
        holder = ConfigHolder(specs, resolve_rawhide_for=_rawhide_resolver())
        holder.load()
    except Exception as err:
        print(f"ebs ingest: {err}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(_main(holder, n))


async def _main(holder: ConfigHolder, consumers: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    return await serve(holder, consumers=consumers, stop=stop)

