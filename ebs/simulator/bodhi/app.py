"""BodhiSim: the Bodhi simulator as an ASGI app (mount it at ``/bodhi``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import cached_property, partial
from http import HTTPStatus
from typing import Any

from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from ..faults import Fault, FaultAnswer, play, take_fault
from .api import BodhiApi
from .control import BodhiControl
from .model import SimCall
from .oidc import OidcProvider
from .request import METHODS, Reject, Request, read_request

Handler = Callable[[Request], Any]

log = logging.getLogger(__name__)


class BodhiSim(BodhiApi, OidcProvider, BodhiControl):
    """The Bodhi simulator, an ASGI application (mount it at ``/bodhi``); see
    BodhiCore for its settings."""

    @cached_property
    def _router(self) -> Router:
        return Router(self._routes(), redirect_slashes=False, default=self._not_found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)

    def _routes(self) -> list[BaseRoute]:
        """Bodhi's paths, each with its operations by HTTP method (what faults
        target and the call log records)."""
        table: list[tuple[str, dict[str, tuple[str, Handler]] | None]] = [
            ("/releases/", {"GET": ("releases", self._list_releases)}),
            ("/releases/{name}/", {"GET": ("release", self._get_release)}),
            ("/csrf/", {"GET": ("csrf", self._csrf)}),
            ("/updates/", {"GET": ("list_updates", self._list_updates),
                           "POST": ("create_update", self._create_update)}),
            ("/updates/{alias}/", {"GET": ("get_update", self._get_update)}),
            ("/oidc/.well-known/openid-configuration",
             {"GET": ("oidc_discovery", self._oidc_discovery)}),
            ("/oidc/Authorization", {"GET": ("oidc_authorize", self._oidc_authorize)}),
            ("/oidc/Token", {"POST": ("oidc_token", self._oidc_token)}),
            ("/oidc/UserInfo", {"GET": ("oidc_userinfo", self._oidc_userinfo),
                                "POST": ("oidc_userinfo", self._oidc_userinfo)}),
            ("/oidc/login-token", {"GET": ("login_token", self._login_token)}),
            ("/_sim/{rest:path}", None),  # the control routes: any method, not logged
        ]
        routes: list[BaseRoute] = []
        for path, verbs in table:
            endpoint = partial(self._serve, verbs)
            routes.append(Route(path, endpoint, methods=METHODS))
            if path.endswith("/"):  # the slash is optional
                routes.append(Route(path.rstrip("/"), endpoint, methods=METHODS))
        return routes

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = get_route_path(scope).lstrip("/")
        response = _response(*self._render_reject(
            Reject(404, [("url", "path", f"The resource /{path} could not be found.")])))
        await response(scope, receive, send)

    async def _serve(self, verbs: dict[str, tuple[str, Handler]] | None,
                     request: HttpRequest) -> Response:
        req = await read_request(request)
        params = dict(request.path_params)
        params.pop("rest", None)
        req.params.update({k: [str(v)] for k, v in params.items()})
        status, headers, body = await run_in_threadpool(self._answer, verbs, req)
        return _response(status, headers + [("Set-Cookie", c) for c in req.set_cookies], body)

    def _answer(self, verbs: dict[str, tuple[str, Handler]] | None,
                req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        call = SimCall(time.time(), req.method, "/" + req.path, "", req.params, req.form)
        status, headers, body = 500, [("Content-Type", "text/plain")], b"Internal Server Error"
        try:
            if verbs is None:
                handler: Handler = self._control
            elif req.method in verbs:
                req.operation, handler = verbs[req.method]
            else:
                raise Reject(405, [("url", "method",
                                    f"{req.method} is not allowed on /{req.path}")])
            call.operation = req.operation
            fault = self._pick_fault(req.operation) if req.operation else None
            if fault is not None:
                call.fault = fault.label
            result = play(fault, lambda: handler(req), time.sleep, self._fault_error)
            status, headers, body = self._render(result)
        except FaultAnswer as answer:
            status, headers, body = self._render_reject(self._fault_page(answer.fault))
        except Reject as rej:
            status, headers, body = self._render_reject(rej)
        except Exception:
            log.exception("bodhi sim: %s %s failed", req.method, req.path)
        call.status, call.user = status, req.user
        if req.operation:
            with self._lock:
                self._calls.append(call)
        return status, headers, body

    def _pick_fault(self, operation: str) -> Fault | None:
        with self._lock:
            fault = take_fault(self._faults, operation, None, self._rng)
            if fault is not None and fault.times is not None:
                if fault.exhausted:
                    self._faults.remove(fault)
                self._changed()
            return fault

    @staticmethod
    def _fault_error(fault: Fault) -> Reject:
        """A scripted ``error``: Bodhi's error JSON."""
        text = fault.message or "Simulated Bodhi error"
        return Reject(fault.status, [("body", "simulator", text)])

    @staticmethod
    def _fault_page(fault: Fault) -> Reject:
        """A scripted HTTP failure: the error page of a failing proxy."""
        phrase = HTTPStatus(fault.status).phrase
        page = f"<html><body><h1>{fault.status} {phrase}</h1>{fault.message}</body></html>"
        return Reject(fault.status, body=page, headers=[("Content-Type", "text/html")])

    @staticmethod
    def _render(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        if isinstance(result, tuple):
            status, content_type, text = result
            return status, [("Content-Type", content_type)], text.encode()
        body = json.dumps(result).encode()
        return 200, [("Content-Type", "application/json")], body

    @staticmethod
    def _render_reject(rej: Reject) -> tuple[int, list[tuple[str, str]], bytes]:
        if rej.body is not None:
            headers = rej.headers or [("Content-Type", "text/plain")]
            return rej.status, headers, rej.body.encode()
        errors = [{"location": loc, "name": name, "description": text}
                  for loc, name, text in rej.errors]
        body = json.dumps({"status": "error", "errors": errors}).encode()
        return rej.status, [("Content-Type", "application/json"), *rej.headers], body



def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    """A response with exactly these headers (Set-Cookie may repeat)."""
    response = Response(body, status)
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers]
    response.raw_headers.append((b"content-length", str(len(body)).encode()))
    return response
