"""The `ebs` command line.

Operator commands (trigger, status, pause, resume, history) talk to Temporal
directly with the connection settings of the config file; anyone who can reach
the Temporal namespace can use them, as with the `temporal` CLI. Service
commands (worker, ingest, api, sim, dev) import their module only when run, so
a module that is missing or broken only breaks its own command.

A user mistake (bad config path, invalid config, Temporal unreachable, a bad
package name) ends with one line on stderr and a non-zero exit; set EBS_DEBUG=1
to see tracebacks.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from ebs.api.control import Control
    from ebs.api.models import HistoryResponse, StatusResponse
    from ebs.config.model import EbsConfig

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USAGE = 2
EXIT_REJECTED = 3


class Failure(click.ClickException):
    """One line on stderr, then exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class UsageFailure(Failure):
    """A bad argument: one line on stderr, then exit status 2."""

    exit_code = EXIT_USAGE


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def _translate(err: Exception) -> Failure | None:
    """The Failure for an exception a user can cause, or None for a bug."""
    from ebs.api.control import RequestRejected, TemporalUnavailable
    from ebs.api.tokens import TokenFileError
    from ebs.contracts.components import InvalidComponents

    if isinstance(err, InvalidComponents):
        return UsageFailure(_one_line(err))
    if isinstance(err, TemporalUnavailable | RequestRejected | TokenFileError):
        return Failure(_one_line(err))
    if type(err).__name__ == "ConfigError":
        return Failure(f"config: {_one_line(err)}")
    if isinstance(err, RuntimeError) and str(err).startswith("Failed client connect"):
        return Failure(f"cannot connect to Temporal: {_one_line(err)}")
    if isinstance(err, OSError | ValueError):
        return Failure(_one_line(err))
    return None


def user_errors(*, catch_all: bool) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn user mistakes into one-line errors. With catch_all (operator commands),
    anything else is one line too unless EBS_DEBUG is set; services keep their
    tracebacks for unexpected errors, which belong in their logs."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt:
                raise SystemExit(130) from None
            except Exception as err:
                if os.environ.get("EBS_DEBUG"):
                    raise
                failure = _translate(err)
                if failure is None and catch_all:
                    failure = Failure(f"unexpected error: {type(err).__name__}: {_one_line(err)}")
                if failure is None:
                    raise
                raise failure from None

        return inner

    return wrap


def load(config_path: str) -> EbsConfig:
    from ebs.config.loader import load_config

    return load_config(config_path)


def run_control(cfg: EbsConfig, action: Callable[[Control], Awaitable[R]]) -> R:
    """Connect to Temporal as the config says, run one action."""

    async def go() -> R:
        from ebs.api.control import with_control
        from ebs.temporal_client import connect

        return await with_control(lambda: connect(cfg.temporal), cfg.temporal.task_queue, action)

    return _run(go())


def _run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def _lazy(module: str, attr: str, command: str) -> Any:
    import importlib

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


def config_sources(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--config / --config-url / --config-git, each repeatable (the services)."""
    for option in reversed((
        click.option("--config", "-c", "config_files", multiple=True, metavar="FILE",
                     envvar="EBS_CONFIG", help="A config file (YAML). Default: $EBS_CONFIG."),
        click.option("--config-url", "config_urls", multiple=True, metavar="URL",
                     help="A config fetched over HTTP(S)."),
        click.option("--config-git", "config_gits", multiple=True, metavar="URL#REF[:PATH]",
                     help="A config in a git repository, re-fetched on every refresh "
                     "(PATH defaults to elnbuildsync_dynamic.yaml)."),
    )):
        fn = option(fn)
    return fn


def _config_specs(files: tuple[str, ...], urls: tuple[str, ...],
                  gits: tuple[str, ...]) -> list[str]:
    from ebs.config.sources import NO_SOURCE, source_specs

    specs = source_specs(files, urls, gits)
    if not specs:
        raise click.UsageError(NO_SOURCE)
    return specs


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    envvar="EBS_CONFIG",
    required=True,
    metavar="FILE",
    help="The ebs configuration file (YAML). Default: $EBS_CONFIG.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ebs", prog_name="ebs")
def cli() -> None:
    """ebs rebuilds Fedora Rawhide packages for ELN, on Temporal.

    Operators queue components (trigger), look at what is happening (status,
    history) and stop or restart batching (pause, resume). The services are
    the worker (workflows and activities), the bus bridge (ingest), the HTTP API
    (api); `ebs dev` runs everything locally against a simulated Koji and Bodhi.
    """


# ---- operator commands --------------------------------------------------------


@cli.command()
@config_option
@json_option
@click.argument("packages", nargs=-1, required=True, metavar="PKG...")
@user_errors(catch_all=True)
def trigger(config_path: str, as_json: bool, packages: tuple[str, ...]) -> None:
    """Queue PKG... for the next rebuild batch.

    Each package is queued with the build chosen for it (the latest Rawhide
    build, or the ELN one when that is newer), or rejected with the reason
    (not an ELN package, excluded, no build...). Starts the batch collector if
    it is not running. Exits 3 when a package was rejected.
    """
    from ebs.api.models import trigger_response
    from ebs.contracts.components import check_components

    names = check_components(packages)
    requested_by = _user()

    async def act(ctl: Control) -> Any:
        return await ctl.trigger(names, source="cli", requested_by=requested_by)

    result = trigger_response(run_control(load(config_path), act), requested_by)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        for r in result.results:
            detail = r.nvr if r.status == "queued" else r.reason
            click.echo(f"{r.status:<9} {r.component}  {detail}")
    if result.rejected:
        sys.exit(EXIT_REJECTED)


@cli.command()
@config_option
@json_option
@click.option("--recent", default=10, show_default=True, type=click.IntRange(1, 100),
              help="How many past batches to show.")
@user_errors(catch_all=True)
def status(config_path: str, as_json: bool, recent: int) -> None:
    """Show the queue, the pause flag, the current batch and recent batches.

    --json prints the same document as the API's /status.json.
    """
    from ebs.api.links import Links
    from ebs.api.status import build_status

    cfg = load(config_path)
    links = Links.from_config(cfg)

    async def act(ctl: Control) -> StatusResponse:
        return await build_status(ctl, links, recent)

    result = run_control(cfg, act)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(format_status(result))


@cli.command()
@config_option
@user_errors(catch_all=True)
def pause(config_path: str) -> None:
    """Start no new batch until `ebs resume` (a running batch finishes).

    Components keep queuing meanwhile. The pause is part of the collector's
    durable state: it survives restarts of every ebs process.
    """

    async def act(ctl: Control) -> None:
        await ctl.pause()

    run_control(load(config_path), act)
    click.echo("paused: no new batch starts until `ebs resume`")


@cli.command()
@config_option
@user_errors(catch_all=True)
def resume(config_path: str) -> None:
    """Undo `ebs pause`: queued components batch again after the lull.

    A pause set in the configuration (control.pause) stays until the
    configuration changes.
    """

    async def act(ctl: Control) -> None:
        await ctl.resume()

    run_control(load(config_path), act)
    click.echo("resumed")


@cli.command()
@config_option
@json_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100),
              help="How many batches to show.")
@click.argument("package", metavar="PKG")
@user_errors(catch_all=True)
def history(config_path: str, as_json: bool, limit: int, package: str) -> None:
    """List the batches (newest first) that rebuilt PKG, with its outcome in each.

    Uses Temporal visibility on the EbsPackages search attribute; the same
    search in the Temporal Web UI is printed at the end.
    """
    from ebs.api.links import Links
    from ebs.api.status import build_history
    from ebs.contracts.components import check_component

    name = check_component(package)
    cfg = load(config_path)
    links = Links.from_config(cfg)

    async def act(ctl: Control) -> HistoryResponse:
        return await build_history(ctl, links, name, limit)

    result = run_control(cfg, act)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(format_history(result))


# ---- services -------------------------------------------------------------------


@cli.command()
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
    specs = _config_specs(config_files, config_urls, config_gits)
    run_worker = _lazy("ebs.worker", "run_worker", "worker")
    code = _run(
        run_worker(
            specs,
            metrics_port=metrics_port,
            max_concurrent_activities=max_concurrent_activities,
            untagging=untagging,
        )
    )
    sys.exit(code if isinstance(code, int) else 0)


@cli.command()
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
    specs = _config_specs(config_files, config_urls, config_gits)
    for path in config_files:
        load(path)  # a bad file: one clear line before anything starts
    run = _lazy("ebs.ingest", "run", "ingest")
    argv = ["--metrics-addr", metrics_addr]
    if messaging_config:
        argv += ["--messaging-config", messaging_config]
    if consumers is not None:
        argv += ["--consumers", str(consumers)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    if no_logging_config:
        argv.append("--no-logging-config")
    code = run(specs, *argv)
    sys.exit(code if isinstance(code, int) else 0)


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--api-tokens-file", metavar="FILE", envvar="EBS_API_TOKENS_FILE",
              help="Static API tokens, one `sha256:HEX [name]` (or plain token) per line; "
              "see `ebs api-token`.")
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
    allow_anonymous_writes: bool,
    no_sdk_metrics: bool,
    metrics_from: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve the HTTP API: /status.html, /status.json, /history, /metrics, the
    probes /alive and /startup, and the authenticated /trigger, /pause, /resume.

    Write endpoints accept OIDC bearer tokens (open_id_connect in the config:
    issuer, audience, JWKS, admin_groups) and static API tokens. The OpenAPI
    document is at /openapi.json.
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
        )
    except UnsafeOptions as err:  # refused before anything starts
        raise UsageFailure(str(err)) from None


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.pass_context
@user_errors(catch_all=False)
def sim(ctx: click.Context) -> None:
    """Run the Koji/Bodhi/bus simulator (all options, --help included, go to it)."""
    main = _lazy("ebs.simulator", "main", "sim")
    code = main(list(ctx.args))
    sys.exit(code if isinstance(code, int) else 0)


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.pass_context
@user_errors(catch_all=False)
def dev(ctx: click.Context) -> None:
    """Run everything locally: Temporal dev server, worker, bridge, API and the
    simulator (all options, --help included, go to it)."""
    main = _lazy("ebs.dev", "main", "dev")
    code = main(list(ctx.args))
    sys.exit(code if isinstance(code, int) else 0)


@cli.command("api-token")
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


# ---- text output -----------------------------------------------------------------


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def format_status(s: StatusResponse) -> str:
    c = s.collector
    lines = []
    if not c.exists:
        lines.append("Collector: not started (the first trigger or bus message starts it)")
    else:
        pause = ""
        if c.paused:
            pause = ", PAUSED"
        if c.paused_by_config:
            pause += ", PAUSED by config (control.pause)"
        answered = "" if c.answered else " (did not answer its status query: is a worker running?)"
        lines.append(f"Collector: {c.status}{pause}{answered}")
    nxt = f", next batch at {_when(c.lull_deadline)}" if c.lull_deadline else ""
    lines.append(f"Queue: {c.queue_length} component(s){nxt}")
    for q in c.queued:
        lines.append(f"  {q.component:<28} {q.nvr:<40} {q.source:<4} {q.requested_by}")
    b = s.current_batch
    if b is None:
        lines.append("Current batch: none")
    else:
        lines.append(
            f"Current batch: {b.batch_id} ({b.phase or 'no answer'}), {b.packages} package(s)"
            + (f": {_counts(b.counts)}" if b.counts else "")
        )
        if b.temporal_url:
            lines.append(f"  {b.temporal_url}")
        for sl in b.slices:
            lines.append(f"  slice {sl.ordering} [{sl.state}] {_counts(sl.counts)}")
            for p in sl.packages:
                task = p.koji_tasks[-1].url or str(p.koji_tasks[-1].task_id) if p.koji_tasks else ""
                update = p.bodhi_update.url or p.bodhi_update.alias if p.bodhi_update else ""
                extra = "  ".join(x for x in (p.nvr, task, update, p.reason) if x)
                lines.append(f"    {p.component:<28} {p.state:<10} attempt {p.attempt}  {extra}")
    lines.append("Recent batches:" if s.recent_batches else "Recent batches: none")
    for r in s.recent_batches:
        done = f"{r.succeeded} built, {r.failed} failed" if r.failed is not None else ""
        lines.append(
            f"  {r.batch_id:<36} {r.status:<10} {r.outcome or '-':<9} "
            f"{_when(r.started_at)} -> {_when(r.finished_at)}  {r.packages} pkg  {done}".rstrip()
        )
    return "\n".join(lines)


def format_history(h: HistoryResponse) -> str:
    if not h.batches:
        lines = [f"No batch has rebuilt {h.component}."]
    else:
        lines = [f"Batches that rebuilt {h.component} (newest first):"]
    for e in h.batches:
        b, p = e.batch, e.package
        what = f"{p.state}, attempt {p.attempt}" if p else (e.error or "unknown")
        nvr = f"  {p.nvr}" if p and p.nvr else ""
        reason = f"  ({p.reason})" if p and p.reason else ""
        lines.append(
            f"  {b.batch_id:<36} {_when(b.started_at)}  batch {b.status}/{b.outcome or '-'}  "
            f"{h.component}: {what}{nvr}{reason}"
        )
    if h.temporal_search_url:
        lines.append(f"Temporal Web UI: {h.temporal_search_url}")
    return "\n".join(lines)


def _register_more() -> None:
    from ebs.cli_ledger import register

    register(cli)


_register_more()


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI; its exit status. Click, but a usage error is one line too."""
    try:
        cli.main(args=argv, prog_name="ebs", standalone_mode=False)
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "ebs"
        click.echo(f"Error: {err.format_message().rstrip('.')} (see `{where} --help`)", err=True)
        return err.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except click.exceptions.Exit as err:
        return err.exit_code
    except SystemExit as err:
        if err.code is None or isinstance(err.code, int):
            return err.code or 0
        click.echo(str(err.code), err=True)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    """The `ebs` entry point.

    Ends with os._exit: the Temporal SDK's native threads can crash the
    interpreter's finalization (seen after a query that timed out), which would
    turn a clean exit into an abort with a core dump."""
    code = run_cli(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
