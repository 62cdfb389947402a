"""The `ebs` CLI that the deployment files (deploy/temporal/) call: the console
script, its subcommands and their options."""

from __future__ import annotations

import tomllib

from tests.helpers.deploy import (
    EBS_PROCESSES,
    ROOT,
    cli_options,
)


def test_console_script_is_ebs_cli_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ebs"] == "ebs.cli:main"


def test_cli_has_the_processes_the_deployment_runs() -> None:
    options = cli_options()
    for sub in EBS_PROCESSES:
        assert sub in options, f"ebs.cli has no `{sub}` subcommand"
        assert "--config" in options[sub], f"`ebs {sub}` takes no --config"
    assert "--messaging-config" in options["ingest"]
