"""A Bodhi simulator: a WSGI app speaking enough of Bodhi's REST API for the
unmodified ``bodhi.client.bindings.BodhiClient`` (and so ebs's adapter).

What it serves (paths relative to the mount point, normally ``/bodhi``):

- ``GET releases/`` (``name``, ``state``, ``ids``, ``exclude_archived``, paging)
  and ``GET releases/<name>``; seeded with Rawhide (F45, branch ``rawhide``,
  stable tag ``f45``) and ELN (stable tag ``eln``).
- ``GET csrf``: a CSRF token bound to a session cookie, checked on writes.
- ``POST updates/`` from a Koji side tag (``from_tag``: its builds, read via
  :class:`KojiView`) or from ``builds``, with Bodhi's validation messages
  ("Update already exists using this side tag", ...); ``GET updates/`` with
  Bodhi's filters (``alias``, ``builds``, ``releases``, ``from_side_tag_name``,
  ``from_side_tag``, ``status``, ``user``, ``packages``, paging);
  ``GET updates/<alias>``.
- An OpenID Connect provider under ``oidc/`` (discovery document,
  authorization endpoint answering as Ipsilon does after a Kerberos login,
  token endpoint with authorization-code and refresh-token grants, userinfo),
  and Bodhi's own ``oidc/login-token`` that turns a bearer token into the
  ``auth_tkt`` session cookie.
- ``_sim/...``, a JSON control API: ``GET|DELETE _sim/calls[?operation=]``;
  ``GET|POST|DELETE _sim/faults`` (POST body: :class:`Fault` fields);
  ``GET _sim/updates``; ``POST _sim/updates/<alias>/stable``;
  ``POST _sim/releases`` (:class:`SimRelease` fields); ``GET|POST _sim/settings``
  (``stable_after``, ``auth``, ``kerberos``, ``username``);
  ``POST _sim/revoke-logins``.  Control requests are not in the call log.

An update from a side tag "goes stable" ``stable_after`` seconds after it is
created (``None``: only when :meth:`BodhiSim.make_stable` is called): its
builds are tagged into the release's stable tag and the side tag is removed,
as Fedora's Bodhi does for side-tag updates.

Errors use Bodhi's (cornice's) shape, ``{"status": "error", "errors":
[{"location", "name", "description"}]}``; faults are scripted per operation
and drawn from a seeded random generator, so runs are reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode
from wsgiref.util import application_uri

log = logging.getLogger(__name__)

UPDATE_TYPES = ("security", "bugfix", "enhancement", "newpackage", "unspecified")
SEVERITIES = ("unspecified", "urgent", "high", "medium", "low")
SUGGESTIONS = ("unspecified", "reboot", "logout")
UPDATE_STATUSES = ("pending", "testing", "stable", "unpushed", "obsolete", "side_tag_active",
                   "side_tag_expired")
RELEASE_STATES = ("disabled", "pending", "frozen", "current", "archived")

# Operation names: what faults target and what the call log records.
OPERATIONS = (
    "releases", "release", "csrf", "create_update", "list_updates", "get_update",
    "oidc_discovery", "oidc_authorize", "oidc_token", "oidc_userinfo", "login_token",
)
FAULT_KINDS = ("http_error", "bodhi_error", "slow", "lost_response")

# SimUpdate's datetime fields (ISO strings in saved state).
_UPDATE_DATES = ("date_submitted", "date_modified", "date_testing", "date_stable")

SESSION_COOKIE = "bodhi_session"
AUTH_COOKIE = "auth_tkt"
_DATE_FMT = "%Y-%m-%d %H:%M:%S"


class KojiView(Protocol):
    """What the Bodhi simulator needs from Koji (the Koji simulator provides it).

    ``tagged_nvrs`` should answer like ``listTagged(tag, latest=True)``.
    """

    def tagged_nvrs(self, tag: str) -> list[str]: ...
    def tag_nvr(self, tag: str, nvr: str) -> None: ...
    def untag_nvr(self, tag: str, nvr: str) -> None: ...
    def tag_exists(self, tag: str) -> bool: ...
    def remove_side_tag(self, tag: str) -> None: ...


@dataclass
class SimRelease:
    """A Bodhi release; the fields are those of Bodhi's release JSON."""

    name: str
    long_name: str
    version: str
    branch: str
    dist_tag: str
    stable_tag: str
    testing_tag: str
    candidate_tag: str
    pending_signing_tag: str = ""
    pending_testing_tag: str = ""
    pending_stable_tag: str = ""
    override_tag: str = ""
    id_prefix: str = "FEDORA"
    state: str = "pending"
    composed_by_bodhi: bool = False
    create_automatic_updates: bool = True
    package_manager: str = "dnf"
    testing_repository: str | None = "updates-testing"
    mail_template: str = "fedora_errata_template"
    eol: str | None = None
    released_on: str | None = None
    setting_status: str | None = None
    # Not in Bodhi's JSON: the Koji build tag side tags are made from (their
    # inheritance is how real Bodhi finds the release of a side tag).
    build_tag: str = ""
    # Not in Bodhi's JSON: the dist tag in NVRs (".fc45", ".eln").
    nvr_dist: str = ""

    def __post_init__(self) -> None:
        if self.state not in RELEASE_STATES:
            raise ValueError(f"release state must be one of {RELEASE_STATES}, not {self.state!r}")
        self.build_tag = self.build_tag or f"{self.stable_tag}-build"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["build_tag"], data["nvr_dist"]
        # Computed by real Bodhi from its config; these are its defaults (an
        # unconfigured release: no mandatory days, critpath 14, karma 2).
        data.update(critpath_mandatory_days_in_testing=14, mandatory_days_in_testing=0,
                    critpath_min_karma=2, min_karma=2)
        return data


def default_releases() -> list[SimRelease]:
    """Fedora Rawhide (F45) and ELN, both pending and not composed by Bodhi."""
    return [
        SimRelease(
            name="F45", long_name="Fedora 45", version="45", branch="rawhide",
            dist_tag="f45", stable_tag="f45", testing_tag="f45-updates-testing",
            candidate_tag="f45-updates-candidate", pending_signing_tag="f45-signing-pending",
            pending_testing_tag="f45-updates-testing-pending",
            pending_stable_tag="f45-updates-pending", override_tag="f45-override",
            setting_status="pre_beta", nvr_dist=".fc45",
        ),
        SimRelease(
            name="ELN", long_name="Fedora ELN", version="eln", branch="eln",
            dist_tag="eln", stable_tag="eln", testing_tag="eln-updates-testing",
            candidate_tag="eln-updates-candidate", pending_signing_tag="eln-signing-pending",
            pending_testing_tag="eln-updates-testing-pending",
            pending_stable_tag="eln-updates-pending", override_tag="eln-override",
            testing_repository=None, nvr_dist=".eln",
        ),
    ]


@dataclass
class SimUpdate:
    alias: str
    release: SimRelease
    builds: list[str]
    notes: str
    type: str
    user: str
    from_tag: str | None = None
    severity: str = "unspecified"
    suggest: str = "unspecified"
    status: str = "pending"
    request: str | None = "testing"
    display_name: str = ""
    close_bugs: bool = True
    autokarma: bool = True
    autotime: bool = True
    stable_karma: int = 3
    unstable_karma: int = -3
    stable_days: int = 0
    require_bugs: bool = True
    require_testcases: bool = True
    date_submitted: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_modified: datetime | None = None
    date_testing: datetime | None = None
    date_stable: datetime | None = None

    def to_json(self, base_url: str) -> dict[str, Any]:
        def date(value: datetime | None) -> str | None:
            return value.strftime(_DATE_FMT) if value else None

        nvrs = sorted(self.builds)
        return {
            "alias": self.alias,
            "title": " ".join(nvrs),
            "display_name": self.display_name,
            "notes": self.notes,
            "type": self.type,
            "severity": self.severity,
            "suggest": self.suggest,
            "status": self.status,
            "request": self.request,
            "locked": False,
            "pushed": self.status == "stable",
            "critpath": False,
            "critpath_groups": None,
            "close_bugs": self.close_bugs,
            "autokarma": self.autokarma,
            "autotime": self.autotime,
            "stable_karma": self.stable_karma,
            "unstable_karma": self.unstable_karma,
            "stable_days": self.stable_days,
            "require_bugs": self.require_bugs,
            "require_testcases": self.require_testcases,
            "karma": 0,
            "content_type": "rpm",
            "test_gating_status": None,  # Bodhi's, when gating is not required
            "meets_testing_requirements": True,
            "date_submitted": date(self.date_submitted),
            "date_modified": date(self.date_modified),
            "date_approved": None,
            "date_pushed": date(self.date_stable),
            "date_testing": date(self.date_testing),
            "date_stable": date(self.date_stable),
            "release": self.release.to_json(),
            "builds": [
                # Signed once the signer moved it to the testing-pending tag.
                {"nvr": nvr, "release_id": None, "signed": self.status != "pending",
                 "type": "rpm", "epoch": 0}
                for nvr in nvrs
            ],
            "bugs": [],
            "comments": [],
            "user": {"name": self.user, "email": None, "avatar": None, "openid": None,
                     "groups": [{"name": "packager"}]},
            "test_cases": [],
            "updateid": self.alias,
            "from_tag": self.from_tag,
            "version_hash": hashlib.sha1(" ".join(nvrs).encode()).hexdigest(),
            "url": f"{base_url}updates/{self.alias}",
        }


@dataclass
class Fault:
    """A scripted failure of one operation (or ``"*"``: every operation).

    kind: ``http_error`` (a non-JSON error page, ``status`` default 500),
    ``bodhi_error`` (Bodhi's error JSON, ``status`` default 400), ``slow``
    (answer after ``delay`` seconds), ``lost_response`` (do the work, then
    answer 502 as a failing proxy would).  ``times``: how many matching
    requests it hits (``None``: all); ``probability``: the chance per matching
    request, drawn from the simulator's seeded generator.
    """

    operation: str
    kind: str
    times: int | None = 1
    probability: float = 1.0
    delay: float = 0.0
    status: int = 0
    message: str = ""

    def __post_init__(self) -> None:
        if self.operation != "*" and self.operation not in OPERATIONS:
            raise ValueError(f"unknown operation {self.operation!r}; one of {OPERATIONS} or '*'")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        if not self.status:
            self.status = {"bodhi_error": 400, "lost_response": 502}.get(self.kind, 500)


@dataclass
class SimCall:
    """One request the simulator answered."""

    time: float
    method: str
    path: str
    operation: str
    params: dict[str, list[str]]
    form: dict[str, list[str]]
    status: int = 0
    fault: str = ""
    user: str | None = None


class _Reject(Exception):
    """Answer the current request with an error (Bodhi's JSON shape by default)."""

    def __init__(self, status: int, errors: list[tuple[str, str, str]] | None = None,
                 *, body: str | None = None, headers: list[tuple[str, str]] | None = None):
        super().__init__(status)
        self.status = status
        self.errors = errors or []
        self.body = body
        self.headers = headers or []


@dataclass
class _Request:
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


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "t", "y", "yes", "on"):
        return True
    if lowered in ("false", "0", "f", "n", "no", "off", ""):
        return False
    raise ValueError(f'"{value}" is neither in (false, 0) nor in (true, 1)')


class BodhiSim:
    """The Bodhi simulator, a WSGI application (mount it with SCRIPT_NAME='/bodhi').

    auth: ``"none"`` accepts writes without a login (the sandbox's
    ``auth: none``); ``"oidc"`` needs a bearer token from the built-in
    provider or the ``auth_tkt`` cookie.  kerberos: ``"accept"`` makes the
    authorization endpoint answer as Ipsilon does for a Kerberos-authenticated
    client; ``"reject"`` answers 401 Negotiate, which no client can satisfy
    here (a failed Kerberos login).
    """

    def __init__(
        self,
        koji: KojiView,
        *,
        seed: int = 0,
        releases: Iterable[SimRelease] | None = None,
        stable_after: float | None = 1.0,
        auth: str = "none",
        kerberos: str = "accept",
        username: str = "elnbuildsync",
        token_lifetime: int = 3600,
    ) -> None:
        self._koji = koji
        self._lock = threading.RLock()
        # Called (without arguments) after a change worth saving (ebs.simulator.persist).
        self.on_change: Callable[[], None] | None = None
        self._rng = random.Random(seed)
        self._secret = hashlib.sha256(f"bodhi-sim-{seed}".encode()).digest()
        self._releases: dict[str, SimRelease] = {}
        for release in default_releases() if releases is None else releases:
            self.add_release(release)
        self._updates: dict[str, SimUpdate] = {}
        self._faults: list[Fault] = []
        self._calls: list[SimCall] = []
        self._timers: dict[str, threading.Timer] = {}
        self._stable_due: dict[str, float] = {}  # alias -> wall-clock time it goes stable
        self._codes: dict[str, dict[str, str]] = {}
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._auth_tickets: dict[str, str] = {}
        self._closed = False
        self.stable_after = stable_after
        self.username = username
        self.token_lifetime = token_lifetime
        self.auth = auth
        self.kerberos = kerberos
        self._check_settings()

    # ---- scripting and inspection ------------------------------------------

    def add_release(self, release: SimRelease) -> None:
        with self._lock:
            if release.name in self._releases:
                raise ValueError(f"release {release.name} already exists")
            self._releases[release.name] = release
        self._changed()

    def release(self, name: str) -> SimRelease:
        with self._lock:
            return self._releases[name]

    def add_fault(self, operation: str, kind: str, **options: Any) -> Fault:
        fault = Fault(operation, kind, **options)
        with self._lock:
            self._faults.append(fault)
        self._changed()
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self._changed()

    def calls(self, operation: str | None = None) -> list[SimCall]:
        with self._lock:
            return [c for c in self._calls if operation is None or c.operation == operation]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def updates(self) -> list[SimUpdate]:
        with self._lock:
            return list(self._updates.values())

    def update(self, alias: str) -> SimUpdate:
        with self._lock:
            return self._updates[alias]

    def revoke_logins(self) -> None:
        """Forget every token and session ticket, as after a server-side expiry."""
        with self._lock:
            self._access_tokens.clear()
            self._refresh_tokens.clear()
            self._auth_tickets.clear()
        self._changed()

    def make_stable(self, alias: str) -> SimUpdate:
        """Push an update to stable now: tag its builds into the release's stable
        tag and remove its side tag.  Koji errors propagate."""
        with self._lock:
            update = self._updates[alias]
            timer = self._timers.pop(alias, None)
            if timer is not None:
                timer.cancel()
            self._stable_due.pop(alias, None)
            if update.status == "stable":
                return update
            tagged = set(self._koji.tagged_nvrs(update.release.stable_tag))
            for nvr in update.builds:
                if nvr not in tagged:
                    self._koji.tag_nvr(update.release.stable_tag, nvr)
            if update.from_tag and self._koji.tag_exists(update.from_tag):
                self._koji.remove_side_tag(update.from_tag)
            now = datetime.now(UTC)
            update.status, update.request = "stable", None
            update.date_testing = update.date_testing or now
            update.date_stable = update.date_modified = now
            self._changed()
            log.info("bodhi sim: %s is stable in %s", alias, update.release.stable_tag)
            return update

    def close(self) -> None:
        """Cancel pending stable timers; no new ones start after this.  Their due
        times stay in :meth:`state`, so a restored simulator resumes them."""
        with self._lock:
            self._closed = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    # ---- saved state (ebs.simulator.persist) -------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while the state changes; take it before the Koji world's lock."""
        return self._lock

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def state(self) -> dict[str, Any]:
        """Releases, updates, faults, settings, logins and pending stable pushes
        as JSON-able data (the call log is not kept)."""
        def date(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        with self._lock:
            version, internal, gauss = self._rng.getstate()
            return {
                "rng": [version, list(internal), gauss],
                "releases": [asdict(r) for r in self._releases.values()],
                "updates": [{**{k: v for k, v in asdict(u).items() if k != "release"},
                             "release": u.release.name,
                             **{k: date(getattr(u, k)) for k in _UPDATE_DATES}}
                            for u in self._updates.values()],
                "faults": [asdict(f) for f in self._faults],
                "stable_due": dict(self._stable_due),
                "settings": {"stable_after": self.stable_after, "auth": self.auth,
                             "kerberos": self.kerberos, "username": self.username,
                             "token_lifetime": self.token_lifetime},
                "codes": {k: dict(v) for k, v in self._codes.items()},
                "access_tokens": {k: list(v) for k, v in self._access_tokens.items()},
                "refresh_tokens": dict(self._refresh_tokens),
                "auth_tickets": dict(self._auth_tickets),
            }

    @staticmethod
    def _parse_state(data: dict[str, Any]) -> dict[str, Any]:
        try:
            releases = {r.name: r for r in (SimRelease(**row) for row in data["releases"])}
            updates = {}
            for row in data["updates"]:
                row = dict(row)
                row["release"] = releases[row["release"]]
                for key in _UPDATE_DATES:
                    row[key] = datetime.fromisoformat(row[key]) if row.get(key) else None
                update = SimUpdate(**row)
                updates[update.alias] = update
            version, internal, gauss = data["rng"]
            settings = dict(data["settings"])
            unknown = set(settings) - {"stable_after", "auth", "kerberos", "username",
                                       "token_lifetime"}
            if unknown:
                raise ValueError(f"unknown settings {sorted(unknown)}")
            _validate_settings(settings.get("auth", "none"), settings.get("kerberos", "accept"),
                            settings.get("stable_after"))
            return {
                "rng": (int(version), tuple(int(i) for i in internal), gauss),
                "releases": releases, "updates": updates,
                "faults": [Fault(**row) for row in data["faults"]],
                "stable_due": {str(a): float(t) for a, t in data["stable_due"].items()},
                "settings": settings,
                "codes": {str(k): dict(v) for k, v in data["codes"].items()},
                "access_tokens": {str(k): (str(u), float(exp))
                                  for k, (u, exp) in data["access_tokens"].items()},
                "refresh_tokens": {str(k): str(v) for k, v in data["refresh_tokens"].items()},
                "auth_tickets": {str(k): str(v) for k, v in data["auth_tickets"].items()},
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"bad Bodhi data ({type(exc).__name__}: {exc})") from None

    @classmethod
    def check_state(cls, data: dict[str, Any]) -> None:
        """Raise ValueError if `data` (from :meth:`state`) cannot be restored."""
        cls._parse_state(data)

    def restore_state(self, data: dict[str, Any]) -> None:
        """Replace this simulator's state with `data` (from :meth:`state`);
        updates that were waiting to go stable go stable when their time comes
        (at once if it has passed).  ValueError if `data` is malformed."""
        parsed = self._parse_state(data)
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._stable_due.clear()
            self._rng.setstate(parsed["rng"])
            self._releases, self._updates = parsed["releases"], parsed["updates"]
            self._faults = parsed["faults"]
            self._codes, self._access_tokens = parsed["codes"], parsed["access_tokens"]
            self._refresh_tokens = parsed["refresh_tokens"]
            self._auth_tickets = parsed["auth_tickets"]
            for key, value in parsed["settings"].items():
                setattr(self, key, value)
            now = time.time()
            for alias, due in parsed["stable_due"].items():
                update = self._updates.get(alias)
                if update is not None and update.status != "stable":
                    self._schedule_stable(alias, max(0.0, due - now))

    def _check_settings(self) -> None:
        _validate_settings(self.auth, self.kerberos, self.stable_after)

    def _schedule_stable(self, alias: str, delay: float | None = None) -> None:
        delay = self.stable_after if delay is None else delay
        if delay is None or self._closed:
            return
        timer = threading.Timer(delay, self._auto_stable, args=(alias,))
        timer.daemon = True
        self._timers[alias] = timer
        self._stable_due[alias] = time.time() + delay
        self._changed()
        timer.start()

    def _auto_stable(self, alias: str) -> None:
        with self._lock:
            if self._closed or self._timers.get(alias) is None:
                return
            try:
                self.make_stable(alias)
            except Exception:
                log.exception("bodhi sim: pushing %s to stable failed; retrying later", alias)
                self._timers.pop(alias, None)
                self._schedule_stable(alias)

    # ---- WSGI --------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        req = self._parse(environ)
        call = SimCall(time.time(), req.method, "/" + req.path, "", req.params, req.form)
        status, headers, body = 500, [("Content-Type", "text/plain")], b"Internal Server Error"
        try:
            handler = self._route(req)
            call.operation = req.operation
            fault = self._pick_fault(req.operation) if req.operation else None
            if fault is not None:
                call.fault = fault.kind
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind != "lost_response":
                    raise self._fault_response(fault)
            result = handler(req)
            if fault is not None and fault.kind == "lost_response":
                raise self._fault_response(fault)
            status, headers, body = self._render(result)
        except _Reject as rej:
            status, headers, body = self._render_reject(rej)
        except Exception:
            log.exception("bodhi sim: %s %s failed", req.method, req.path)
        headers = headers + [("Set-Cookie", c) for c in req.set_cookies]
        call.status, call.user = status, req.user
        if req.operation:
            with self._lock:
                self._calls.append(call)
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _parse(self, environ: dict[str, Any]) -> _Request:
        method = environ["REQUEST_METHOD"].upper()
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        form: dict[str, list[str]] = {}
        json_body: dict[str, Any] | None = None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        content_type = environ.get("CONTENT_TYPE", "")
        if raw and "json" in content_type:
            try:
                loaded = json.loads(raw)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                json_body = loaded
                form = {
                    k: [_form_str(x) for x in v] if isinstance(v, list) else [_form_str(v)]
                    for k, v in loaded.items() if v is not None
                }
        elif raw:
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        authz = environ.get("HTTP_AUTHORIZATION", "")
        bearer = authz[7:].strip() if authz[:7].lower() == "bearer " else None
        base_url = application_uri(environ)
        return _Request(
            method=method,
            path=environ.get("PATH_INFO", "").lstrip("/"),
            params=params,
            form=form,
            cookies={k: m.value for k, m in cookies.items()},
            bearer=bearer,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            json_body=json_body,
        )

    def _route(self, req: _Request) -> Callable[[_Request], Any]:
        path, method = req.path, req.method
        routes: list[tuple[str, str, str, Callable[[_Request], Any]]] = [
            ("GET", r"releases/?", "releases", self._list_releases),
            ("GET", r"releases/(?P<name>[^/]+)/?", "release", self._get_release),
            ("GET", r"csrf/?", "csrf", self._csrf),
            ("GET", r"updates/?", "list_updates", self._list_updates),
            ("POST", r"updates/?", "create_update", self._create_update),
            ("GET", r"updates/(?P<alias>[^/]+)/?", "get_update", self._get_update),
            ("GET", r"oidc/\.well-known/openid-configuration", "oidc_discovery",
             self._oidc_discovery),
            ("GET", r"oidc/Authorization", "oidc_authorize", self._oidc_authorize),
            ("POST", r"oidc/Token", "oidc_token", self._oidc_token),
            ("GET", r"oidc/UserInfo", "oidc_userinfo", self._oidc_userinfo),
            ("POST", r"oidc/UserInfo", "oidc_userinfo", self._oidc_userinfo),
            ("GET", r"oidc/login-token", "login_token", self._login_token),
        ]
        if path.startswith("_sim/"):
            return self._control
        allowed = False
        for verb, pattern, operation, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            allowed = True
            if verb == method:
                req.operation = operation
                req.params.update({k: [v] for k, v in match.groupdict().items()})
                return handler
        if allowed:
            raise _Reject(405, [("url", "method", f"{method} is not allowed on /{path}")])
        raise _Reject(404, [("url", "path", f"The resource /{path} could not be found.")])

    def _pick_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in list(self._faults):
                if fault.operation not in ("*", operation):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    self._changed()
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> _Reject:
        if fault.kind == "bodhi_error":
            text = fault.message or "Simulated Bodhi error"
            return _Reject(fault.status, [("body", "simulator", text)])
        phrase = HTTPStatus(fault.status).phrase
        page = f"<html><body><h1>{fault.status} {phrase}</h1>{fault.message}</body></html>"
        return _Reject(fault.status, body=page, headers=[("Content-Type", "text/html")])

    @staticmethod
    def _render(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        if isinstance(result, tuple):
            status, content_type, text = result
            return status, [("Content-Type", content_type)], text.encode()
        body = json.dumps(result).encode()
        return 200, [("Content-Type", "application/json")], body

    @staticmethod
    def _render_reject(rej: _Reject) -> tuple[int, list[tuple[str, str]], bytes]:
        if rej.body is not None:
            headers = rej.headers or [("Content-Type", "text/plain")]
            return rej.status, headers, rej.body.encode()
        errors = [{"location": loc, "name": name, "description": text}
                  for loc, name, text in rej.errors]
        body = json.dumps({"status": "error", "errors": errors}).encode()
        return rej.status, [("Content-Type", "application/json"), *rej.headers], body

    # ---- releases ----------------------------------------------------------

    def _list_releases(self, req: _Request) -> dict[str, Any]:
        page, rows = self._paging(req)
        errors = []
        states = req.listed(req.params, "state")
        for state in states or []:
            if state not in RELEASE_STATES:
                errors.append(("querystring", "state.0",
                               f'"{state}" is not one of {", ".join(RELEASE_STATES)}'))
        if errors:
            raise _Reject(400, errors)
        name = req.first(req.params, "name")
        ids = req.listed(req.params, "ids")
        exclude_archived = _bool(req.first(req.params, "exclude_archived"), False)
        with self._lock:
            found = list(self._releases.values())
        if name is not None:
            pattern = re.compile(
                "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
                        for ch in name), re.IGNORECASE)
            found = [r for r in found if pattern.fullmatch(r.name)]
        if states:
            found = [r for r in found if r.state in states]
        if exclude_archived:
            found = [r for r in found if r.state != "archived"]
        if ids:
            with self._lock:
                all_names = list(self._releases)
            found = [r for r in found if str(all_names.index(r.name) + 1) in ids]
        return self._page([r.to_json() for r in found], "releases", page, rows)

    def _get_release(self, req: _Request) -> dict[str, Any]:
        name = req.params["name"][0]
        release = self._find_release(name)
        if release is None:
            raise _Reject(404, [("body", "name", "No such release")])
        return release.to_json()

    def _find_release(self, key: str) -> SimRelease | None:
        """Bodhi's Release.get: by name, long name or dist tag (name case-insensitive)."""
        with self._lock:
            for release in self._releases.values():
                if key.upper() == release.name.upper() or key in (release.long_name,
                                                                  release.dist_tag):
                    return release
        return None

    # ---- CSRF and identity -------------------------------------------------

    def _session_id(self, req: _Request) -> str:
        session = req.cookies.get(SESSION_COOKIE)
        if not session:
            session = secrets.token_hex(16)
            req.cookies[SESSION_COOKIE] = session
            req.set_cookies.append(f"{SESSION_COOKIE}={session}; Path=/; HttpOnly")
        return session

    def _csrf_for(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha1).hexdigest()

    def _csrf(self, req: _Request) -> dict[str, Any]:
        return {"csrf_token": self._csrf_for(self._session_id(req))}

    def _identify(self, req: _Request) -> str | None:
        with self._lock:
            if req.bearer:
                entry = self._access_tokens.get(req.bearer)
                if entry is not None and entry[1] > time.time():
                    return entry[0]
            ticket = req.cookies.get(AUTH_COOKIE)
            if ticket:
                return self._auth_tickets.get(ticket)
        return None

    # ---- updates -----------------------------------------------------------

    def _create_update(self, req: _Request) -> dict[str, Any]:
        user = self._identify(req)
        if user is None and self.auth != "none":
            raise _Reject(403, [("body", "user", "You must be logged in to create updates.")])
        req.user = user or "anonymous"
        token = req.first(req.form, "csrf_token")
        session = req.cookies.get(SESSION_COOKIE)
        if not token:
            raise _Reject(400, [("body", "csrf_token", "Required")])
        if not session or not hmac.compare_digest(token, self._csrf_for(session)):
            raise _Reject(400, [("body", "csrf_token", "CSRF tokens do not match")])
        values = self._validate_update_form(req)
        with self._lock:
            if values["edited"]:
                raise _Reject(400, [("body", "edited", "Editing updates is not simulated")])
            if values["from_tag"]:
                by_release = self._builds_from_tag(values["from_tag"], values["builds"])
            else:
                by_release = self._builds_by_release(values["builds"])
            self._check_builds_unused([nvr for nvrs in by_release.values() for nvr in nvrs])
            created = []
            for release_name, nvrs in by_release.items():
                release = self._releases[release_name]
                update = SimUpdate(
                    alias=self._new_alias(release), release=release, builds=nvrs,
                    user=req.user,
                    # Bodhi sets no request on an update of a release it does not
                    # compose (Rawhide, ELN), whatever the form asked for.
                    request="testing" if release.composed_by_bodhi else None,
                    **{k: v for k, v in values.items() if k not in ("builds", "edited")},
                )
                self._updates[update.alias] = update
                created.append(update)
                if update.from_tag:
                    self._schedule_stable(update.alias)
                self._changed()
                log.info("bodhi sim: created %s from %s", update.alias,
                         update.from_tag or ", ".join(nvrs))
        caveats = []
        if len(created) > 1:
            caveats.append({"name": "releases", "description":
                            f"Your update is being split into {len(created)}, "
                            "one for each release."})
            return {"updates": [u.to_json(req.base_url) for u in created], "caveats": caveats}
        result = created[0].to_json(req.base_url)
        result["caveats"] = caveats
        return result

    def _validate_update_form(self, req: _Request) -> dict[str, Any]:
        """SaveUpdateSchema: collect every field error, as colander does."""
        form = req.form
        errors: list[tuple[str, str, str]] = []
        values: dict[str, Any] = {
            "builds": req.listed(form, "builds") or [],
            "from_tag": req.first(form, "from_tag") or None,
            "display_name": req.first(form, "display_name") or "",
            "edited": req.first(form, "edited") or "",
        }

        def choice(name: str, options: tuple[str, ...], default: str | None) -> None:
            value = req.first(form, name)
            if value is None:
                if default is None:
                    errors.append(("body", name, "Required"))
                values[name] = default
            elif value not in options:
                errors.append(("body", name, f'"{value}" is not one of {", ".join(options)}'))
            else:
                values[name] = value

        choice("type", UPDATE_TYPES, None)
        choice("severity", SEVERITIES, "unspecified")
        choice("suggest", SUGGESTIONS, "unspecified")
        notes = req.first(form, "notes")
        if notes is None:
            errors.append(("body", "notes", "A description is required for the update."))
        elif len(notes) < 2:
            errors.append(("body", "notes", "Shorter than minimum length 2"))
        values["notes"] = notes or ""
        for name, default in (("close_bugs", True), ("autokarma", True), ("autotime", True),
                              ("require_bugs", True), ("require_testcases", True)):
            try:
                values[name] = _bool(req.first(form, name), default)
            except ValueError as err:
                errors.append(("body", name, str(err)))
        for key, fallback, ok, bound in (
            ("stable_karma", 3, lambda v: v >= 1, "is less than minimum value 1"),
            ("unstable_karma", -3, lambda v: v <= -1, "is greater than maximum value -1"),
            ("stable_days", 0, lambda v: v >= 0, "is less than minimum value 0"),
        ):
            raw = req.first(form, key)
            try:
                number = fallback if raw in (None, "") else int(raw)  # type: ignore[arg-type]
            except ValueError:
                errors.append(("body", key, f'"{raw}" is not a number'))
                continue
            if not ok(number):
                errors.append(("body", key, f"{number} {bound}"))
            values[key] = number
        if errors:
            raise _Reject(400, errors)
        if values["type"] == "security" and values["severity"] == "unspecified":
            raise _Reject(400, [("body", "severity",
                                 "Must specify severity for a security update")])
        if not values["from_tag"] and not values["builds"]:
            raise _Reject(400, [("body", "builds,from_tag",
                                 "You must specify either builds or from_tag.")])
        return values

    def _builds_from_tag(self, tag: str, builds: list[str]) -> dict[str, list[str]]:
        if any(u.from_tag == tag for u in self._updates.values()):
            raise _Reject(400, [("body", "from_tag", "Update already exists using this side tag")])
        if not self._koji.tag_exists(tag):
            raise _Reject(400, [("body", "from_tag", "The supplied from_tag doesn't exist.")])
        release = self._release_of_side_tag(tag)
        if release is None:
            raise _Reject(400, [("body", "from_tag", "The supplied tag is not a side tag.")])
        tagged = self._koji.tagged_nvrs(tag)
        if builds:
            missing = [nvr for nvr in builds if nvr not in tagged]
            if missing:
                raise _Reject(400, [("body", "builds", f"Invalid tag: {nvr} not tagged with "
                                     f"any of the following tags {[tag]}") for nvr in missing])
            return {release.name: list(builds)}
        if not tagged:
            raise _Reject(400, [("body", "from_tag",
                                 "The supplied from_tag doesn't contain any builds.")])
        return {release.name: list(tagged)}

    def _release_of_side_tag(self, tag: str) -> SimRelease | None:
        """Real Bodhi follows the side tag's inheritance; a Koji side tag is named
        ``<build tag>-side-<id>``, which says the same."""
        match = re.fullmatch(r"(?P<base>.+)-side-\d+", tag)
        if match is None:
            return None
        for release in self._releases.values():
            if release.build_tag == match["base"]:
                return release
        return None

    def _builds_by_release(self, builds: list[str]) -> dict[str, list[str]]:
        by_release: dict[str, list[str]] = {}
        errors = []
        candidates = [r for r in self._releases.values() if r.state != "archived"]
        for nvr in builds:
            release = next((r for r in candidates if self._koji.tag_exists(r.candidate_tag)
                            and nvr in self._koji.tagged_nvrs(r.candidate_tag)), None)
            if release is None:
                tags = [r.candidate_tag for r in candidates]
                errors.append(("body", "builds",
                               f"Invalid tag: {nvr} not tagged with any of the following "
                               f"tags {tags}"))
                continue
            by_release.setdefault(release.name, []).append(nvr)
        if errors:
            raise _Reject(400, errors)
        for name in by_release:
            if not self._releases[name].composed_by_bodhi:
                raise _Reject(400, [("body", "builds",
                                     "Cannot manually create updates for a Release which is "
                                     "not composed by Bodhi.\nRead the 'Automatic updates' page "
                                     "in Bodhi docs about this error.")])
        return by_release

    def _check_builds_unused(self, nvrs: list[str]) -> None:
        used = {nvr: u.alias for u in self._updates.values() for nvr in u.builds}
        errors = [("body", "builds", f"Update for {nvr} already exists")
                  for nvr in nvrs if nvr in used]
        if errors:
            raise _Reject(400, errors)

    def _new_alias(self, release: SimRelease) -> str:
        while True:
            alias = f"{release.id_prefix}-{datetime.now(UTC).year}-{self._rng.getrandbits(40):010x}"
            if alias not in self._updates:
                return alias

    def _list_updates(self, req: _Request) -> dict[str, Any]:
        page, rows = self._paging(req)
        p = req.params
        errors = []
        releases = req.listed(p, "releases")
        release_names: set[str] = set()
        for key in releases or []:
            known = self._find_release(key)
            if known is None:
                errors.append(("querystring", "releases", f"Invalid releases specified: {key}"))
            else:
                release_names.add(known.name)
        statuses = req.listed(p, "status")
        for status in statuses or []:
            if status not in UPDATE_STATUSES:
                errors.append(("querystring", "status.0",
                               f'"{status}" is not one of {", ".join(UPDATE_STATUSES)}'))
        try:
            from_side_tag = (None if "from_side_tag" not in p
                             else _bool(req.first(p, "from_side_tag"), False))
        except ValueError as err:
            errors.append(("querystring", "from_side_tag", str(err)))
            from_side_tag = None
        if errors:
            raise _Reject(400, errors)
        aliases = set(req.listed(p, "alias") or []) | set(req.listed(p, "updateid") or [])
        builds = req.listed(p, "builds")
        packages = req.listed(p, "packages")
        users = req.listed(p, "user")
        side_tag_name = req.first(p, "from_side_tag_name")
        with self._lock:
            found = list(self._updates.values())
        if aliases:
            found = [u for u in found if u.alias in aliases]
        if builds is not None:
            found = [u for u in found if set(u.builds) & set(builds)]
        if packages is not None:
            found = [u for u in found if {_package(n) for n in u.builds} & set(packages)]
        if releases is not None:
            found = [u for u in found if u.release.name in release_names]
        if statuses is not None:
            found = [u for u in found if u.status in statuses]
        if users is not None:
            found = [u for u in found if u.user in users]
        if from_side_tag is not None:
            found = [u for u in found if bool(u.from_tag) == from_side_tag]
        if side_tag_name is not None:
            found = [u for u in found if u.from_tag == side_tag_name]
        found.sort(key=lambda u: u.date_submitted, reverse=True)
        answer = self._page([u.to_json(req.base_url) for u in found], "updates", page, rows)
        # What real Bodhi's query_updates adds for its web UI.
        answer.update(chrome=req.first(p, "chrome"), display_user=False, display_request=True,
                      package=None)
        return answer

    def _get_update(self, req: _Request) -> dict[str, Any]:
        alias = req.params["alias"][0]
        with self._lock:
            update = self._updates.get(alias)
        if update is None:
            raise _Reject(404, [("url", "id", "Invalid update id")])
        user = self._identify(req)
        return {"update": update.to_json(req.base_url),
                "can_edit": user is not None and user == update.user, "ci_allowed": False}

    @staticmethod
    def _paging(req: _Request) -> tuple[int, int]:
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
            raise _Reject(400, errors)
        return numbers[0], numbers[1]

    @staticmethod
    def _page(items: list[Any], key: str, page: int, rows: int) -> dict[str, Any]:
        return {
            key: items[rows * (page - 1): rows * page],
            "page": page,
            "pages": math.ceil(len(items) / rows),
            "rows_per_page": rows,
            "total": len(items),
        }

    # ---- OpenID Connect provider and Bodhi's login-token -------------------

    def _oidc_discovery(self, req: _Request) -> dict[str, Any]:
        issuer = f"{req.base_url}oidc"
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/Authorization",
            "token_endpoint": f"{issuer}/Token",
            "userinfo_endpoint": f"{issuer}/UserInfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post", "oob"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic",
                                                      "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile",
                                 "https://id.fedoraproject.org/scope/groups",
                                 "https://id.fedoraproject.org/scope/agreements"],
            "subject_types_supported": ["public"],
        }

    def _oidc_authorize(self, req: _Request) -> tuple[int, str, str]:
        """After a Kerberos (Negotiate) login Ipsilon shows the code in the page
        title for out-of-band clients; bodhi-client's Kerberos login reads it."""
        if self.kerberos == "reject":
            raise _Reject(401, body="<html><title>401 Unauthorized</title></html>",
                          headers=[("Content-Type", "text/html"),
                                   ("WWW-Authenticate", "Negotiate")])
        p = req.params
        client_id, redirect_uri = req.first(p, "client_id"), req.first(p, "redirect_uri")
        if req.first(p, "response_type") != "code" or not client_id or not redirect_uri:
            raise _Reject(400, body="invalid_request: response_type=code, client_id and "
                                    "redirect_uri are required")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                 "user": self.username}
        answer = {"code": code}
        state = req.first(p, "state")
        if state:
            answer["state"] = state
        if redirect_uri == "urn:ietf:wg:oauth:2.0:oob":
            title = urlencode(answer)
            return 200, "text/html", f"<html><head><title>{title}</title></head></html>"
        raise _Reject(302, body="", headers=[("Location", f"{redirect_uri}?{urlencode(answer)}")])

    def _oidc_token(self, req: _Request) -> dict[str, Any]:
        f = req.form
        grant = req.first(f, "grant_type")
        with self._lock:
            if grant == "authorization_code":
                entry = self._codes.pop(req.first(f, "code") or "", None)
                client_id = req.first(f, "client_id")
                if (entry is None or entry["redirect_uri"] != req.first(f, "redirect_uri")
                        or (client_id is not None and client_id != entry["client_id"])):
                    raise _Reject(400, body=json.dumps({"error": "invalid_grant"}),
                                  headers=[("Content-Type", "application/json")])
                user = entry["user"]
            elif grant == "refresh_token":
                refresh = self._refresh_tokens.pop(req.first(f, "refresh_token") or "", None)
                if refresh is None:
                    raise _Reject(400, body=json.dumps({"error": "invalid_grant"}),
                                  headers=[("Content-Type", "application/json")])
                user = refresh
            else:
                raise _Reject(400, body=json.dumps({"error": "unsupported_grant_type"}),
                              headers=[("Content-Type", "application/json")])
            access, refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._access_tokens[access] = (user, time.time() + self.token_lifetime)
            self._refresh_tokens[refresh_token] = user
            req.user = user
        self._changed()
        return {"access_token": access, "token_type": "Bearer",
                "expires_in": self.token_lifetime, "refresh_token": refresh_token,
                "scope": "openid email profile"}

    def _oidc_userinfo(self, req: _Request) -> dict[str, Any]:
        with self._lock:
            entry = self._access_tokens.get(req.bearer or "")
        if entry is None or entry[1] <= time.time():
            raise _Reject(401, body=json.dumps({"error": "invalid_token"}),
                          headers=[("Content-Type", "application/json"),
                                   ("WWW-Authenticate", 'Bearer error="invalid_token"')])
        req.user = entry[0]
        return {"sub": entry[0], "nickname": entry[0], "groups": ["packager"]}

    def _login_token(self, req: _Request) -> dict[str, Any]:
        with self._lock:
            entry = self._access_tokens.get(req.bearer or "")
            if entry is None or entry[1] <= time.time():
                raise _Reject(401, [("header", "Authorization", "Invalid or missing token")])
            ticket = secrets.token_hex(20)
            self._auth_tickets[ticket] = entry[0]
        self._changed()
        req.user = entry[0]
        req.set_cookies.append(f"{AUTH_COOKIE}={ticket}; Path=/; HttpOnly")
        return {"name": entry[0]}

    # ---- control API -------------------------------------------------------

    def _control(self, req: _Request) -> Any:
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
                    raise _Reject(400, [("body", "fault", str(err))]) from None
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
                raise _Reject(404, [("url", "id", "Invalid update id")]) from None
            return {"update": update.to_json(req.base_url)}
        if path == "releases" and method == "POST":
            try:
                self.add_release(SimRelease(**body))
            except (TypeError, ValueError) as err:
                raise _Reject(400, [("body", "release", str(err))]) from None
            return self.release(body["name"]).to_json()
        if path == "settings":
            if method in ("POST", "PUT"):
                self._apply_settings(body)
            return {"stable_after": self.stable_after, "auth": self.auth,
                    "kerberos": self.kerberos, "username": self.username}
        if path == "revoke-logins" and method == "POST":
            self.revoke_logins()
            return {"revoked": True}
        raise _Reject(404, [("url", "path", f"no simulator control at /_sim/{path}")])

    def _apply_settings(self, body: dict[str, Any]) -> None:
        allowed = {"stable_after", "auth", "kerberos", "username"}
        unknown = set(body) - allowed
        if unknown:
            raise _Reject(400, [("body", "settings", f"unknown settings {sorted(unknown)}")])
        with self._lock:
            old = {k: getattr(self, k) for k in allowed}
            for key, value in body.items():
                setattr(self, key, value)
            try:
                self._check_settings()
            except ValueError as err:
                for key, value in old.items():
                    setattr(self, key, value)
                raise _Reject(400, [("body", "settings", str(err))]) from None
        self._changed()


def _validate_settings(auth: Any, kerberos: Any, stable_after: Any) -> None:
    if auth not in ("none", "oidc"):
        raise ValueError("auth must be 'none' or 'oidc'")
    if kerberos not in ("accept", "reject"):
        raise ValueError("kerberos must be 'accept' or 'reject'")
    if stable_after is not None and (not isinstance(stable_after, int | float)
                                     or stable_after < 0):
        raise ValueError("stable_after must be >= 0 seconds, or None for never")


def _form_str(value: Any) -> str:
    """A JSON scalar as a form value (JSON bodies are read like form bodies)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _package(nvr: str) -> str:
    return nvr.rsplit("-", 2)[0]


__all__ = [
    "FAULT_KINDS", "OPERATIONS", "BodhiSim", "Fault", "KojiView", "SimCall", "SimRelease",
    "SimUpdate", "default_releases",
]

