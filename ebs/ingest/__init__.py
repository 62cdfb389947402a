"""The bus bridge (`ebs ingest`): Koji messages from Fedora Messaging to the
ebs workflows. decide (pure) -> forward (Temporal) -> bridge (AMQP)."""

from __future__ import annotations

from ebs.ingest.service import run, serve

__all__ = ["run", "serve"]
