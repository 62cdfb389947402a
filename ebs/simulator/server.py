"""The simulator's HTTP face: one threaded WSGI server for every route.

  POST /kojihub            Koji XML-RPC (koji.ClientSession talks to this)
  /_sim/...                JSON control endpoint (see ebs.simulator.control)
  GET  /content-resolver/view-{source}-package-name-list--view-{view}.txt
  GET  /koji/taskinfo?taskID=N, /koji/buildinfo?buildID=N   minimal web pages
  /bodhi/...               the Bodhi simulator (ebs.simulator.bodhi), if present
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import koji
import koji.xmlrpcplus

from .hub import KOJI_VERSION, SimulatedHTTPError

if TYPE_CHECKING:
    from . import Simulator

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_RESOLVER_RE = re.compile(r"^/content-resolver/view-(?P<source>.+?)-package-name-list--view-"
                          r"(?P<view>.+)\.txt$")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sim http: " + format, *args)


class SimApp:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http_requests = 0
        self.requests_by_path: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self.stopping = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        with self._count_lock:
            self.http_requests += 1
            key = path if not path.startswith("/bodhi") else "/bodhi"
            self.requests_by_path[key] = self.requests_by_path.get(key, 0) + 1
        try:
            if path == "/kojihub" or path == "/kojihub/":
                return self._kojihub(environ, start_response)
            if path.startswith("/_sim"):
                from .control import handle_control

                return handle_control(self.sim, environ, start_response)
            if path.startswith("/bodhi"):
                return self._bodhi(environ, start_response)
            m = _RESOLVER_RE.match(path)
            if m:
                return self._package_list(m.group("view"), m.group("source"), start_response)
            if path in ("/koji/taskinfo", "/koji/buildinfo"):
                return self._web(path, environ, start_response)
            if path in ("", "/"):
                return _text(start_response, "200 OK", self._index(), "text/html")
            return _text(start_response, "404 Not Found", f"no such page: {path}\n")
        except Exception:
            log.exception("simulator request %s failed", path)
            return _text(start_response, "500 Internal Server Error", "simulator error\n")

    def _kojihub(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _text(start_response, "405 Method Not Allowed", "POST XML-RPC here\n")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as exc:
            return _text(start_response, "400 Bad Request", f"bad XML-RPC request: {exc}\n")
        try:
            result = self.sim.hub.dispatch(str(method), params)
            payload = koji.xmlrpcplus.dumps((result,), methodresponse=1, allow_none=1)
        except SimulatedHTTPError as exc:
            if exc.rule.kind == "timeout":
                return _text(start_response, "504 Gateway Timeout", "upstream timed out\n")
            return _text(start_response, "500 Internal Server Error",
                         f"Internal Server Error: {exc.rule.message}\n")
        except koji.GenericError as exc:
            fault = xmlrpc.client.Fault(getattr(exc, "faultCode", 1000), str(exc))
            payload = koji.xmlrpcplus.dumps(fault, methodresponse=1, allow_none=1)
        except Exception as exc:  # a simulator bug, reported as the hub would
            log.exception("simulated hub call %s failed", method)
            fault = xmlrpc.client.Fault(1, f"{type(exc).__name__}: {exc}")
            payload = koji.xmlrpcplus.dumps(fault, methodresponse=1, allow_none=1)
        data = payload.encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(data))),
                                  ("Koji-Version", KOJI_VERSION)])
        return [data]

    def _bodhi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        app = self.sim.bodhi_app
        if app is None:
            return _text(start_response, "404 Not Found", "the Bodhi simulator is not available\n")
        env = dict(environ)
        env["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/bodhi"
        env["PATH_INFO"] = environ.get("PATH_INFO", "")[len("/bodhi"):]
        return app(env, start_response)  # type: ignore[no-any-return]

    def _package_list(self, view: str, source: str,
                      start_response: StartResponse) -> Iterable[bytes]:
        names = self.sim.layout.package_lists.get((view, source))
        if names is None:
            return _text(start_response, "404 Not Found", f"no view {view!r} / {source!r}\n")
        return _text(start_response, "200 OK", "".join(f"{n}\n" for n in names))

    def _web(self, path: str, environ: dict[str, Any],
             start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        world = self.sim.world
        with world.lock:
            try:
                if path == "/koji/taskinfo":
                    t = world.get_task(query.get("taskID", ["0"])[0], strict=True)
                    assert t is not None
                    rows = {"ID": t.id, "Method": t.method, "State": t.state_name,
                            "Owner": world.users[t.owner_id].name,
                            "Request": html.escape(repr(t.request)),
                            "Created": time.ctime(t.create_ts),
                            "Result": html.escape(t.fault[1]) if t.fault else ""}
                else:
                    b = world.get_build(int(query.get("buildID", ["0"])[0]), strict=True)
                    assert b is not None
                    rows = {"ID": b.id, "NVR": b.nvr, "State": koji.BUILD_STATES[b.state],
                            "Draft": "yes" if b.draft else "no", "Source": b.source or "",
                            "Task": b.task_id or ""}
            except (koji.GenericError, ValueError) as exc:
                return _text(start_response, "404 Not Found", f"{exc}\n")
        body = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows.items())
        return _text(start_response, "200 OK", f"<html><body>{body}</table></body></html>",
                     "text/html")

    def _index(self) -> str:
        sim = self.sim
        return (f"<html><body><h1>ebs simulator</h1><ul>"
                f"<li>Koji hub: {sim.hub_url}</li><li>Bodhi: {sim.bodhi_url}</li>"
                f"<li>control: {sim.url}/_sim/state</li></ul></body></html>")


def _text(start_response: StartResponse, status: str, text: str,
          ctype: str = "text/plain") -> list[bytes]:
    data = text.encode("utf-8")
    start_response(status, [("Content-Type", f"{ctype}; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def serve(app: SimApp, host: str, port: int) -> WSGIServer:
    return make_server(host, port, app, server_class=_ThreadingWSGIServer,
                       handler_class=_QuietHandler)
