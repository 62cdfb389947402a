"""Service commands: what a supervisor (systemd, compose, Kubernetes) or a
developer runs (worker, ingest, api, sim, dev), and api-token for the API's
tokens file.

Click parses every option here, once; each command imports its module only
when run and hands it plain values, so a module that is missing or broken only
breaks its own command. Unexpected errors keep their tracebacks (they belong
in the service's log); user mistakes are one line (ebs.cli.errors).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import click

from ebs.cli.errors import Failure, UsageFailure, user_errors
from ebs.cli.options import config_option, config_sources, config_specs, load


def _lazy(module: str, attr: str, command: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            raise Failure(f"`ebs {command}` is not available: module {module} is missing") from err
        raise
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise Failure(f"`ebs {command}` is not available: {module}.{attr} is missing") from None


def _exit(code: object) -> None:
    sys.exit(code if isinstance(code, int) else 0)


@click.command()
@config_sources
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve this process's Prometheus metrics on this port.")
@click.option("--max-concurrent-activities", default=16, show_default=True,
              type=click.IntRange(1, 1000), help="Koji/Bodhi/mail activities run at once.")
@click.option("-t", "--untagging/--no-untagging", default=False, show_default=True,
              help="The cleanup schedule also untags all but the latest build of each listed "
              "component from the stable tag (the original's --untagging).")
@user_errors(catch_all=False)
def worker(
    config_files: tuple[str, ...],
    config_urls: tuple[str, ...],
    config_gits: tuple[str, ...],
    metrics_port: int | None,
    max_concurrent_activities: int,
    untagging: bool,
) -> None:
    """Run the Temporal worker: the workflows (collector, batches, attempts,
    sweep, config refresh) and the Koji, Bodhi, mail and settings activities,
    until SIGTERM/SIGINT.

    Several config sources are merged in order: files, then URLs, then git
    repositories (as the original's static file plus its config repository).
    They are re-fetched by the config-refresh schedule (timers.config_refresh);
    a config that fails to fetch or validate is refused and the previous one
    kept. A running batch keeps the settings it started with.
    """
    specs = config_specs(config_files, config_urls, config_gits)
    run_worker = _lazy("ebs.worker", "run_worker", "worker")
    code = asyncio.run(
        run_worker(
            specs,
            metrics_port=metrics_port,
            max_concurrent_activities=max_concurrent_activities,
            untagging=untagging,
        )
    )
    _exit(code)


@click.command()
@config_sources
@click.option("--messaging-config", metavar="TOML",
              help="fedora-messaging configuration (default: $FEDORA_MESSAGING_CONF, else "
              "/etc/fedora-messaging/config.toml).")
@click.option("--consumers", type=click.IntRange(1, 64),
              help="Parallel consumers on the queue (default: from the TOML, else the bridge's).")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve this process's Prometheus metrics on this port.")
@click.option("--metrics-addr", default="127.0.0.1", show_default=True,
              help="Address for --metrics-port.")
@click.option("--no-logging-config", is_flag=True,
              help="Leave logging alone instead of applying the TOML's [log_config].")
@user_errors(catch_all=False)
def ingest(
    config_files: tuple[str, ...],
    config_urls: tuple[str, ...],
    config_gits: tuple[str, ...],
    messaging_config: str | None,
    consumers: int | None,
    metrics_port: int | None,
    metrics_addr: str,
    no_logging_config: bool,
) -> None:
    """Run the bus bridge: Koji tag, task and repo messages from fedora-messaging
    to the collector and the running batch, until SIGTERM/SIGINT.

    The config sources are those of `ebs worker` (merged in order, re-read
    every timers.config_refresh), so the bridge's trigger tag and eligibility
    follow the same config repository."""
    specs = config_specs(config_files, config_urls, config_gits)
    for path in config_files:
        load(path)  # a bad file: one clear line before anything starts
    run = _lazy("ebs.ingest", "run", "ingest")
    code = run(
        specs,
        messaging_config=messaging_config,
        consumers=consumers,
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        logging_config=not no_logging_config,
    )
    _exit(code)


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-tokens-file", metavar="FILE", envvar="EBS_API_TOKENS_FILE",
              help="Static API tokens, one `sha256:HEX [name]` (or plain token) per line; "
              "see `ebs api-token`.")
@click.option("--openid-client-secret-file", metavar="FILE",
              envvar="EBS_OIDC_CLIENT_SECRET_FILE",
              help="The OIDC client secret (first line), as in ELNBuildSync: enables browser "
              "login (/login) and token introspection; overrides "
              "open_id_connect.client_secret_file.")
@click.option("--allow-anonymous-writes", is_flag=True,
              help="Accept /trigger, /pause, /resume without credentials (local development; "
              "loopback --host only).")
@click.option("--no-sdk-metrics", is_flag=True,
              help="Do not export the Temporal SDK's metrics on /metrics.")
@click.option("--metrics-from", "metrics_from", multiple=True, metavar="URL",
              help="Append the ebs_* metrics of this endpoint (a worker's or bridge's "
              "--metrics-port) to /metrics; repeatable.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@user_errors(catch_all=False)
def api(
    config_path: str,
    host: str,
    port: int,
    api_tokens_file: str | None,
    openid_client_secret_file: str | None,
    allow_anonymous_writes: bool,
    no_sdk_metrics: bool,
    metrics_from: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve the HTTP API: /status.html, /status.json, /history, /metrics, the
    probes /alive and /startup, and the authenticated /trigger, /pause, /resume.

    Write endpoints accept OIDC bearer tokens (open_id_connect in the config:
    JWTs checked against the JWKS, opaque tokens at the provider; admin_groups),
    static API tokens, and the session cookie of the browser login (/login,
    needs the client secret). The OpenAPI document is at /openapi.json.
    """
    from ebs.api.server import UnsafeOptions, serve

    cfg = load(config_path)
    try:
        serve(
            cfg,
            host=host,
            port=port,
            api_tokens_file=api_tokens_file,
            allow_anonymous_writes=allow_anonymous_writes,
            sdk_metrics=not no_sdk_metrics,
            metrics_from=metrics_from,
            log_level=log_level,
            oidc_client_secret_file=openid_client_secret_file,
        )
    except UnsafeOptions as err:  # refused before anything starts
        raise UsageFailure(str(err)) from None


@click.command()
@click.option("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, default=8880, help="port (0: any free port)")
@click.option("--seed", default="0", help="random seed (same seed, same world)")
@click.option("--amqp-url", default=None,
              help="publish Koji messages to this AMQP broker (default: discard them)")
@click.option("--env", default="prod", help="fedora-messaging topic environment")
@click.option("--task-messages", type=click.Choice(["scratch", "all"]), default="scratch",
              help="which build tasks get buildsys.task.state.change (Fedora: scratch)")
@click.option("--activity", type=float, default=0.0, metavar="SECONDS",
              help="every SECONDS, a new Rawhide build lands in the trigger tag "
              "(0: only when scripted)")
@click.option("--state-file", default=None, metavar="PATH",
              help="keep the world in this JSON file: load it on start if it exists "
              "(instead of seeding), save it after changes and on exit, so builds "
              "and side tags survive a restart")
@click.option("-v", "--verbose", is_flag=True, help="log at debug level")
@user_errors(catch_all=False)
def sim(**options: Any) -> None:
    """Run the Koji + Bodhi simulator: Koji XML-RPC at /kojihub, Bodhi at /bodhi,
    content-resolver lists at /content-resolver, control at /_sim.

    Exits 2 when the --state-file cannot be used.
    """
    run = _lazy("ebs.simulator.cli", "run", "sim")
    _exit(run(**options))


@click.command()
@click.option("--state-dir", default="state", type=click.Path(path_type=Path),
              help="where the Temporal SQLite file, broker data, config and logs live "
              "(default: ./state); keep it to resume interrupted batches")
@click.option("--config", type=click.Path(path_type=Path),
              help="an ebs config to use instead of the sandbox one (e.g. staging Koji/"
              "Bodhi); the simulator still starts unless --no-sim")
@click.option("--messaging-config", type=click.Path(path_type=Path),
              help="fedora-messaging TOML for the bridge (default: the private broker)")
@click.option("--no-sim", is_flag=True, help="do not start the simulator")
@click.option("--demo/--no-demo", default=True,
              help="tag a few demo packages once everything is up (default)")
@click.option("--temporal-port", type=int, default=7233, show_default=True)
@click.option("--ui-port", type=int, default=8233, show_default=True)
@click.option("--api-port", type=int, default=8080, show_default=True)
@click.option("--sim-port", type=int, default=8880, show_default=True)
@click.option("--amqp-port", type=int, default=5672, show_default=True)
@click.option("--worker-metrics-port", type=int, default=0,
              help="the worker's Prometheus metrics, also appended to the API's "
              "/metrics (default: a free port)")
@click.option("--ingest-metrics-port", type=int, default=0,
              help="the bridge's Prometheus metrics, likewise (default: a free port)")
@click.option("--exit-after-demo", is_flag=True,
              help="stop once the demo batch has finished (for scripted checks)")
@user_errors(catch_all=False)
def dev(**options: Any) -> None:
    """Run everything locally: the Temporal dev server, the worker, the bridge,
    the API and the simulator, as child processes it supervises.

    The Temporal dev server keeps a SQLite file under the state dir (Web UI
    too); a private RabbitMQ carries the simulated Koji's real topics; the
    simulator plays Koji and Bodhi. Ctrl-C, SIGTERM or SIGHUP (to it or its
    process group) stops them all within seconds; a later run first stops
    whatever a SIGKILLed run left (recorded in <state dir>/dev-run.json). With
    --demo (the default) it tags a handful of packages so a batch with slices,
    a retry, a failure and a Bodhi update happens within a minute.

    Exits 2 when a port is taken, 1 when a part does not start, 130 when
    interrupted while starting.
    """
    dev_options = _lazy("ebs.dev", "DevOptions", "dev")
    run = _lazy("ebs.dev", "run", "dev")
    _exit(run(dev_options(**options)))


@click.command("api-token")
@click.argument("name", required=False)
def api_token(name: str | None) -> None:
    """Make a new random API token.

    Prints the token (give it to the client) and the line for the API tokens
    file (which stores only its hash). NAME is who the token acts as.
    """
    from ebs.api.tokens import new_token

    token, line = new_token()
    click.echo(f"token: {token}")
    click.echo(f"tokens file line: {line}{' ' + name if name else ''}")


COMMANDS: list[click.Command] = [worker, ingest, api, sim, dev, api_token]
