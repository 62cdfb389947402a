"""The messages a RebuildBatch publishes on the bus (ebs-messages topics)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

# Names message ids: uuid5(ID_NAMESPACE, "<batch id>/<event>").
ID_NAMESPACE = uuid.UUID("6f0b7d4e-3a51-5c1e-9a7e-2c0e1b5e1b5e")


@dataclass
class BusMessage:
    topic: str  # without the deployment's topic_prefix, e.g. "ebs.package.built"
    body: dict[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass
class PublishRequest:
    messages: list[BusMessage] = field(default_factory=list)


@dataclass
class PublishResult:
    published: int = 0
    disabled: bool = False  # messaging not configured: nothing sent


def message_id(batch_id: str, event: str) -> str:
    """The same id for the same event of the same batch, on every attempt."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{batch_id}/{event}"))


def batch_url(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The batch's workflow in the Temporal Web UI."""
    if not ui_url:
        return ""
    return (f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}")
