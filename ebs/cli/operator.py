"""Operator commands: what a release engineer types (trigger, status, pause,
resume, history).

They talk to Temporal directly with the connection settings of the config
file; anyone who can reach the Temporal namespace can use them, as with the
`temporal` CLI. Any failure is one line on stderr (ebs.cli.errors).

A new command: a `@click.command()` function here, added to COMMANDS; its
Temporal side goes in ebs/api/control.py, shared with the API.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ebs.cli.errors import EXIT_REJECTED, user_errors
from ebs.cli.options import config_option, json_option, load
from ebs.cli.text import format_history, format_status, format_trigger

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ebs.api.control import Control
    from ebs.api.links import Links
    from ebs.config.model import EbsConfig

R = TypeVar("R")
M = TypeVar("M", bound="BaseModel")


def run_control(cfg: EbsConfig, action: Callable[[Control], Awaitable[R]]) -> R:
    """Connect to Temporal as the config says, run one action."""

    async def go() -> R:
        from ebs.api.control import with_control
        from ebs.temporal_client import connect

        return await with_control(lambda: connect(cfg.temporal), cfg.temporal.task_queue, action)

    return asyncio.run(go())


def show(cfg: EbsConfig, build: Callable[[Control, Links], Awaitable[M]], as_json: bool,
         as_text: Callable[[M], str]) -> None:
    """Build one report (as the API does, with the config's links) and print it."""
    from ebs.api.links import Links

    links = Links.from_config(cfg)
    echo(run_control(cfg, lambda ctl: build(ctl, links)), as_json, as_text)


def echo(result: M, as_json: bool, as_text: Callable[[M], str]) -> None:
    """--json prints the API's document, else the text for people."""
    click.echo(result.model_dump_json(indent=2) if as_json else as_text(result))


@click.command()
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
    echo(result, as_json, format_trigger)
    if result.rejected:
        sys.exit(EXIT_REJECTED)


@click.command()
@config_option
@json_option
@click.option("--recent", default=10, show_default=True, type=click.IntRange(1, 100),
              help="How many past batches to show.")
@user_errors(catch_all=True)
def status(config_path: str, as_json: bool, recent: int) -> None:
    """Show the queue, the pause flag, the current batch and recent batches.

    --json prints the same document as the API's /status.json.
    """
    from ebs.api.status import build_status

    cfg = load(config_path)
    show(cfg, lambda ctl, links: build_status(ctl, links, recent), as_json, format_status)


@click.command()
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


@click.command()
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


@click.command()
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
    from ebs.api.status import build_history
    from ebs.contracts.components import check_component

    name = check_component(package)
    cfg = load(config_path)
    show(cfg, lambda ctl, links: build_history(ctl, links, name, limit), as_json, format_history)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


COMMANDS: list[click.Command] = [trigger, status, pause, resume, history]
