"""Links from the operator surface to Koji, Bodhi and the Temporal Web UI."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ebs.config.holder import koji_weburl
from ebs.config.model import EbsConfig


@dataclass(frozen=True)
class Links:
    temporal_ui_url: str = ""
    namespace: str = "default"
    koji_weburl: str = ""
    bodhi_url: str = ""

    @classmethod
    def from_config(cls, cfg: EbsConfig) -> Links:
        return cls(
            temporal_ui_url=cfg.temporal.ui_url.rstrip("/"),
            namespace=cfg.temporal.namespace,
            koji_weburl=koji_weburl(cfg.configuration.koji),
            bodhi_url=cfg.configuration.bodhi.base_url().rstrip("/"),
        )

    def workflow(self, workflow_id: str, run_id: str = "") -> str:
        if not self.temporal_ui_url or not workflow_id:
            return ""
        base = (
            f"{self.temporal_ui_url}/namespaces/{quote(self.namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}"
        )
        return f"{base}/{quote(run_id, safe='')}/history" if run_id else base

    def workflow_search(self, query: str) -> str:
        """The Web UI's workflow list filtered by a visibility query."""
        if not self.temporal_ui_url:
            return ""
        return (
            f"{self.temporal_ui_url}/namespaces/{quote(self.namespace, safe='')}"
            f"/workflows?query={quote(query, safe='')}"
        )

    def koji_task(self, task_id: int) -> str:
        return f"{self.koji_weburl}/taskinfo?taskID={task_id}" if self.koji_weburl else ""

    def bodhi_update(self, alias: str) -> str:
        if not self.bodhi_url or not alias:
            return ""
        return f"{self.bodhi_url}/updates/{quote(alias, safe='')}"
