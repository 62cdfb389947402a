"""The human status page: server-rendered HTML, no JavaScript, refreshing itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ebs.api.models import StatusResponse
from ebs.config.model import EbsConfig

_env = Environment(
    loader=PackageLoader("ebs.api", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_env.filters["when"] = _when


def render_status(status: StatusResponse, refresh: int = 30,
                  bus_messages: Sequence[Mapping[str, Any]] = ()) -> str:
    return _env.get_template("status.html").render(
        bus_messages=bus_messages,
        refresh=refresh,
        error="",
        generated_at=status.generated_at,
        temporal_ui_url=status.temporal_ui_url,
        collector=status.collector,
        current=status.current_batch,
        recent_batches=status.recent_batches,
        denylist=status.denylist,
    )


def recent_bus_messages(cfg: EbsConfig) -> list[dict[str, Any]]:
    """The bus messages recorded where messaging.recent_log says (`ebs dev`)."""
    from ebs.devstack.messages import recent

    path = cfg.messaging.recent_log if cfg.messaging else None
    return recent(path) if path else []


def render_unavailable(message: str, temporal_ui_url: str = "", refresh: int = 30) -> str:
    return _env.get_template("status.html").render(
        refresh=refresh,
        error=message,
        generated_at=datetime.now(UTC),
        temporal_ui_url=temporal_ui_url,
    )
