"""The FastAPI application: probes, status, history, metrics and the write endpoints.

No `from __future__ import annotations` here: FastAPI reads the endpoint
annotations at runtime, and the dependencies are closures of create_app.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from ebs.api.auth import Authenticator, AuthFailure, Principal
from ebs.api.components import ComponentCatalog, default_catalog, register_component_routes
from ebs.api.control import Control, RequestRejected, TemporalUnavailable
from ebs.api.html import render_status, render_unavailable
from ebs.api.limits import MAX_BODY_BYTES, BodyLimit
from ebs.api.links import Links
from ebs.api.metrics import CONTENT_TYPE, MetricsExporter
from ebs.api.models import (
    ControlResponse,
    ErrorResponse,
    HistoryResponse,
    ProbeResponse,
    StatusResponse,
    TriggerRequest,
    TriggerResponse,
    trigger_response,
)
from ebs.api.oidc import OidcSettings, OidcVerifier
from ebs.api.status import build_history, build_status
from ebs.api.tokens import ApiTokens
from ebs.config.loader import ConfigError
from ebs.config.model import EbsConfig
from ebs.contracts.components import PACKAGE_NAME, InvalidComponents
from ebs.contracts.events import EventSource

log = logging.getLogger(__name__)

DESCRIPTION = """\
ebs rebuilds Fedora Rawhide packages for ELN on Temporal. This API shows what
it is doing (status, history, metrics) and lets release engineers queue
components and pause or resume batching.

Write endpoints need `Authorization: Bearer <token>`: an OIDC access token (JWT)
of a member of `open_id_connect.admin_groups`, or a static API token.
"""


class ClientSource:
    """One Temporal client, connected on first use and retried after a failure,
    so the API starts (and /alive answers) while Temporal is still down."""

    def __init__(self, connect: Callable[[], Awaitable[Client]]) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def fixed(cls, client: Client) -> "ClientSource":
        async def same() -> Client:
            return client

        source = cls(same)
        source._client = client
        return source

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await self._connect()
                # temporalio: RuntimeError "Failed client connect: ..."; the config:
                # OSError (TLS or API key file), ValueError/ConfigError (a profile).
                except (RuntimeError, OSError, ValueError, ConfigError) as err:
                    raise TemporalUnavailable(f"cannot connect to Temporal: {err}") from err
            return self._client


_bearer = HTTPBearer(auto_error=False, description="OIDC access token (JWT) or API token")
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No or invalid credentials"},
    403: {"model": ErrorResponse, "description": "Not an admin"},
    413: {"model": ErrorResponse, "description": "Request body over 1 MB"},
    503: {"model": ErrorResponse, "description": "Temporal or the ebs worker unavailable"},
}
_READ_ERRORS: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorResponse, "description": "Temporal unavailable"},
}


def build_authenticator(
    cfg: EbsConfig, tokens: ApiTokens | None, allow_anonymous: bool
) -> Authenticator:
    oidc_cfg = cfg.configuration.open_id_connect
    oidc = OidcVerifier(OidcSettings.from_config(oidc_cfg)) if oidc_cfg else None
    return Authenticator(tokens, oidc, allow_anonymous=allow_anonymous)


def create_app(
    cfg: EbsConfig,
    *,
    client: Client | None = None,
    connect: Callable[[], Awaitable[Client]] | None = None,
    tokens: ApiTokens | None = None,
    allow_anonymous_writes: bool = False,
    sdk_metrics_url: str | None = None,
    metrics_from: Sequence[str] = (),
    recent_batches: int = 10,
    refresh_seconds: int = 30,
    query_timeout: float = 5.0,
    update_timeout: float = 120.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    catalog: ComponentCatalog | None = None,
) -> FastAPI:
    """The API for one ebs deployment. Give a connected `client` (tests, `ebs dev`)
    or a `connect` coroutine factory; by default it connects from `cfg.temporal`."""
    if client is not None:
        source = ClientSource.fixed(client)
    else:
        if connect is None:
            from ebs.temporal_client import connect as connect_cfg

            async def connect_default() -> Client:
                return await connect_cfg(cfg.temporal)

            connect = connect_default
        source = ClientSource(connect)
    links = Links.from_config(cfg)
    authenticator = build_authenticator(cfg, tokens, allow_anonymous_writes)
    exporter = MetricsExporter(sdk_metrics_url, metrics_from)
    task_queue = cfg.temporal.task_queue

    app = FastAPI(title="ebs", version="1", description=DESCRIPTION)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.authenticator = authenticator
    app.state.links = links

    async def control() -> Control:
        return Control(
            await source.get(),
            task_queue,
            query_timeout=query_timeout,
            update_timeout=update_timeout,
        )

    async def admin(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = credentials.credentials if credentials else None
        principal = await authenticator.authenticate(token)
        log.info("%s %s by %s (%s)", request.method, request.url.path, principal.name,
                 principal.method)
        return principal

    @app.exception_handler(AuthFailure)
    async def _auth_failure(request: Request, err: AuthFailure) -> JSONResponse:
        headers = {}
        if err.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        log.warning("%s %s refused: %s", request.method, request.url.path, err.detail)
        return JSONResponse({"detail": err.detail}, status_code=err.status, headers=headers)

    @app.exception_handler(TemporalUnavailable)
    async def _unavailable(request: Request, err: TemporalUnavailable) -> Response:
        if request.url.path.endswith(".html"):
            return HTMLResponse(
                render_unavailable(str(err), links.temporal_ui_url, refresh_seconds),
                status_code=503,
            )
        return JSONResponse({"detail": str(err)}, status_code=503)

    @app.exception_handler(RequestRejected)
    async def _rejected(request: Request, err: RequestRejected) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(InvalidComponents)
    async def _invalid(request: Request, err: InvalidComponents) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    # ---- probes -----------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("status.html")

    @app.get("/alive", response_model=ProbeResponse, tags=["probes"])
    async def alive() -> ProbeResponse:
        """Liveness: the process is up and its event loop answers."""
        return ProbeResponse(status="ok", detail="alive")

    @app.get(
        "/startup",
        response_model=ProbeResponse,
        responses={503: {"model": ProbeResponse}},
        tags=["probes"],
    )
    async def startup() -> Response:
        """Startup/readiness: Temporal answers and the BatchCollector runs (it is
        started here if it does not; starting is idempotent)."""
        try:
            ctl = await control()
            await ctl.check_health()
            collector = await ctl.ensure_collector()
        except TemporalUnavailable as err:
            body = ProbeResponse(status="unavailable", detail=str(err))
            return JSONResponse(body.model_dump(), status_code=503)
        body = ProbeResponse(status="ok", detail=f"collector {collector}")
        return JSONResponse(body.model_dump())

    # ---- read side --------------------------------------------------------

    @app.get("/status.json", response_model=StatusResponse, responses=_READ_ERRORS,
             tags=["status"])
    async def status_json() -> StatusResponse:
        """Queue, lull deadline, pause flag, the current batch per slice and
        package, and the most recent batches."""
        return await build_status(await control(), links, recent_batches)

    @app.get("/status.html", response_class=HTMLResponse, tags=["status"])
    async def status_html() -> HTMLResponse:
        """The same as /status.json for humans; refreshes itself."""
        status = await build_status(await control(), links, recent_batches)
        return HTMLResponse(render_status(status, refresh_seconds))

    @app.get(
        "/history",
        response_model=HistoryResponse,
        responses={422: {"model": ErrorResponse}, **_READ_ERRORS},
        tags=["status"],
    )
    async def history(
        component: Annotated[
            str,
            Query(description=f"Package name (matching {PACKAGE_NAME.pattern})"),
        ],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> HistoryResponse:
        """Batches (newest first) that rebuilt `component`, with its outcome in each."""
        return await build_history(await control(), links, component, limit)

    @app.get("/metrics", response_class=Response, tags=["status"])
    async def metrics() -> Response:
        """Prometheus text exposition."""
        try:
            ctl: Control | None = await control()
        except TemporalUnavailable:
            ctl = None
        return Response(await exporter.render(ctl), media_type=CONTENT_TYPE)

    # ---- write side -------------------------------------------------------

    @app.post(
        "/trigger",
        response_model=TriggerResponse,
        responses={422: {"model": ErrorResponse}, **_WRITE_ERRORS},
        tags=["control"],
    )
    async def trigger(
        body: TriggerRequest, who: Annotated[Principal, Depends(admin)]
    ) -> TriggerResponse:
        """Queue components for the next batch (starting the collector if needed).
        Each component is either queued (with the build chosen for it) or rejected
        with a reason (not eligible, no build found...)."""
        ctl = await control()
        result = await ctl.trigger(
            body.components, source=EventSource.API.value, requested_by=who.name
        )
        log.info("trigger by %s: %d queued, %d rejected", who.name, len(result.queued),
                 len(result.rejected))
        return trigger_response(result, who.name)

    @app.post("/pause", response_model=ControlResponse, responses=_WRITE_ERRORS,
              tags=["control"])
    async def pause(who: Annotated[Principal, Depends(admin)]) -> ControlResponse:
        """Start no new batch until resumed; a running batch finishes. Components keep queuing."""
        await (await control()).pause()
        return ControlResponse(action="pause", requested_by=who.name,
                               detail="the collector will start no new batch until resumed")

    @app.post("/resume", response_model=ControlResponse, responses=_WRITE_ERRORS,
              tags=["control"])
    async def resume(who: Annotated[Principal, Depends(admin)]) -> ControlResponse:
        """Undo /pause (a pause from the configuration's control.pause stays)."""
        await (await control()).resume()
        return ControlResponse(action="resume", requested_by=who.name,
                               detail="the collector batches queued components again")

    register_component_routes(
        app, catalog or default_catalog(cfg, source.get, links), control, admin
    )
    return app
