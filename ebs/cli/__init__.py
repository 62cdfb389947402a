"""The `ebs` command line (the console script `ebs = "ebs.cli:main"`).

Commands by audience: operator commands (trigger, status, pause, resume,
history) in ebs.cli.operator; service commands (worker, ingest, api, sim, dev,
api-token) in ebs.cli.services. Click parses every command line once.

A user mistake (bad config path, invalid config, Temporal unreachable, a bad
package name) ends with one line on stderr and a non-zero exit; set EBS_DEBUG=1
to see tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ebs.cli import ledger, operator, services


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ebs", prog_name="ebs")
def cli() -> None:
    """ebs rebuilds Fedora Rawhide packages for ELN, on Temporal.

    Operators queue components (trigger), look at what is happening (status,
    history) and stop or restart batching (pause, resume). The services are
    the worker (workflows and activities), the bus bridge (ingest), the HTTP API
    (api); `ebs dev` runs everything locally against a simulated Koji and Bodhi
    (`ebs sim`).
    """


for _command in (*operator.COMMANDS, *ledger.COMMANDS, *services.COMMANDS):
    cli.add_command(_command)


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


__all__ = ["cli", "main", "run_cli"]
