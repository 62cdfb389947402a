"""One Bodhi request as the handlers see it, and how they refuse one."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request as HttpRequest

# Routes take every method, so that a wrong one gets the server's own 405.
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


class Reject(Exception):
    """Answer the current request with an error (Bodhi's JSON shape by default)."""

    def __init__(self, status: int, errors: list[tuple[str, str, str]] | None = None,
                 *, body: str | None = None, headers: list[tuple[str, str]] | None = None):
        super().__init__(status)
        self.status = status
        self.errors = errors or []
        self.body = body
        self.headers = headers or []


@dataclass
class Request:
    method: str
    path: str  # relative to the mount point, without a leading "/"
    params: dict[str, list[str]]
    form: dict[str, list[str]]
    cookies: dict[str, str]
    bearer: str | None
    base_url: str  # "http://host:port/bodhi/"
    json_body: dict[str, Any] | None = None
    set_cookies: list[str] = field(default_factory=list)
    operation: str = ""
    user: str | None = None

    def first(self, source: dict[str, list[str]], key: str) -> str | None:
        values = source.get(key)
        return values[-1] if values else None

    def listed(self, source: dict[str, list[str]], key: str) -> list[str] | None:
        """Bodhi's splitter: repeated keys and comma/space-separated values."""
        if key not in source:
            return None
        return [item for value in source[key] for item in re.split(r"[,\s]+", value) if item]


def parse_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "t", "y", "yes", "on"):
        return True
    if lowered in ("false", "0", "f", "n", "no", "off", ""):
        return False
    raise ValueError(f'"{value}" is neither in (false, 0) nor in (true, 1)')


def form_str(value: Any) -> str:
    """A JSON scalar as a form value (JSON bodies are read like form bodies)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def package_of(nvr: str) -> str:
    return nvr.rsplit("-", 2)[0]


def paging(req: Request) -> tuple[int, int]:
    errors = []
    numbers = []
    for name, default, low, high in (("page", 1, 1, None), ("rows_per_page", 20, 1, 1000)):
        raw = req.first(req.params, name)
        try:
            value = default if raw in (None, "") else int(raw)  # type: ignore[arg-type]
        except ValueError:
            errors.append(("querystring", name, f'"{raw}" is not a number'))
            continue
        if value < low or (high is not None and value > high):
            errors.append(("querystring", name, f"{value} is out of range"))
        numbers.append(value)
    if errors:
        raise Reject(400, errors)
    return numbers[0], numbers[1]


def page_of(items: list[Any], key: str, page: int, rows: int) -> dict[str, Any]:
    return {
        key: items[rows * (page - 1): rows * page],
        "page": page,
        "pages": math.ceil(len(items) / rows),
        "rows_per_page": rows,
        "total": len(items),
    }



async def read_request(http: HttpRequest) -> Request:
    """The request relative to the mount point (root_path), with its body read:
    JSON bodies are read like form bodies, as Bodhi's cornice schemas do."""
    scope = http.scope
    params = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    form: dict[str, list[str]] = {}
    json_body: dict[str, Any] | None = None
    raw = await http.body()
    if raw and "json" in http.headers.get("content-type", ""):
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            json_body = loaded
            form = {
                k: [form_str(x) for x in v] if isinstance(v, list) else [form_str(v)]
                for k, v in loaded.items() if v is not None
            }
    elif raw:
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    cookies = SimpleCookie(http.headers.get("cookie", ""))
    authz = http.headers.get("authorization", "")
    bearer = authz[7:].strip() if authz[:7].lower() == "bearer " else None
    root = scope.get("root_path", "")
    path = scope["path"][len(root):] if scope["path"].startswith(root) else scope["path"]
    host = http.headers.get("host") or "{}:{}".format(*(scope.get("server") or ("", 0)))
    return Request(
        method=scope["method"].upper(),
        path=path.lstrip("/"),
        params=params,
        form=form,
        cookies={k: m.value for k, m in cookies.items()},
        bearer=bearer,
        base_url=f"{scope.get('scheme', 'http')}://{host}{root.rstrip('/')}/",
        json_body=json_body,
    )
