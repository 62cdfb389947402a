"""The simulator's HTTP face: one ASGI app (Starlette routing) for every route,
served by uvicorn on a thread of its own.

  POST /kojihub            Koji XML-RPC (koji.ClientSession talks to this)
  /_sim/...                JSON control endpoint (see ebs.simulator.control)
  GET  /content-resolver/view-{source}-package-name-list--view-{view}.txt
  GET  /koji/taskinfo?taskID=N, /koji/buildinfo?buildID=N   minimal web pages
  /bodhi/...               the Bodhi simulator (ebs.simulator.bodhi), if present

The simulated servers are synchronous (one lock per world): their work runs on
the thread pool, never on the event loop.
"""

from __future__ import annotations

import html
import logging
import re
import socket
import threading
import time
import xmlrpc.client
from http import HTTPStatus
from typing import TYPE_CHECKING

import anyio.to_thread
import koji
import koji.xmlrpcplus
import uvicorn
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bodhi.request import METHODS
from .control import ControlApp
from .faults import FaultAnswer
from .hub import KOJI_VERSION

if TYPE_CHECKING:
    from . import Simulator

log = logging.getLogger(__name__)

_RESOLVER_RE = re.compile(r"^/view-(?P<source>.+?)-package-name-list--view-(?P<view>.+)\.txt$")
# Requests that may wait at once (scripted stalls, slow Bodhi answers): the old
# threaded server had no limit; anyio's default of 40 is too few for a batch.
THREADS = 256


class SimApp:
    """The simulator's ASGI app: routes every request of one Simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http_requests = 0
        self.requests_by_path: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self.stopping = threading.Event()
        self.router = Router([
            Route("/kojihub", self._kojihub, methods=METHODS),
            Route("/kojihub/", self._kojihub, methods=METHODS),
            Mount("/_sim", app=ControlApp(sim)),
            Mount("/bodhi", app=self._bodhi),
            Mount("/content-resolver", app=self._package_list),
            Route("/koji/taskinfo", self._web, methods=METHODS),
            Route("/koji/buildinfo", self._web, methods=METHODS),
            Route("/", self._index, methods=METHODS),
        ], redirect_slashes=False, default=self._not_found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        path = scope["path"]
        with self._count_lock:
            self.http_requests += 1
            key = path if not path.startswith("/bodhi") else "/bodhi"
            self.requests_by_path[key] = self.requests_by_path.get(key, 0) + 1
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.router(scope, receive, tracked)
        except Exception:
            log.exception("simulator request %s failed", path)
            if not started:
                await PlainTextResponse("simulator error\n", 500)(scope, receive, send)

    async def _kojihub(self, request: Request) -> Response:
        if request.method != "POST":
            return PlainTextResponse("POST XML-RPC here\n", 405)
        body = await request.body()
        return await run_in_threadpool(self._xmlrpc, body)

    def _xmlrpc(self, body: bytes) -> Response:
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as exc:
            return PlainTextResponse(f"bad XML-RPC request: {exc}\n", 400)
        try:
            result = self.sim.hub.dispatch(str(method), params)
            payload = koji.xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1)
        except FaultAnswer as exc:
            if exc.fault.kind == "timeout":
                return PlainTextResponse("upstream timed out\n", exc.fault.status)
            phrase = _phrase(exc.fault.status)
            return PlainTextResponse(f"{phrase}: {exc.fault.message or 'simulated fault'}\n",
                                     exc.fault.status)
        except koji.GenericError as exc:
            fault = xmlrpc.client.Fault(getattr(exc, "faultCode", 1000), str(exc))
            payload = koji.xmlrpcplus.dumps(fault, methodresponse=1, allow_none=1)
        except Exception as exc:  # a simulator bug, reported as the hub would
            log.exception("simulated hub call %s failed", method)
            fault = xmlrpc.client.Fault(1, f"{type(exc).__name__}: {exc}")
            payload = koji.xmlrpcplus.dumps(fault, methodresponse=1, allow_none=1)
        return Response(payload.encode("utf-8"), 200,
                        headers={"Content-Type": "text/xml", "Koji-Version": KOJI_VERSION})

    async def _bodhi(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.sim.bodhi_app
        if app is None:
            response = PlainTextResponse("the Bodhi simulator is not available\n", 404)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    async def _package_list(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = _RESOLVER_RE.match(get_route_path(scope))
        if m is None:
            await self._not_found(scope, receive, send)
            return
        view, source = m.group("view"), m.group("source")
        names = self.sim.layout.package_lists.get((view, source))
        if names is None:
            response = PlainTextResponse(f"no view {view!r} / {source!r}\n", 404)
        else:
            response = PlainTextResponse("".join(f"{n}\n" for n in names))
        await response(scope, receive, send)

    def _web(self, request: Request) -> Response:
        """Koji's taskinfo/buildinfo pages, reduced to a table (a sync endpoint:
        Starlette runs it on the thread pool)."""
        query = request.query_params
        world = self.sim.world
        with world.lock:
            try:
                if request.url.path == "/koji/taskinfo":
                    t = world.get_task(query.get("taskID", "0"), strict=True)
                    assert t is not None
                    rows = {"ID": t.id, "Method": t.method, "State": t.state_name,
                            "Owner": world.users[t.owner_id].name,
                            "Request": html.escape(repr(t.request)),
                            "Created": time.ctime(t.create_ts),
                            "Result": html.escape(t.fault[1]) if t.fault else ""}
                else:
                    b = world.get_build(int(query.get("buildID", "0")), strict=True)
                    assert b is not None
                    rows = {"ID": b.id, "NVR": b.nvr, "State": koji.BUILD_STATES[b.state],
                            "Draft": "yes" if b.draft else "no", "Source": b.source or "",
                            "Task": b.task_id or ""}
            except (koji.GenericError, ValueError) as exc:
                return PlainTextResponse(f"{exc}\n", 404)
        body = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows.items())
        return Response(f"<html><body>{body}</table></body></html>", 200,
                        media_type="text/html")

    def _index(self, request: Request) -> Response:
        sim = self.sim
        return Response(f"<html><body><h1>ebs simulator</h1><ul>"
                        f"<li>Koji hub: {sim.hub_url}</li><li>Bodhi: {sim.bodhi_url}</li>"
                        f"<li>control: {sim.url}/_sim/state</li></ul></body></html>", 200,
                        media_type="text/html")

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"no such page: {scope['path']}\n", 404)(scope, receive, send)


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase


class HttpServer:
    """uvicorn serving an ASGI app on a thread; the socket is bound at once, so
    port 0 gives a free port and a taken port fails here (OSError)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(1024)
        except OSError:
            self._sock.close()
            raise
        self.server_port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                server_header=False, timeout_graceful_shutdown=1,
                                timeout_keep_alive=5)
        self._server = uvicorn.Server(config)
        quiet = logging.getLogger("uvicorn.error")  # its start/stop lines are noise here
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> HttpServer:
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]},
                                        name="ebs-sim-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulator's HTTP server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(app: ASGIApp, host: str, port: int) -> HttpServer:
    """A server for `app`, bound but not yet started (see HttpServer.start)."""
    return HttpServer(app, host, port)
