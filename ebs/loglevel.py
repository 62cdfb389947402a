"""Run-time log levels (`/loglevel/<LEVEL>`), for the API process and the workers.

The API sets its own root logger and signals the level to the BatchCollector,
which only records it (a defaulted state field, so replay is unaffected). Each
worker runs `follow_log_level`, which queries that field every few seconds and
applies it to the worker's root logger: every worker follows, however many
there are, and a worker started later picks the level up too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_LOG_LEVEL

log = logging.getLogger(__name__)

# The original accepts what logging.setLevel accepts; these are its names.
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET")
FOLLOW_SECONDS = 5.0


def set_log_level(name: str) -> bool:
    """Set the root logger's level; False (and no change) for an unknown name."""
    name = name.upper()
    if name not in LOG_LEVELS:
        return False
    root = logging.getLogger()
    if logging.getLevelName(root.level) != name:
        root.setLevel(name)
        log.warning("Log Level changed to %s", name)
    return True


async def follow_log_level(client: Client, interval: float = FOLLOW_SECONDS) -> None:
    """Apply the collector's recorded log level to this process, until cancelled."""
    applied = ""
    while True:
        try:
            handle = client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
            level = await handle.query(
                QUERY_LOG_LEVEL, result_type=str, rpc_timeout=timedelta(seconds=interval)
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
            # No collector yet, an old collector without the query, Temporal away.
            log.debug("cannot read the collector's log level: %s", err)
            level = ""
        if level and level != applied and set_log_level(level):
            applied = level
        await asyncio.sleep(interval)
