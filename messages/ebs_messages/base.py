"""What every ebs message has: the batch it belongs to, a link to the batch in
the Temporal Web UI, and the account ebs acts as."""

from __future__ import annotations

import copy
from typing import Any

from fedora_messaging import message

SCHEMA_URL = "http://fedoraproject.org/message-schema/ebs"

NAMES = {"type": "array", "items": {"type": "string"}}

BASE_PROPERTIES: dict[str, Any] = {
    "batch_id": {"type": "string", "minLength": 1, "description": "the batch (ebs-batch-…)"},
    "batch_url": {
        "type": "string",
        "description": "the batch's workflow in the Temporal Web UI ('' if none configured)",
    },
    "agent": {
        "type": "string",
        "description": "the Koji/FAS account ebs builds and files updates as ('' if unknown)",
    },
}

UPDATE = {
    "type": "object",
    "properties": {
        "alias": {"type": "string"},
        "url": {"type": "string"},
    },
    "required": ["alias", "url"],
}


def schema(topic: str, description: str, properties: dict[str, Any],
           required: list[str]) -> dict[str, Any]:
    """A body schema: the common properties plus the message's own."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"{SCHEMA_URL}/{topic}.v1.json",
        "description": description,
        "type": "object",
        "properties": {**copy.deepcopy(BASE_PROPERTIES), **properties},
        "required": ["batch_id", "batch_url", "agent", *required],
    }


class EbsMessage(message.Message):
    """Base class of ebs's messages (FMN's properties: app, agent, packages)."""

    topic = "ebs"

    @property
    def app_name(self) -> str:
        return "ebs"

    @property
    def app_icon(self) -> str:
        return "https://apps.fedoraproject.org/img/icons/fedora-infra.png"

    @property
    def batch_id(self) -> str:
        return str(self.body.get("batch_id", ""))

    @property
    def batch_url(self) -> str:
        return str(self.body.get("batch_url", ""))

    @property
    def agent_name(self) -> str | None:
        return self.body.get("agent") or None

    @property
    def usernames(self) -> list[str]:
        return [self.agent_name] if self.agent_name else []

    @property
    def packages(self) -> list[str]:
        return []

    @property
    def url(self) -> str | None:
        return self.batch_url or None

    def __str__(self) -> str:
        lines = [self.summary]
        if self.batch_url:
            lines.append(f"Batch: {self.batch_url}")
        return "\n".join(lines)
