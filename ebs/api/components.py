"""Per-component status ("where is my build?") and the failed-SCM-URL denylist.

/components.json and /components.html list every ELN component as the
original's status page did: its last rebuild by ebs, that rebuild's state and
detail, the NVR in the stable tag and a Koji task link; searchable by name
(``?q=``) and paged. /denylist shows the denylist; DELETE /denylist/{component}
(admin) clears one component's entries.

Where the data comes from, and why a request stays fast for 10,000 components:
every source is read in bulk and cached in this process, so a request only
filters and slices one sorted in-memory list:

* the ELN component names: the package lists (Content Resolver + overrides),
  re-read every ``timers.config_refresh``;
* the last rebuild of each component: the ComponentLedger record shards
  (8 queries), re-read every RECORDS_TTL seconds;
* the NVRs in the stable tag: one Koji ``listTagged(stable_tag, latest=True)``,
  re-read every STABLE_TTL seconds (the original refreshed every 10 minutes).

A stale source is re-read in the background while the last answer is served;
only the very first request waits for the first read.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ebs.api.auth import Principal
from ebs.api.control import Control, TemporalUnavailable
from ebs.api.links import Links
from ebs.api.models import DeniedEntry
from ebs.contracts.components import check_components
from ebs.contracts.ledger import (
    LEDGER_WORKFLOW_ID,
    QUERY_COMPONENTS,
    QUERY_DENIED,
    SIGNAL_CLEAR_DENIED,
    ClearResult,
    ComponentRecord,
    DeniedAnswer,
    DeniedUrl,
    record_shard_ids,
    records_from_rows,
)

log = logging.getLogger(__name__)

RECORDS_TTL = 30.0
STABLE_TTL = 600.0
NAMES_TTL = 900.0
MAX_PAGE = 5000


# ---- reading the ledger ---------------------------------------------------------


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


async def read_denied(client: Client) -> list[DeniedUrl]:
    """The denylist, newest first; empty before the first failure."""
    try:
        answer = await client.get_workflow_handle(LEDGER_WORKFLOW_ID).query(
            QUERY_DENIED, result_type=DeniedAnswer
        )
    except RPCError as err:
        if _not_found(err):
            return []
        raise TemporalUnavailable(f"cannot read the denylist: {err}") from err
    return answer.denied


async def clear_denied(client: Client, component: str, wait: float = 10.0) -> ClearResult:
    """Signal the ledger to forget `component`'s failed URLs, then read the
    denylist until they are gone: the answer lists what was removed."""
    check_components([component])
    mine = [d.url for d in await read_denied(client) if d.component == component]
    if not mine:
        return ClearResult(component=component)
    handle = client.get_workflow_handle(LEDGER_WORKFLOW_ID)
    try:
        await handle.signal(SIGNAL_CLEAR_DENIED, component)
    except RPCError as err:
        raise TemporalUnavailable(f"cannot clear the denylist: {err}") from err
    deadline = time.monotonic() + wait
    while True:
        left = {d.url for d in await read_denied(client) if d.component == component}
        if not left & set(mine):
            return ClearResult(component=component, removed=mine)
        if time.monotonic() > deadline:
            raise TemporalUnavailable(
                f"the ledger did not clear {component} within {wait:g} s (is a worker running?)"
            )
        await asyncio.sleep(0.2)


async def read_records(client: Client) -> dict[str, ComponentRecord]:
    """Every component's last rebuild, from all record shards at once."""

    async def one(workflow_id: str) -> list[ComponentRecord]:
        try:
            rows = await client.get_workflow_handle(workflow_id).query(
                QUERY_COMPONENTS, result_type=list
            )
            return records_from_rows(rows)
        except RPCError as err:
            if _not_found(err):
                return []
            raise

    shards = await asyncio.gather(*(one(w) for w in record_shard_ids()))
    return {r.component: r for shard in shards for r in shard}


# ---- the merged, cached view ------------------------------------------------------


class ComponentRow(BaseModel):
    name: str = Field(description="The ELN component name")
    upstream: str = Field(default="", description="The Rawhide name, when it differs")
    view: str = Field(default="", description="Where the name comes from: view/source or override")
    listed: bool = Field(default=True, description="In the ELN package lists now")
    status: str = Field(
        description="As the original's page: SUCCESS, Building, FAILED, Error or UNKNOWN"
    )
    state: str = Field(default="", description="ebs's state of the last rebuild")
    detail: str = ""
    batch_id: str = ""
    rawhide_nvr: str = ""
    nvr: str = Field(default="", description="The ELN build of the last rebuild")
    stable_nvr: str = Field(default="", description="The latest NVR in the stable tag")
    task_id: int = 0
    task_url: str = ""
    batch_url: str = ""
    finished_at: str = ""
    denied_urls: list[str] = []


class ComponentsResponse(BaseModel):
    generated_at: datetime
    total: int = Field(description="Components matching the search")
    offset: int = 0
    components: list[ComponentRow]
    denylist_size: int = 0
    stale: list[str] = Field(default=[], description="Sources that could not be read lately")


_ORIGINAL_STATUS = {
    "stable": "SUCCESS",
    "succeeded": "SUCCESS",
    "building": "Building",
    "pending": "Building",
    "failed": "FAILED",
    "skipped": "FAILED",
}


@dataclass
class _Source:
    ttl: float
    load: Callable[[], Awaitable[Any]]
    value: Any = None
    read_at: float = 0.0
    error: str = ""

    def stale(self, now: float) -> bool:
        return now - self.read_at >= self.ttl

    async def refresh(self) -> None:
        try:
            self.value = await self.load()
            self.error = ""
        except Exception as err:  # keep serving the last answer
            self.error = f"{type(err).__name__}: {err}"
            log.warning("components view: cannot read a source: %s", self.error)
        self.read_at = time.monotonic()


@dataclass
class InFlight:
    batch_id: str = ""
    packages: list[str] = field(default_factory=list)  # Rawhide names
    queued: list[str] = field(default_factory=list)


async def read_in_flight(client: Client) -> InFlight:
    from ebs.contracts.collector import CollectorStatus
    from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_STATUS

    try:
        st = await client.get_workflow_handle(COLLECTOR_WORKFLOW_ID).query(
            QUERY_STATUS, result_type=CollectorStatus
        )
    except RPCError as err:
        if _not_found(err):
            return InFlight()
        raise
    return InFlight(st.current_batch_id, list(st.current_batch_packages),
                    [e.component for e in st.queued])


NameLoader = Callable[[], Awaitable[dict[str, tuple[str, str]]]]  # eln -> (upstream, origin)
StableLoader = Callable[[], Awaitable[dict[str, str]]]  # eln name -> nvr


@dataclass
class ComponentCatalog:
    """The merged rows, kept sorted by name; rebuilt when a source was re-read."""

    names: NameLoader
    stable: StableLoader
    records: Callable[[], Awaitable[dict[str, ComponentRecord]]]
    denied: Callable[[], Awaitable[list[DeniedUrl]]]
    links: Links = field(default_factory=Links)
    # The running batch and the queue (the collector's status), for "Building".
    current: Callable[[], Awaitable[InFlight]] | None = None
    names_ttl: float = NAMES_TTL
    stable_ttl: float = STABLE_TTL
    records_ttl: float = RECORDS_TTL

    def __post_init__(self) -> None:
        self._sources = {
            "package lists": _Source(self.names_ttl, self.names),
            "stable tag": _Source(self.stable_ttl, self.stable),
            "ledger": _Source(self.records_ttl, self.records),
            "denylist": _Source(self.records_ttl, self.denied),
        }
        if self.current is not None:
            self._sources["collector"] = _Source(self.records_ttl, self.current)
        self._rows: list[ComponentRow] = []
        self._keys: list[str] = []  # lower-case names, for the search
        self._built_at: datetime | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self, which: list[_Source]) -> None:
        await asyncio.gather(*(s.refresh() for s in which))
        self._build()

    async def rows(self) -> list[ComponentRow]:
        now = time.monotonic()
        stale = [s for s in self._sources.values() if s.stale(now)]
        if self._built_at is None:
            async with self._lock:
                if self._built_at is None:
                    await self._refresh(list(self._sources.values()))
        elif stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh(stale))
        return self._rows

    def stale_sources(self) -> list[str]:
        return [f"{name}: {s.error}" for name, s in self._sources.items() if s.error]

    def denylist_size(self) -> int:
        return len(self._sources["denylist"].value or [])

    def _build(self) -> None:
        names: dict[str, tuple[str, str]] = self._sources["package lists"].value or {}
        stable: dict[str, str] = self._sources["stable tag"].value or {}
        records: dict[str, ComponentRecord] = self._sources["ledger"].value or {}
        denied: list[DeniedUrl] = self._sources["denylist"].value or []
        flight: InFlight = (
            self._sources["collector"].value if "collector" in self._sources else None
        ) or InFlight()
        building = set(flight.packages)
        queued = set(flight.queued)
        denied_by: dict[str, list[str]] = {}
        for d in denied:
            denied_by.setdefault(d.component, []).append(d.url)
        upstream_of = {eln: up for eln, (up, _) in names.items()}
        eln_of = {up: eln for eln, up in upstream_of.items()}
        all_names = set(names) | {eln_of.get(c, c) for c in records}
        rows = []
        for name in sorted(all_names, key=lambda n: (n.lower(), n)):
            upstream, origin = names.get(name, (upstream_of.get(name, name), ""))
            rec = records.get(upstream) or records.get(name)
            row = ComponentRow(
                name=name,
                upstream=upstream if upstream != name else "",
                view=origin,
                listed=name in names,
                status="UNKNOWN",
                stable_nvr=stable.get(name, ""),
                denied_urls=denied_by.get(upstream, []) or denied_by.get(name, []),
            )
            if rec is None:
                row.detail = "Not rebuilt by ebs yet"
            else:
                row.status = _ORIGINAL_STATUS.get(rec.state, "Error")
                row.state, row.detail, row.batch_id = rec.state, rec.detail, rec.batch_id
                row.rawhide_nvr, row.nvr, row.finished_at = (
                    rec.rawhide_nvr, rec.nvr, rec.finished_at
                )
                row.task_id = rec.task_id
                row.task_url = self.links.koji_task(rec.task_id) if rec.task_id else ""
                row.batch_url = self.links.workflow(rec.batch_id) if rec.batch_id else ""
                if rec.state in ("stable", "succeeded") and rec.nvr and row.stable_nvr \
                        and row.stable_nvr != rec.nvr:
                    row.detail = row.detail or f"{row.stable_nvr} is in the stable tag now"
            if upstream in building or name in building:
                row.status, row.state = "Building", "building"
                row.detail = f"being rebuilt in {flight.batch_id}"
                row.batch_id = flight.batch_id
                row.batch_url = self.links.workflow(flight.batch_id)
            elif upstream in queued or name in queued:
                row.detail = (row.detail + "; " if row.detail else "") + "queued for the next batch"
            rows.append(row)
        self._rows = rows
        self._keys = [r.name.lower() for r in rows]
        self._built_at = datetime.now(UTC)

    async def search(self, q: str = "", offset: int = 0, limit: int = 500) -> ComponentsResponse:
        """Bounded work: one pass over the cached names, then one slice."""
        rows = await self.rows()
        needle = q.strip().lower()
        if needle:
            keys = self._keys
            hits = [rows[i] for i, k in enumerate(keys) if needle in k]
        else:
            hits = rows
        return ComponentsResponse(
            generated_at=self._built_at or datetime.now(UTC),
            total=len(hits),
            offset=offset,
            components=hits[offset : offset + limit],
            denylist_size=self.denylist_size(),
            stale=self.stale_sources(),
        )


# ---- default loaders --------------------------------------------------------------


def default_catalog(cfg: Any, client: Callable[[], Awaitable[Client]], links: Links
                    ) -> ComponentCatalog:
    """Package lists from Content Resolver, the stable tag from Koji (anonymously),
    records and denylist from the ledger."""
    from ebs.config.packages import fetch_package_lists
    from ebs.contracts.koji import ListTaggedRequest
    from ebs.koji.adapter import KojiAdapter

    koji_cfg = cfg.configuration.koji
    anonymous = koji_cfg.model_copy(
        update={"auth": koji_cfg.auth.model_copy(update={"method": "none"})}
    )
    koji = KojiAdapter(anonymous, timeout=120)

    async def names() -> dict[str, tuple[str, str]]:
        lists = await asyncio.to_thread(
            fetch_package_lists, cfg.components.autopackagelist, cfg.components.overrides
        )
        return {
            eln: (up, lists.origins.get(eln, ""))
            for eln, up in lists.downstream_to_upstream.items()
        }

    async def stable() -> dict[str, str]:
        result = await asyncio.to_thread(
            koji.list_tagged, ListTaggedRequest(koji_cfg.stable_tag, latest=True)
        )
        return {b.name: b.nvr for b in result.builds}

    async def records() -> dict[str, ComponentRecord]:
        return await read_records(await client())

    async def denied() -> list[DeniedUrl]:
        return await read_denied(await client())

    async def current() -> InFlight:
        return await read_in_flight(await client())

    return ComponentCatalog(
        names, stable, records, denied, links, current,
        names_ttl=float(cfg.timers.config_refresh),
    )


# ---- routes -----------------------------------------------------------------------


class ClearResponse(BaseModel):
    component: str
    removed: list[str]
    requested_by: str


def _html(resp: ComponentsResponse, q: str) -> str:
    rows = []
    for r in resp.components:
        task = (f'<a href="{escape(r.task_url)}">{r.task_id}</a>' if r.task_url
                else (str(r.task_id) if r.task_id else ""))
        denied = "".join(f"<br><small>denied: <code>{escape(u)}</code></small>"
                         for u in r.denied_urls)
        rows.append(
            f'<tr class="state-{escape(r.state or "none")}"><td>{escape(r.name)}</td>'
            f"<td>{escape(r.view)}</td><td><code>{escape(r.nvr or r.rawhide_nvr)}</code></td>"
            f"<td>{escape(r.status)}</td><td>{escape(r.detail)}{denied}</td>"
            f"<td><code>{escape(r.stable_nvr or 'UNKNOWN')}</code></td><td>{task}</td>"
            f"<td>{escape(r.finished_at)}</td></tr>"
        )
    stale = "".join(f'<p class="banner">Not current: {escape(s)}</p>' for s in resp.stale)
    more = (f"<p>Showing {len(resp.components)} of {resp.total}; narrow the search.</p>"
            if resp.total > len(resp.components) else "")
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ebs: components</title>"
        "</head><body><h1>ELN components</h1>"
        f'<p><a href="status.html">Status</a> · <a href="components.json?q={escape(q)}">JSON</a>'
        f" · <a href=\"denylist\">Denylist ({resp.denylist_size})</a>"
        f" · generated {resp.generated_at.isoformat()}</p>{stale}"
        f'<form><input name="q" value="{escape(q)}" placeholder="package name">'
        "<button>Search</button></form>"
        f"<p>{resp.total} component(s)</p>{more}"
        "<table><thead><tr><th>Name</th><th>View</th><th>Last rebuild</th><th>State</th>"
        "<th>Detail</th><th>In stable tag</th><th>Task</th><th>Finished</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )


def register_component_routes(
    app: FastAPI,
    catalog: ComponentCatalog,
    control: Callable[[], Awaitable[Control]],
    admin: Callable[..., Awaitable[Principal]],
) -> None:
    @app.get("/components.json", response_model=ComponentsResponse, tags=["status"])
    async def components_json(
        q: Annotated[str, Query(max_length=200, description="Part of a name")] = "",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
    ) -> ComponentsResponse:
        """Every ELN component: its last rebuild by ebs, state, detail, the NVR in
        the stable tag and the Koji task (the original's status page)."""
        return await catalog.search(q, offset, limit)

    @app.get("/components.html", response_class=HTMLResponse, tags=["status"])
    async def components_html(
        q: Annotated[str, Query(max_length=200)] = "",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
    ) -> HTMLResponse:
        return HTMLResponse(_html(await catalog.search(q, offset, limit), q))

    @app.get("/denylist", response_model=list[DeniedEntry], tags=["status"])
    async def denylist() -> list[DeniedEntry]:
        """SCM URLs that failed for good and are never submitted again."""
        ctl = await control()
        return [DeniedEntry(**vars(d)) for d in await read_denied(ctl.client)]

    @app.delete("/denylist/{component}", response_model=ClearResponse, tags=["control"])
    async def clear(
        component: str, who: Annotated[Principal, Depends(admin)]
    ) -> ClearResponse:
        """Forget the failed SCM URLs of one component: its current Rawhide build
        may be submitted again."""
        ctl = await control()
        result = await clear_denied(ctl.client, component)
        log.info("denylist cleared for %s by %s: %s", component, who.name, result.removed)
        return ClearResponse(component=component, removed=result.removed,
                             requested_by=who.name)
