"""`ebs denylist` and `ebs components`: the failed-SCM-URL denylist and the
per-component view, over the same code as the API (ebs.api.components)."""

from __future__ import annotations

import json
from typing import Any

import click

from ebs.cli.errors import user_errors
from ebs.cli.operator import run_control
from ebs.cli.options import config_option, json_option, load


@click.group()
def denylist() -> None:
    """The SCM URLs that failed for good: never submitted again; only a new
    Rawhide commit of the component is built."""


@denylist.command("list")
@config_option
@json_option
@user_errors(catch_all=True)
def denylist_list(config_path: str, as_json: bool) -> None:
    """Show every denylisted SCM URL, newest first."""
    from ebs.api.components import read_denied

    async def act(ctl: Any) -> Any:
        return await read_denied(ctl.client)

    entries = run_control(load(config_path), act)
    if as_json:
        click.echo(json.dumps([vars(e) for e in entries], indent=2))
        return
    if not entries:
        click.echo("the denylist is empty")
    for e in entries:
        click.echo(f"{e.component}\t{e.url}\t{e.rawhide_nvr}\t{e.batch_id}\t{e.failed_at}")


@denylist.command("clear")
@config_option
@click.argument("package", metavar="PKG")
@user_errors(catch_all=True)
def denylist_clear(config_path: str, package: str) -> None:
    """Forget PKG's failed SCM URLs: its current Rawhide build may be built again
    (queue it with `ebs trigger PKG`)."""
    from ebs.api.components import clear_denied
    from ebs.contracts.components import check_component

    name = check_component(package)

    async def act(ctl: Any) -> Any:
        return await clear_denied(ctl.client, name)

    result = run_control(load(config_path), act)
    if result.removed:
        click.echo(f"cleared {len(result.removed)} URL(s) of {name}:")
        for url in result.removed:
            click.echo(f"  {url}")
    else:
        click.echo(f"{name} had no denylisted URL")


@click.command()
@config_option
@json_option
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.argument("query", required=False, default="")
@user_errors(catch_all=True)
def components(config_path: str, as_json: bool, limit: int, query: str) -> None:
    """Where is my build? Every ELN component whose name contains QUERY: its last
    rebuild by ebs, state, detail, the NVR in the stable tag and the Koji task."""
    from ebs.api.components import default_catalog
    from ebs.api.links import Links

    cfg = load(config_path)

    async def act(ctl: Any) -> Any:
        async def client() -> Any:
            return ctl.client

        catalog = default_catalog(cfg, client, Links.from_config(cfg))
        return await catalog.search(query, 0, limit)

    resp = run_control(cfg, act)
    if as_json:
        click.echo(resp.model_dump_json(indent=2))
        return
    for s in resp.stale:
        click.echo(f"not current: {s}", err=True)
    for r in resp.components:
        click.echo(
            f"{r.name}\t{r.status}\t{r.nvr or r.rawhide_nvr or '-'}\t"
            f"stable: {r.stable_nvr or 'UNKNOWN'}\t{r.task_url or r.task_id or ''}\t{r.detail}"
        )
    if resp.total > len(resp.components):
        click.echo(f"… {resp.total - len(resp.components)} more; narrow QUERY or raise --limit")


COMMANDS: list[click.Command] = [denylist, components]
