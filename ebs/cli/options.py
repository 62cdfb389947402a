"""Options shared by several `ebs` commands, and reading the config they name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ebs.config.model import EbsConfig


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


def config_specs(files: tuple[str, ...], urls: tuple[str, ...],
                 gits: tuple[str, ...]) -> list[str]:
    """The sources of config_sources, in merge order; a usage error when none."""
    from ebs.config.sources import NO_SOURCE, source_specs

    specs = source_specs(files, urls, gits)
    if not specs:
        raise click.UsageError(NO_SOURCE)
    return specs


def load(config_path: str) -> EbsConfig:
    from ebs.config.loader import load_config

    return load_config(config_path)
