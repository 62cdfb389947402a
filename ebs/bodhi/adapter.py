"""The one module through which ebs talks to Bodhi.

``BodhiAdapter`` wraps bodhi-client's ``BodhiClient`` and returns the
activity types of :mod:`ebs.contracts.bodhi`.  Errors come in two kinds:

- :class:`BodhiPermanentError` (and :class:`BodhiAuthError`): retrying cannot
  help; Bodhi rejected the request (4xx, with Bodhi's own error text) or the
  service could not log in.
- anything else (``requests`` connection errors and timeouts,
  :class:`BodhiTransientError` for 5xx answers and garbled replies): the
  caller (Temporal) retries with backoff.

Authentication, as Fedora's Bodhi expects it today: an OpenID Connect access
token from Ipsilon (id.fedoraproject.org), exchanged at Bodhi's
``oidc/login-token`` for a session cookie.  A service has no browser, so the
token is obtained the way bodhi-client's Kerberos login does it, and the way
the original ELNBuildSync does (``BodhiClient.ensure_auth()`` with a keytab in
its container): GET the authorization URL with SPNEGO (``requests-kerberos``),
read the code Ipsilon puts in the page title (out-of-band mode), exchange it at
the token endpoint.  Tokens (with the refresh token) are kept in
``token_store`` so restarts do not log in again.  Without Kerberos (tests, small
sites), ``auth: {method: token-file, token_file: PATH}`` uses a token store
seeded beforehand by a bodhi-client login; ebs only refreshes it, never logs in.
The Kerberos credential comes from the environment: a ticket cache
(``kinit -kt``) or a client keytab named by ``KRB5_CLIENT_KTNAME``.  Unlike
bodhi-client, ebs never falls back to a browser login: a failed Kerberos login is
a :class:`BodhiAuthError`.

Not testable here (no Kerberos KDC, no Ipsilon): the SPNEGO handshake itself.
The tests drive everything around it against the simulator's OIDC provider,
whose authorization endpoint answers as Ipsilon does once Kerberos succeeded
(or 401 Negotiate, to exercise the failure path).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.oidc.discovery.well_known import get_well_known_url
from bodhi.client.bindings import BodhiClient, BodhiClientException
from bodhi.client.constants import CLIENT_ID, IDP, SCOPE, STG_CLIENT_ID, STG_IDP
from bodhi.client.oidcclient import JSONStorage, OIDCClient, OIDCClientError
from munch import munchify, unmunchify

from ebs.bodhi.errors import (
    BodhiAuthError,
    BodhiPermanentError,
    BodhiTransientError,
    HTTPFailure,
    classify,
)
from ebs.config.model import STAGING_BODHI_URL, BodhiConfig, EbsConfig
from ebs.contracts.bodhi import UpdateInfo, UpdateRequest
from ebs.metrics import BODHI_CALLS

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # seconds per HTTP request
_ROWS_PER_PAGE = 100
_UPDATE_EXISTS = "Update already exists using this side tag"


class _ServiceOIDCClient(OIDCClient):
    """bodhi-client's OIDC client, logging in with Kerberos only (never a browser)."""

    def __init__(self, client_id: str, scope: str, id_provider: str, storage: JSONStorage,
                 *, timeout: float, token_file: str | None = None) -> None:
        self._timeout = timeout
        self._token_file = token_file  # auth token-file: never log in, only refresh
        super().__init__(client_id, scope, id_provider, storage)
        self.client.default_timeout = timeout

    def _get_provider_metadata(self, id_provider: str) -> None:
        # As bodhi-client's, plus a timeout and a permanent error for a wrong URL.
        url = get_well_known_url(id_provider, external=True)
        response = requests.get(url, timeout=self._timeout)
        if 400 <= response.status_code < 500:
            raise BodhiPermanentError(
                f"OIDC discovery at {url} answered HTTP {response.status_code}; "
                "check bodhi.auth.id_provider")
        if not response.ok:
            raise OIDCClientError(f"HTTP {response.status_code} from {url}")
        self.metadata = response.json()

    def login(self, use_kerberos: bool = False) -> None:
        if self._token_file is not None:
            raise BodhiAuthError(
                f"no usable Bodhi token in {self._token_file} (bodhi.auth method "
                "'token-file'): seed it again with a bodhi-client login "
                f"(oidc_storage_path={self._token_file}); ebs does not log in by itself")
        authorization_endpoint = self.metadata["authorization_endpoint"]
        uri, _state = self.client.create_authorization_url(authorization_endpoint)
        BODHI_CALLS.labels(operation="oidc_login").inc()
        try:
            self.login_with_kerberos(uri)
        except (OIDCClientError, OAuthError) as err:
            raise BodhiAuthError(
                f"Kerberos login to {self.id_provider} failed: {err}. ebs needs a Kerberos "
                "ticket (kinit -kt KEYTAB PRINCIPAL) or KRB5_CLIENT_KTNAME pointing at a "
                "client keytab"
            ) from err
        if not self.is_logged_in:
            raise BodhiAuthError(f"Kerberos login to {self.id_provider} returned no token")

    def login_with_browser(self, uri: str) -> None:
        raise BodhiAuthError("ebs cannot log in to Bodhi with a browser; use Kerberos")


class _ServiceBodhiClient(BodhiClient):  # type: ignore[misc]
    """BodhiClient for a service: request timeouts, anonymous mode, HTTP status
    kept on errors (bodhi-client folds it into the message text)."""

    def __init__(self, base_url: str, *, anonymous: bool, client_id: str, id_provider: str,
                 token_store: str | None, timeout: float, token_only: bool = False) -> None:
        self._anonymous = anonymous
        self._token_only = token_only
        self._timeout = timeout
        self._http = requests.Session()
        super().__init__(base_url=base_url, client_id=client_id, id_provider=id_provider,
                         oidc_storage_path=token_store)

    def _build_oidc_client(self, client_id: str, id_provider: str) -> None:
        self.oidc: _ServiceOIDCClient | None = None
        if self._anonymous:
            return
        BODHI_CALLS.labels(operation="oidc_discovery").inc()
        self.oidc = _ServiceOIDCClient(client_id, SCOPE, id_provider.rstrip("/"),
                                       JSONStorage(self.oidc_storage_path),
                                       timeout=self._timeout,
                                       token_file=self.oidc_storage_path
                                       if self._token_only else None)

    def _idp(self) -> _ServiceOIDCClient:
        if self.oidc is None:
            raise BodhiAuthError("Bodhi auth is 'none'; this request needs a login")
        oidc: _ServiceOIDCClient = self.oidc
        return oidc

    def ensure_auth(self) -> None:
        """Log in if needed; then get Bodhi's session cookie for the token (once
        more after a fresh login if Bodhi refuses a stored token)."""
        if self._anonymous:
            return
        oidc = self._idp()
        oidc.ensure_auth(use_kerberos=True)
        if oidc.has_cookie("auth_tkt", domain=urlsplit(self.base_url).hostname):
            return
        for attempt in (1, 2):
            BODHI_CALLS.labels(operation="login_token").inc()
            resp = oidc.request("GET", f"{self.base_url}oidc/login-token")
            if resp.ok:
                return
            failure = HTTPFailure(resp.status_code, resp.text)
            if resp.status_code in (401, 403) and attempt == 1 and not self._token_only:
                self.clear_auth()
                oidc.login(use_kerberos=True)
                continue
            if resp.status_code in (401, 403):
                raise BodhiAuthError(
                    f"Bodhi refused {'the stored' if self._token_only else 'a fresh'} "
                    "OIDC token at oidc/login-token "
                    f"(HTTP {resp.status_code}): {failure.describe()}"
                )
            raise failure

    def clear_auth(self) -> None:
        self.csrf_token = ""
        self._http.cookies.clear()
        if self.oidc is not None:
            self.oidc.clear_auth()

    def send_request(self, url: str, verb: str = "GET", **kwargs: Any) -> Any:
        auth = kwargs.pop("auth", False)
        kwargs.setdefault("timeout", self._timeout)
        BODHI_CALLS.labels(operation=_operation(verb, url)).inc()
        if auth and not self._anonymous:
            self.ensure_auth()
            try:
                response = self._idp().request(verb, f"{self.base_url}{url}", **kwargs)
            except OIDCClientError as err:  # bodhi-client's wrapping of ConnectionError
                raise requests.ConnectionError(str(err)) from err
        else:
            response = self._http.request(verb, f"{self.base_url}{url}", **kwargs)
        if not response.ok:
            raise HTTPFailure(response.status_code, response.text)
        try:
            return munchify(response.json())
        except ValueError:
            raise BodhiTransientError(
                f"Bodhi answered {verb} {url} with something other than JSON: "
                f"{response.text[:200]!r}"
            ) from None


def _operation(verb: str, url: str) -> str:
    path = url.split("?", 1)[0].strip("/")
    if path == "updates":
        return "create_update" if verb == "POST" else "list_updates"
    if path.startswith("updates/"):
        return "get_update"
    return path.split("/", 1)[0] or "root"


class BodhiAdapter:
    """ebs's view of Bodhi: releases, and the updates ebs files from errata side tags.

    Thread-safe (calls are serialised; Bodhi calls are rare).  The Bodhi
    client, and any login, is set up on first use, not at construction.
    """

    def __init__(
        self,
        config: BodhiConfig,
        *,
        url: str | None = None,
        staging: bool | None = None,
        token_store: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if url is not None or staging is not None:
            changes: dict[str, Any] = {}
            if url is not None:
                changes["url"] = url
            if staging is not None:
                changes["staging"] = staging
            config = BodhiConfig.model_validate({**config.model_dump(), **changes})
        self._config = config
        base = config.base_url()
        self.base_url = base if base.endswith("/") else base + "/"
        is_staging = bool(config.staging) or self.base_url == STAGING_BODHI_URL
        auth = config.auth
        self._anonymous = auth.method == "none"
        self._client_id = auth.client_id or (STG_CLIENT_ID if is_staging else CLIENT_ID)
        self._id_provider = auth.id_provider or (STG_IDP if is_staging else IDP)
        self._token_only = auth.method == "token-file"
        self._token_store = token_store or auth.token_file or os.path.join(
            os.path.expanduser("~"), ".config", "bodhi", "client.json")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._client: _ServiceBodhiClient | None = None

    # ---- releases ----------------------------------------------------------

    def pending_releases(self) -> list[dict[str, Any]]:
        """Every Bodhi release in state ``pending`` (Rawhide, ELN, ...)."""
        with self._session("list pending releases") as client:
            releases: list[dict[str, Any]] = []
            page = 1
            while True:
                answer = client.send_request(
                    "releases/", verb="GET",
                    params={"state": "pending", "page": page, "rows_per_page": _ROWS_PER_PAGE})
                releases.extend(unmunchify(answer.get("releases", [])))
                if page >= int(answer.get("pages") or 1):
                    return releases
                page += 1

    def rawhide_stable_tag(self) -> str:
        """The stable tag (e.g. ``f45``) of the pending release on the ``rawhide`` branch."""
        releases = self.pending_releases()
        for release in releases:
            if release.get("branch") == "rawhide":
                tag = release.get("stable_tag")
                if not tag:
                    raise BodhiPermanentError(
                        f"Bodhi release {release.get('name')} (branch rawhide) has no stable_tag")
                return str(tag)
        seen = ", ".join(f"{r.get('name')} (branch {r.get('branch')})" for r in releases)
        raise BodhiPermanentError(
            f"no pending Bodhi release at {self.base_url} is on branch 'rawhide' "
            f"(pending: {seen or 'none'}); cannot resolve trigger_tag 'rawhide'"
        )

    # ---- updates -----------------------------------------------------------

    def file_update(self, req: UpdateRequest) -> UpdateInfo:
        """Create the update for an errata side tag, or find the one an earlier
        try created: Bodhi allows one update per side tag."""
        existing = self.update_for_side_tag(req.from_tag)
        if existing is not None:
            log.info("Bodhi update %s already exists for %s (%s)", existing.alias,
                     req.from_tag, req.key)
            return existing
        form = {
            "from_tag": req.from_tag,
            "notes": req.notes,
            "type": req.update_type,
            "severity": "unspecified",
            "suggest": "unspecified",
            "request": "testing",
            "close_bugs": False,
            "autokarma": True,
            "autotime": True,
        }
        try:
            with self._session(f"file an update for {req.from_tag}") as client:
                answer = self._save(client, form)
        except BodhiPermanentError as err:
            if _UPDATE_EXISTS in str(err):
                # Created by a try whose answer was lost, between our query and now.
                found = self.update_for_side_tag(req.from_tag)
                if found is not None:
                    return found
            raise
        update = _created_update(answer, req.from_tag)
        log.info("filed Bodhi update %s for %s (%s)", update["alias"], req.from_tag, req.key)
        return self._info(update)

    def get_update(self, alias: str) -> UpdateInfo:
        with self._session(f"get update {alias}") as client:
            answer = client.send_request(f"updates/{alias}", verb="GET")
        return self._info(answer["update"])

    def update_url(self, alias: str) -> str:
        return f"{self.base_url}updates/{alias}"

    # ---- internals ---------------------------------------------------------

    def update_for_side_tag(self, tag: str) -> UpdateInfo | None:
        """The update filed from this side tag, if any."""
        with self._session(f"look up the update for {tag}") as client:
            answer = client.send_request(
                "updates/", verb="GET", params={"from_side_tag_name": tag, "rows_per_page": 20})
        # Checked here too: a Bodhi that ignored the filter must not make us
        # reuse some other update.
        for update in answer.get("updates", []):
            if update.get("from_tag") == tag:
                return self._info(update, reused=True)
        return None

    def _save(self, client: _ServiceBodhiClient, form: dict[str, Any]) -> Any:
        """POST the update; once more with a fresh CSRF token (and login) if
        Bodhi says the session behind the old one is gone."""
        for attempt in (1, 2):
            try:
                return client.save(**form)
            except HTTPFailure as err:
                stale = err.status == 403 or any(
                    e.get("name") == "csrf_token" for e in err.bodhi_errors())
                if attempt == 1 and stale:
                    log.info("Bodhi refused the session (%s); logging in again", err.describe())
                    client.clear_auth()
                    continue
                raise
        raise AssertionError("unreachable")

    def _info(self, update: Any, *, reused: bool = False) -> UpdateInfo:
        alias = str(update["alias"])
        return UpdateInfo(alias=alias, url=str(update.get("url") or self.update_url(alias)),
                          status=str(update.get("status") or ""), reused=reused)

    @contextmanager
    def _session(self, what: str) -> Iterator[_ServiceBodhiClient]:
        """The shared client, with errors sorted into permanent and transient."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = _ServiceBodhiClient(
                        self.base_url, anonymous=self._anonymous, client_id=self._client_id,
                        id_provider=self._id_provider, token_store=self._token_store,
                        timeout=self._timeout, token_only=self._token_only)
                yield self._client
            except HTTPFailure as err:
                raise classify(err, what, self.base_url) from None
            except OIDCClientError as err:
                raise BodhiTransientError(
                    f"cannot {what}: OIDC provider {self._id_provider} failed: {err}") from err
            except BodhiClientException as err:
                # An error list in a 200 answer (bodhi-client's errorhandled).
                raise BodhiPermanentError(f"Bodhi refused to {what}: {err}") from err


def _created_update(answer: Any, from_tag: str) -> Any:
    """The update in POST updates/'s answer: the update itself, or one of
    ``updates`` when Bodhi split the request per release."""
    if "alias" in answer:
        return answer
    updates = answer.get("updates") or []
    for update in updates:
        if update.get("from_tag") == from_tag:
            return update
    if updates:
        return updates[0]
    raise BodhiTransientError(f"Bodhi's answer to creating an update names no update: {answer}")


class BodhiFor:
    """The BodhiAdapter for a config's bodhi section, rebuilt only when that
    section changes: resolving trigger tag 'rawhide' on a refresh uses the
    config being loaded (the worker and the bridge both)."""

    def __init__(self) -> None:
        self._section: BodhiConfig | None = None
        self._adapter: BodhiAdapter | None = None

    def __call__(self, cfg: EbsConfig) -> BodhiAdapter:
        section = cfg.configuration.bodhi
        if self._adapter is None or section != self._section:
            self._section, self._adapter = section, BodhiAdapter(section)
        return self._adapter
