"""The JSON control endpoint, /_sim/...: script the simulator from outside.

  GET  /_sim/state                 summary (urls, seed, counts, side tags)
  GET  /_sim/script                the current script
  POST /_sim/script                update it: {"outcomes": {"bash": ["FAILED", "CLOSED"]},
                                   "durations": {...}, "faults": [{"method": "build",
                                   "kind": "http_error"}], "drop": 0.1, "repo_delay": 0.5, ...}
                                   (faults: ebs.simulator.faults)
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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import koji
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from . import Simulator

Data = dict[str, Any]


def _script(sim: Simulator) -> Any:
    with sim.world.lock:
        return sim.world.script.to_dict()


def _calls(sim: Simulator, query: dict[str, str]) -> Any:
    return [{"method": c.method, "args": c.args, "kwargs": c.kwargs,
             "in_multicall": c.in_multicall, "fault": c.fault, "at": c.at}
            for c in sim.calls if "method" not in query or c.method == query["method"]]


def _messages(sim: Simulator) -> Any:
    return [{"topic": d.topic, "body": d.body, "fate": d.fate}
            for d in list(sim.world.outbox.log)]


def _update_script(sim: Simulator, data: Data) -> Any:
    sim.script_update(data)
    return _script(sim)


def _reset(sim: Simulator, data: Data) -> Any:
    sim.reset(seed=data.get("seed"))
    return sim.summary()


def _rawhide_build(sim: Simulator, data: Data) -> Any:
    b = sim.add_rawhide_build(data["name"], data["version"], data["release"],
                              owner=data.get("owner"), commit=data.get("commit"))
    return {"id": b.id, "nvr": b.nvr, "source": b.source, "task_id": b.task_id}


def _ok(action: Callable[[Simulator, Data], Any]) -> Callable[[Simulator, Data], Any]:
    def run(sim: Simulator, data: Data) -> Any:
        action(sim, data)
        return {"ok": True}
    return run


GETS: dict[str, Callable[[Simulator, dict[str, str]], Any]] = {
    "": lambda sim, q: sim.summary(),
    "state": lambda sim, q: sim.summary(),
    "script": lambda sim, q: _script(sim),
    "calls": _calls,
    "messages": lambda sim, q: _messages(sim),
    "builds": lambda sim, q: list(sim.builds_submitted),
}
POSTS: dict[str, Callable[[Simulator, Data], Any]] = {
    "script": _update_script,
    "reset": _reset,
    "rawhide-build": _rawhide_build,
    "tag": _ok(lambda sim, d: sim.world.tag_build_now(d["tag"], d["nvr"])),
    "untag": _ok(lambda sim, d: sim.world.untag_build_now(d["tag"], d["nvr"])),
    "finish-task": _ok(lambda sim, d: sim.finish_task(int(d["task_id"]),
                                                      d.get("outcome", "CLOSED"))),
}


class ControlApp:
    """The ASGI app mounted at /_sim."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await Request(scope, receive).body()
        query = {k: v[-1] for k, v in
                 parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        path = get_route_path(scope).strip("/")
        status, data = await run_in_threadpool(self._answer, scope["method"], path, raw, query)
        body = json.dumps(data, default=str, indent=1).encode()
        await Response(body, status, headers={"Content-Type": "application/json"})(
            scope, receive, send)

    def _answer(self, method: str, path: str, raw: bytes,
                query: dict[str, str]) -> tuple[int, Any]:
        try:
            if method == "GET":
                get = GETS.get(path)
                result = get(self.sim, query) if get is not None else None
            elif method == "POST":
                data = _body(raw)
                post = POSTS.get(path)
                result = post(self.sim, data) if post is not None else None
            else:
                raise ValueError(f"method {method} not allowed")
        except KeyError as exc:
            return 400, {"error": f"missing field {exc}"}
        except (ValueError, TypeError, koji.GenericError) as exc:
            return 400, {"error": str(exc)}
        if result is None:
            return 404, {"error": f"no control route {path!r}"}
        return 200, result


def _body(raw: bytes) -> Data:
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data
