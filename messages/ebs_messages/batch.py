"""ebs.batch.started and ebs.batch.finished."""

from __future__ import annotations

from fedora_messaging.message import INFO, WARNING

from .base import NAMES, UPDATE, EbsMessage, schema

OUTCOMES = ["succeeded", "partial", "failed", "unstable", "error", "cancelled"]


def _names(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class BatchStartedV1(EbsMessage):
    """A batch of ELN rebuilds begins."""

    topic = "ebs.batch.started"
    severity = INFO
    body_schema = schema(
        topic,
        "ebs starts rebuilding a batch of packages for ELN",
        {
            "packages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "component": {"type": "string"},
                        "rawhide_nvr": {"type": "string"},
                    },
                    "required": ["component", "rawhide_nvr"],
                },
            },
            "scratch": {"type": "boolean"},
            "started_at": {"type": "string", "description": "ISO 8601"},
        },
        ["packages", "scratch", "started_at"],
    )

    @property
    def packages(self) -> list[str]:
        return sorted(p["component"] for p in self.body.get("packages", []))

    @property
    def summary(self) -> str:
        kind = "scratch " if self.body.get("scratch") else ""
        return (f"ebs started ELN {kind}rebuild batch {self.batch_id} of "
                f"{len(self.packages)} package(s): {_names(self.packages)}")


class BatchFinishedV1(EbsMessage):
    """A batch of ELN rebuilds ended; `outcome` says how."""

    topic = "ebs.batch.finished"
    body_schema = schema(
        topic,
        "ebs finished a batch of ELN rebuilds",
        {
            "outcome": {"type": "string", "enum": OUTCOMES},
            "packages": NAMES,
            "built": NAMES,
            "failed": NAMES,
            "updates": {"type": "array", "items": UPDATE},
            "started_at": {"type": "string"},
            "finished_at": {"type": "string"},
            "error": {"type": "string", "description": "why the batch stopped ('' if it did not)"},
        },
        ["outcome", "packages", "built", "failed", "updates", "started_at", "finished_at",
         "error"],
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.body.get("outcome") in ("failed", "error", "partial", "unstable"):
            self.severity = WARNING
        else:
            self.severity = INFO

    @property
    def outcome(self) -> str:
        return str(self.body.get("outcome", ""))

    @property
    def packages(self) -> list[str]:
        return sorted(self.body.get("packages", []))

    @property
    def summary(self) -> str:
        built, failed = self.body.get("built", []), self.body.get("failed", [])
        text = (f"ebs finished ELN rebuild batch {self.batch_id}: {self.outcome} "
                f"({len(built)} built, {len(failed)} failed")
        text += f": {_names(sorted(failed))})" if failed else ")"
        if self.body.get("error"):
            text += f"; {self.body['error']}"
        return text
