"""The FastAPI application: probes, status, history, metrics and the write endpoints.

No `from __future__ import annotations` here: FastAPI reads the endpoint
annotations at runtime, and the dependencies are closures of create_app.
"""

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.sessions import SessionMiddleware
from temporalio.client import Client

from ebs.api.auth import Authenticator, AuthFailure, Principal
from ebs.api.codec import register_codec_routes
from ebs.api.components import ComponentCatalog, default_catalog, register_component_routes
from ebs.api.control import Control, RequestRejected, TemporalUnavailable
from ebs.api.html import recent_bus_messages, render_status, render_unavailable
from ebs.api.limits import MAX_BODY_BYTES, BodyLimit
from ebs.api.links import Links
from ebs.api.login import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    BrowserLogin,
    login_redirect,
    secure_cookie,
    session_key,
    session_principal,
)
from ebs.api.metrics import CONTENT_TYPE, MetricsExporter
from ebs.api.models import (
    ComponentList,
    ControlResponse,
    ErrorResponse,
    HistoryResponse,
    ProbeResponse,
    QueuePageResponse,
    StatusResponse,
    TriggerRequest,
    TriggerResponse,
    trigger_response,
)
from ebs.api.oidc import OidcSettings, OidcVerifier
from ebs.api.status import build_history, build_status, queued_component
from ebs.api.tokens import ApiTokens
from ebs.config.loader import ConfigError
from ebs.config.model import EbsConfig, OpenIdConnectConfig
from ebs.config.secrets import read_secret_file
from ebs.contracts.components import PACKAGE_NAME, InvalidComponents
from ebs.contracts.events import EventSource
from ebs.loglevel import LOG_LEVELS, set_log_level

log = logging.getLogger(__name__)

DESCRIPTION = """\
ebs rebuilds Fedora Rawhide packages for ELN on Temporal. This API shows what
it is doing (status, history, metrics) and lets release engineers queue
components and pause or resume batching.

Write endpoints need `Authorization: Bearer <token>`: an OIDC access token (a
JWT, or an opaque token checked at the provider) of a member of
`open_id_connect.admin_groups`, or a static API token. Admins can also log in
with a browser at /login (a session cookie).

`/codec/encode` and `/codec/decode` are a Temporal codec server: the Web UI and
`temporal --codec-endpoint <this URL>/codec` show ebs's compressed payloads
through them. They need no credentials (they convert only what they are sent).
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


def oidc_client_secret(cfg: OpenIdConnectConfig, secret_file: str | None = None) -> str:
    """The OIDC client secret: the original's --openid-client-secret-file (first
    line), else `client_secret_file`, else an inline `client_secret`; "" if none."""
    path = secret_file or cfg.client_secret_file
    if path:
        return read_secret_file(path, "OIDC client secret")
    return cfg.client_secret.get_secret_value() if cfg.client_secret else ""


def build_authenticator(
    cfg: EbsConfig, tokens: ApiTokens | None, allow_anonymous: bool, client_secret: str = ""
) -> Authenticator:
    oidc_cfg = cfg.configuration.open_id_connect
    oidc = (
        OidcVerifier(OidcSettings.from_config(oidc_cfg, client_secret)) if oidc_cfg else None
    )
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
    oidc_client_secret_file: str | None = None,
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
    oidc_cfg = cfg.configuration.open_id_connect
    client_secret = oidc_client_secret(oidc_cfg, oidc_client_secret_file) if oidc_cfg else ""
    authenticator = build_authenticator(cfg, tokens, allow_anonymous_writes, client_secret)
    login: BrowserLogin | None = None
    if oidc_cfg is not None and client_secret and authenticator.oidc is not None:
        login = BrowserLogin(oidc_cfg, client_secret, authenticator.oidc.settings.issuer)
    exporter = MetricsExporter(sdk_metrics_url, metrics_from)
    task_queue = cfg.temporal.task_queue

    app = FastAPI(title="ebs", version="1", description=DESCRIPTION)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if login is not None and oidc_cfg is not None:
        app.add_middleware(
            SessionMiddleware, secret_key=session_key(client_secret),
            session_cookie=SESSION_COOKIE, max_age=SESSION_SECONDS, same_site="lax",
            https_only=secure_cookie(oidc_cfg),
        )
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
        session = session_principal(request) if token is None else None
        if session is not None:
            # SameSite=Lax still sends the cookie on a link from another site: a
            # browser says so (Sec-Fetch-Site), and such a request may not act.
            if request.headers.get("sec-fetch-site", "none") not in ("none", "same-origin"):
                raise AuthFailure(403, "cross-site request refused: open the URL directly")
            principal = check_admin(session)
        else:
            principal = await authenticator.authenticate(token)
        log.info("%s %s by %s (%s)", request.method, request.url.path, principal.name,
                 principal.method)
        return principal

    def check_admin(user: Principal) -> Principal:
        """A logged-in browser user may act only as a member of an admin group."""
        groups = tuple(oidc_cfg.admin_groups) if oidc_cfg else ()
        if not set(user.groups) & set(groups):
            raise AuthFailure(
                403,
                f"Access denied. You must be a member of one of these admin groups: "
                f"{', '.join(groups)}",
            )
        return user

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
        return HTMLResponse(render_status(status, refresh_seconds, recent_bus_messages(cfg)))

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

    @app.get("/queue", response_model=QueuePageResponse, responses=_READ_ERRORS,
             tags=["status"])
    async def queue(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> QueuePageResponse:
        """A page of the queue by name (a mass rebuild queues tens of thousands:
        /status.json lists only the first ones)."""
        total, events = await (await control()).queue_page(offset, limit)
        return QueuePageResponse(total=total, offset=offset,
                                 queued=[queued_component(e) for e in events])

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
        body: Annotated[
            TriggerRequest | ComponentList,
            Body(
                description="`{\"components\": [...]}`, or the original's bare JSON array "
                "of component names",
                examples=[{"components": ["bash", "glibc"]}, ["bash", "glibc"]],
            ),
        ],
        who: Annotated[Principal, Depends(admin)],
    ) -> TriggerResponse:
        """Queue components for the next batch (starting the collector if needed).
        Each component is either queued (with the build chosen for it) or rejected
        with a reason (not eligible, no build found...)."""
        if isinstance(body, list):  # the original ELNBuildSync's body
            body = TriggerRequest(components=body)
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

    # The original ELNBuildSync's names for /pause and /resume, with plain-text answers.
    @app.get("/control/pause", response_class=PlainTextResponse, responses=_WRITE_ERRORS,
             tags=["control"], operation_id="control_pause_get")
    @app.post("/control/pause", response_class=PlainTextResponse, responses=_WRITE_ERRORS,
              tags=["control"], operation_id="control_pause_post")
    async def control_pause(who: Annotated[Principal, Depends(admin)]) -> PlainTextResponse:
        """Same as /pause (ELNBuildSync's path)."""
        await (await control()).pause()
        log.warning("batching paused by %s", who.name)
        return PlainTextResponse(f"Paused by {who.name}\n")

    @app.get("/control/unpause", response_class=PlainTextResponse, responses=_WRITE_ERRORS,
             tags=["control"], operation_id="control_unpause_get")
    @app.post("/control/unpause", response_class=PlainTextResponse, responses=_WRITE_ERRORS,
              tags=["control"], operation_id="control_unpause_post")
    async def control_unpause(who: Annotated[Principal, Depends(admin)]) -> PlainTextResponse:
        """Same as /resume (ELNBuildSync's path)."""
        await (await control()).resume()
        log.warning("batching unpaused by %s", who.name)
        return PlainTextResponse(f"Unpaused by {who.name}\n")

    _LOGLEVEL_ERRORS: dict[int | str, dict[str, object]] = {
        400: {"description": "Not a log level"}, **_WRITE_ERRORS,
    }

    @app.get("/loglevel/{level}", response_class=PlainTextResponse,
             responses=_LOGLEVEL_ERRORS, tags=["control"], operation_id="loglevel_get")
    @app.post("/loglevel/{level}", response_class=PlainTextResponse,
              responses=_LOGLEVEL_ERRORS, tags=["control"], operation_id="loglevel_post")
    async def loglevel(
        level: Annotated[str, PathParam(description=", ".join(LOG_LEVELS))],
        who: Annotated[Principal, Depends(admin)],
    ) -> PlainTextResponse:
        """Set the log level of this API process and, through the collector's
        `set_log_level` signal, of every ebs worker (they follow within seconds)."""
        name = level.upper()
        if name not in LOG_LEVELS:
            return PlainTextResponse(f"Invalid log level: {name}", status_code=400)
        set_log_level(name)
        await (await control()).set_log_level(name)
        log.warning("Log Level changed to %s by %s", name, who.name)
        return PlainTextResponse(f"Log level set to {name}")

    # ---- browser login (the original's /login, /oidc/callback, /logout) ----

    def not_configured() -> PlainTextResponse:
        return PlainTextResponse(
            "Authentication not configured (browser login needs open_id_connect and the "
            "OIDC client secret)", status_code=404,
        )

    @app.get("/login", include_in_schema=False)
    async def login_start(request: Request) -> Response:
        return await login.login(request) if login else not_configured()

    @app.get("/oidc/callback", include_in_schema=False)
    async def oidc_callback(request: Request) -> Response:
        return await login.callback(request) if login else not_configured()

    @app.get("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        return await BrowserLogin.logout(request) if login else RedirectResponse("/", 302)

    @app.get("/trigger", response_class=HTMLResponse, tags=["control"])
    async def trigger_page(request: Request) -> Response:
        """For a logged-in admin: who they are and how to POST to /trigger (the
        original's page). Anyone else is sent to /login."""
        user = session_principal(request)
        if user is None:
            return login_redirect(request) if login else not_configured()
        try:
            check_admin(user)
        except AuthFailure as err:
            return PlainTextResponse(err.detail, status_code=403)
        name, groups = html.escape(user.name), html.escape(", ".join(user.groups))
        return HTMLResponse(f"""<!DOCTYPE html>
<html><head><title>ELN Build Trigger</title></head><body>
<h1>ELN Build Trigger</h1>
<p>Logged in as: <strong id="user">{name}</strong></p>
<p>Groups: {groups}</p>
<p>To trigger builds, POST a JSON array of downstream component names to this endpoint
(or <code>{{"components": [...]}}</code>) with an API token or an OIDC access token
as <code>Authorization: Bearer</code>.</p>
<p><a href="/status.html">Status</a> · <a href="/logout">Logout</a></p>
</body></html>""")

    register_component_routes(
        app, catalog or default_catalog(cfg, source.get, links), control, admin
    )
    register_codec_routes(app, cfg.api.codec_cors_origins)
    return app
