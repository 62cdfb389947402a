"""ebs.package.built and ebs.package.failed: one message per package, for its
maintainers (FMN matches `packages`)."""

from __future__ import annotations

from typing import Any

from fedora_messaging.message import INFO, WARNING

from .base import NAMES, EbsMessage, schema

PACKAGE_PROPERTIES: dict[str, Any] = {
    "component": {"type": "string", "minLength": 1, "description": "the source package"},
    "rawhide_nvr": {"type": "string", "description": "the Rawhide build rebuilt"},
    "eln_nvr": {"type": "string", "description": "the ELN build ('' if none, e.g. scratch)"},
    "task_ids": {"type": "array", "items": {"type": "integer"}},
    "task_urls": NAMES,
    "attempts": {"type": "integer", "minimum": 0},
    "scratch": {"type": "boolean"},
}
REQUIRED = ["component", "rawhide_nvr", "eln_nvr", "task_ids", "task_urls", "attempts",
            "scratch"]


class PackageMessage(EbsMessage):
    @property
    def component(self) -> str:
        return str(self.body.get("component", ""))

    @property
    def packages(self) -> list[str]:
        return [self.component] if self.component else []

    @property
    def url(self) -> str | None:
        urls = self.body.get("task_urls") or []
        return urls[-1] if urls else (self.batch_url or None)

    def __str__(self) -> str:
        lines = [self.summary]
        for url in self.body.get("task_urls", []):
            lines.append(f"Koji task: {url}")
        if self.batch_url:
            lines.append(f"Batch: {self.batch_url}")
        return "\n".join(lines)


class PackageBuiltV1(PackageMessage):
    """A package was rebuilt for ELN."""

    topic = "ebs.package.built"
    severity = INFO
    body_schema = schema(topic, "ebs rebuilt a package for ELN", PACKAGE_PROPERTIES, REQUIRED)

    @property
    def summary(self) -> str:
        nvr = self.body.get("eln_nvr") or ""
        kind = "scratch-" if self.body.get("scratch") else ""
        as_ = f" as {nvr}" if nvr else ""
        return f"ebs {kind}rebuilt {self.body.get('rawhide_nvr')} for ELN{as_}"


class PackageFailedV1(PackageMessage):
    """A package's ELN rebuild failed for good in this batch."""

    topic = "ebs.package.failed"
    severity = WARNING
    body_schema = schema(
        topic,
        "ebs could not rebuild a package for ELN",
        {**PACKAGE_PROPERTIES, "reason": {"type": "string", "description": "why it failed"}},
        [*REQUIRED, "reason"],
    )

    @property
    def summary(self) -> str:
        return (f"ebs failed to rebuild {self.body.get('rawhide_nvr')} for ELN: "
                f"{self.body.get('reason') or 'unknown reason'}")
