"""The Bodhi simulator's JSON control routes, ``_sim/...`` under its mount."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from .core import BodhiCore
from .model import SimRelease
from .request import Reject, Request


class BodhiControl(BodhiCore):
    # ---- control API -------------------------------------------------------

    def _control(self, req: Request) -> Any:
        path, method = req.path[len("_sim/"):].rstrip("/"), req.method
        body = req.json_body or {}
        if path == "calls":
            if method == "DELETE":
                self.clear_calls()
                return {"cleared": True}
            operation = req.first(req.params, "operation")
            return {"calls": [asdict(c) for c in self.calls(operation)]}
        if path == "faults":
            if method == "DELETE":
                self.clear_faults()
                return {"cleared": True}
            if method == "POST":
                try:
                    fault = self.add_fault(**body)
                except (TypeError, ValueError) as err:
                    raise Reject(400, [("body", "fault", str(err))]) from None
                return asdict(fault)
            with self._lock:
                return {"faults": [asdict(f) for f in self._faults]}
        if path == "updates":
            return {"updates": [u.to_json(req.base_url) for u in self.updates()]}
        match = re.fullmatch(r"updates/([^/]+)/stable", path)
        if match and method == "POST":
            try:
                update = self.make_stable(match[1])
            except KeyError:
                raise Reject(404, [("url", "id", "Invalid update id")]) from None
            return {"update": update.to_json(req.base_url)}
        if path == "releases" and method == "POST":
            try:
                self.add_release(SimRelease(**body))
            except (TypeError, ValueError) as err:
                raise Reject(400, [("body", "release", str(err))]) from None
            return self.release(body["name"]).to_json()
        if path == "settings":
            if method in ("POST", "PUT"):
                self._apply_settings(body)
            return {"stable_after": self.stable_after, "auth": self.auth,
                    "kerberos": self.kerberos, "username": self.username}
        if path == "revoke-logins" and method == "POST":
            self.revoke_logins()
            return {"revoked": True}
        raise Reject(404, [("url", "path", f"no simulator control at /_sim/{path}")])

    def _apply_settings(self, body: dict[str, Any]) -> None:
        allowed = {"stable_after", "auth", "kerberos", "username"}
        unknown = set(body) - allowed
        if unknown:
            raise Reject(400, [("body", "settings", f"unknown settings {sorted(unknown)}")])
        with self._lock:
            old = {k: getattr(self, k) for k in allowed}
            for key, value in body.items():
                setattr(self, key, value)
            try:
                self._check_settings()
            except ValueError as err:
                for key, value in old.items():
                    setattr(self, key, value)
                raise Reject(400, [("body", "settings", str(err))]) from None
        self._changed()


