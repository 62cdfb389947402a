"""The JSON control endpoint, /_sim/...: script the simulator from outside.

  GET  /_sim/state                 summary (urls, seed, counts, side tags)
  GET  /_sim/script                the current script
  POST /_sim/script                update it: {"outcomes": {"bash": ["FAILED", "CLOSED"]},
                                   "durations": {...}, "faults": [{"method": "build",
                                   "kind": "http500"}], "drop": 0.1, "repo_delay": 0.5, ...}
  POST /_sim/reset                 a fresh world (same seed unless {"seed": N})
  POST /_sim/rawhide-build         {"name", "version", "release"[, "owner", "commit"]}
  POST /_sim/tag, /_sim/untag      {"tag", "nvr"}
  POST /_sim/finish-task           {"task_id", "outcome"} (e.g. end a HANG task)
  GET  /_sim/calls                 the hub call log (?method=build to filter)
  GET  /_sim/messages              what went to the sink, with each message's fate
  GET  /_sim/builds                builds submitted through the hub
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import koji

if TYPE_CHECKING:
    from . import Simulator

StartResponse = Callable[..., Any]


def _json(start_response: StartResponse, status: str, data: Any) -> list[bytes]:
    body = json.dumps(data, default=str, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def handle_control(sim: Simulator, environ: dict[str, Any],
                   start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")[len("/_sim"):].strip("/")
    method = environ.get("REQUEST_METHOD", "GET")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        data = _body(environ) if method == "POST" else {}
        result = _route(sim, method, path, data, query)
    except KeyError as exc:
        return _json(start_response, "400 Bad Request", {"error": f"missing field {exc}"})
    except (ValueError, TypeError, koji.GenericError) as exc:
        return _json(start_response, "400 Bad Request", {"error": str(exc)})
    if result is None:
        return _json(start_response, "404 Not Found", {"error": f"no control route {path!r}"})
    return _json(start_response, "200 OK", result)


def _route(sim: Simulator, method: str, path: str, data: dict[str, Any],
           query: dict[str, str]) -> Any:
    if method == "GET":
        if path in ("", "state"):
            return sim.summary()
        if path == "script":
            with sim.world.lock:
                return sim.world.script.to_dict()
        if path == "calls":
            return [{"method": c.method, "args": c.args, "kwargs": c.kwargs,
                     "in_multicall": c.in_multicall, "fault": c.fault, "at": c.at}
                    for c in sim.calls if "method" not in query or c.method == query["method"]]
        if path == "messages":
            return [{"topic": d.topic, "body": d.body, "fate": d.fate}
                    for d in list(sim.world.outbox.log)]
        if path == "builds":
            return list(sim.builds_submitted)
        return None
    if method != "POST":
        raise ValueError(f"method {method} not allowed")
    if path == "script":
        sim.script_update(data)
        with sim.world.lock:
            return sim.world.script.to_dict()
    if path == "reset":
        sim.reset(seed=data.get("seed"))
        return sim.summary()
    if path == "rawhide-build":
        b = sim.add_rawhide_build(data["name"], data["version"], data["release"],
                                  owner=data.get("owner"), commit=data.get("commit"))
        return {"id": b.id, "nvr": b.nvr, "source": b.source, "task_id": b.task_id}
    if path == "tag":
        sim.world.tag_build_now(data["tag"], data["nvr"])
        return {"ok": True}
    if path == "untag":
        sim.world.untag_build_now(data["tag"], data["nvr"])
        return {"ok": True}
    if path == "finish-task":
        sim.finish_task(int(data["task_id"]), data.get("outcome", "CLOSED"))
        return {"ok": True}
    return None
