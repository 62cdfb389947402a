"""The HTTP API's request and response schema (also what `ebs status --json` prints).

Field names are part of the API: add fields, never rename or remove them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from ebs.contracts.components import MAX_COMPONENTS, check_components
from ebs.contracts.events import EnqueueResult


class _Model(BaseModel):
    pass


# ---- status ---------------------------------------------------------------


class QueuedComponent(_Model):
    component: str = Field(description="Rawhide (upstream) component name")
    nvr: str = Field(description="The Rawhide build the next batch will rebuild")
    build_id: int = 0
    source: str = Field(default="", description="bus | api | cli")
    requested_by: str = ""
    tagged_at: datetime | None = None


class QueuePageResponse(_Model):
    total: int = Field(description="Queued components (each once)")
    offset: int = 0
    queued: list[QueuedComponent] = []


class KojiTask(_Model):
    task_id: int
    url: str = ""


class BodhiUpdate(_Model):
    alias: str
    url: str = ""


class PackageStatus(_Model):
    component: str
    state: str = Field(
        description="pending | building | succeeded | failed | stable | dropped "
        "(the trigger tag no longer held any build of it when the batch started)"
    )
    attempt: int = Field(default=0, description="Build attempts made so far in this batch")
    ordering: int = 1000
    rawhide_nvr: str = Field(
        default="", description="The build rebuilt: Koji's latest in the trigger tag"
    )
    message_nvr: str = Field(default="", description="The build the tag message named")
    message_build_id: int = 0
    nvr: str = Field(default="", description="The ELN build, once known")
    skip_tag: bool = False
    koji_tasks: list[KojiTask] = []
    bodhi_update: BodhiUpdate | None = None
    reason: str = Field(default="", description="Why it failed or was dropped")


class SliceStatus(_Model):
    ordering: int = Field(description="Slices build lowest ordering first")
    state: str = Field(description="pending | building | done")
    counts: dict[str, int] = Field(description="Packages per state")
    packages: list[PackageStatus]


class CurrentBatch(_Model):
    batch_id: str
    phase: str = Field(default="", description="What the batch is doing now")
    started_at: datetime | None = None
    temporal_url: str = ""
    packages: int = 0
    counts: dict[str, int] = {}
    side_tags: list[str] = []
    errata_tags: list[str] = []
    updates: list[BodhiUpdate] = []
    error: str = ""
    answered: bool = Field(
        default=True, description="False when the batch did not answer its status query right now"
    )
    slices: list[SliceStatus] = []
    config_version: str = Field(
        default="", description="Config the batch runs with (git commit or content hash)"
    )


class BatchOverview(_Model):
    batch_id: str
    status: str = Field(description="Temporal execution status: running, completed, failed, ...")
    outcome: str = Field(
        default="",
        description="succeeded | unstable (built and filed, an update not stable in time) "
        "| failed | partial | cancelled | error",
    )
    phase: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    packages: int = 0
    succeeded: int | None = None
    failed: int | None = None
    failed_components: list[str] = []
    temporal_url: str = ""
    config_version: str = Field(
        default="", description="Config the batch ran with (git commit or content hash)"
    )


class CollectorView(_Model):
    exists: bool = Field(description="The BatchCollector workflow has been started")
    status: str = Field(default="", description="Temporal execution status of the collector")
    answered: bool = Field(
        description="The collector answered its status query; when false (no worker "
        "answering), the fields below are unknown and shown empty"
    )
    paused: bool = False
    paused_by_config: bool = False
    lull_deadline: datetime | None = Field(
        default=None, description="When the queue becomes a batch if nothing else arrives"
    )
    queue_length: int = 0
    queued: list[QueuedComponent] = []
    temporal_url: str = ""
    config_version: str = Field(
        default="",
        description="Config version the collector read last (git commit or content hash); "
        "the next batch reads the worker's current one",
    )


class DeniedEntry(_Model):
    """An SCM URL that failed for good: never submitted again (the denylist)."""

    url: str
    component: str
    rawhide_nvr: str = ""
    batch_id: str = ""
    failed_at: str = ""
    reason: str = ""


class StatusResponse(_Model):
    generated_at: datetime
    collector: CollectorView
    current_batch: CurrentBatch | None = None
    recent_batches: list[BatchOverview] = []
    temporal_ui_url: str = ""
    denylist: list[DeniedEntry] = Field(
        default=[],
        description="SCM URLs that failed for good; clear with DELETE /denylist/{component}",
    )


# ---- history ----------------------------------------------------------------


class HistoryEntry(_Model):
    batch: BatchOverview
    package: PackageStatus | None = Field(
        default=None, description="What happened to the component in that batch, when known"
    )
    error: str = ""


class HistoryResponse(_Model):
    component: str
    batches: list[HistoryEntry]
    temporal_search_url: str = Field(
        default="", description="The same search in the Temporal Web UI"
    )


# ---- writes -----------------------------------------------------------------


class TriggerRequest(_Model):
    components: list[str] = Field(
        description=f"Package names to rebuild (at most {MAX_COMPONENTS})",
        examples=[["bash", "glibc"]],
    )

    @field_validator("components")
    @classmethod
    def _package_names(cls, value: list[str]) -> list[str]:
        return check_components(value)


# The original ELNBuildSync's /trigger body: a bare JSON array of component names.
ComponentList = Annotated[
    list[str], AfterValidator(check_components), Field(examples=[["bash", "glibc"]])
]


class ComponentOutcome(_Model):
    component: str
    status: Literal["queued", "rejected"]
    nvr: str = Field(default="", description="The build queued for rebuilding")
    reason: str = Field(default="", description="Why the component was rejected")


class TriggerResponse(_Model):
    queued: int
    rejected: int
    results: list[ComponentOutcome]
    requested_by: str


def trigger_response(result: EnqueueResult, requested_by: str) -> TriggerResponse:
    results = [
        ComponentOutcome(component=e.component, status="queued", nvr=e.nvr, reason="")
        for e in result.queued
    ] + [
        ComponentOutcome(component=r.component, status="rejected", nvr="", reason=r.reason)
        for r in result.rejected
    ]
    return TriggerResponse(
        queued=len(result.queued),
        rejected=len(result.rejected),
        results=results,
        requested_by=requested_by,
    )


class ControlResponse(_Model):
    action: Literal["pause", "resume"]
    requested_by: str
    detail: str


class ProbeResponse(_Model):
    status: Literal["ok", "unavailable"]
    detail: str = ""


class ErrorResponse(_Model):
    detail: str
