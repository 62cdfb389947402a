"""ebs.update.filed, ebs.update.stable and ebs.update.unstable: the Bodhi update
that carries a batch's rebuilds to the ELN stable tag."""

from __future__ import annotations

from typing import Any

from fedora_messaging.message import INFO, WARNING

from .base import NAMES, EbsMessage, schema

UPDATE_PROPERTIES: dict[str, Any] = {
    "alias": {"type": "string", "minLength": 1, "description": "the Bodhi update's alias"},
    "url": {"type": "string", "description": "the Bodhi update"},
    "builds": NAMES,
    "components": NAMES,
}
REQUIRED = ["alias", "url", "builds", "components"]


class UpdateMessage(EbsMessage):
    @property
    def alias(self) -> str:
        return str(self.body.get("alias", ""))

    @property
    def packages(self) -> list[str]:
        return sorted(self.body.get("components", []))

    @property
    def url(self) -> str | None:
        return self.body.get("url") or self.batch_url or None

    def __str__(self) -> str:
        lines = [self.summary, *(f"  {nvr}" for nvr in self.body.get("builds", []))]
        if self.body.get("url"):
            lines.append(f"Update: {self.body['url']}")
        if self.batch_url:
            lines.append(f"Batch: {self.batch_url}")
        return "\n".join(lines)


class UpdateFiledV1(UpdateMessage):
    topic = "ebs.update.filed"
    severity = INFO
    body_schema = schema(topic, "ebs filed a Bodhi update for ELN rebuilds",
                         UPDATE_PROPERTIES, REQUIRED)

    @property
    def summary(self) -> str:
        return (f"ebs filed Bodhi update {self.alias} for {len(self.body.get('builds', []))} "
                f"ELN rebuild(s)")


class UpdateStableV1(UpdateMessage):
    topic = "ebs.update.stable"
    severity = INFO
    body_schema = schema(topic, "every build of an ebs update reached the ELN stable tag",
                         UPDATE_PROPERTIES, REQUIRED)

    @property
    def summary(self) -> str:
        return f"ebs update {self.alias} reached the ELN stable tag"


class UpdateUnstableV1(UpdateMessage):
    topic = "ebs.update.unstable"
    severity = WARNING
    body_schema = schema(
        topic,
        "an ebs update did not reach the ELN stable tag in time",
        {**UPDATE_PROPERTIES, "pending": NAMES, "reason": {"type": "string"}},
        [*REQUIRED, "pending", "reason"],
    )

    @property
    def summary(self) -> str:
        return (f"ebs update {self.alias} did not reach the ELN stable tag: "
                f"{self.body.get('reason') or 'not stable in time'}")
