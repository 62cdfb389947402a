"""Bodhi's REST API as the simulator answers it: releases, CSRF, updates."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from .core import BodhiCore
from .model import (
    AUTH_COOKIE,
    RELEASE_STATES,
    SESSION_COOKIE,
    SEVERITIES,
    SUGGESTIONS,
    UPDATE_STATUSES,
    UPDATE_TYPES,
    SimRelease,
    SimUpdate,
)
from .request import Reject, Request, package_of, page_of, paging, parse_bool

log = logging.getLogger(__name__)


class BodhiApi(BodhiCore):
    # ---- releases ----------------------------------------------------------

    def _list_releases(self, req: Request) -> dict[str, Any]:
        page, rows = paging(req)
        errors = []
        states = req.listed(req.params, "state")
        for state in states or []:
            if state not in RELEASE_STATES:
                errors.append(("querystring", "state.0",
                               f'"{state}" is not one of {", ".join(RELEASE_STATES)}'))
        if errors:
            raise Reject(400, errors)
        name = req.first(req.params, "name")
        ids = req.listed(req.params, "ids")
        exclude_archived = parse_bool(req.first(req.params, "exclude_archived"), False)
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
        return page_of([r.to_json() for r in found], "releases", page, rows)

    def _get_release(self, req: Request) -> dict[str, Any]:
        name = req.params["name"][0]
        release = self._find_release(name)
        if release is None:
            raise Reject(404, [("body", "name", "No such release")])
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

    def _session_id(self, req: Request) -> str:
        session = req.cookies.get(SESSION_COOKIE)
        if not session:
            session = secrets.token_hex(16)
            req.cookies[SESSION_COOKIE] = session
            req.set_cookies.append(f"{SESSION_COOKIE}={session}; Path=/; HttpOnly")
        return session

    def _csrf_for(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha1).hexdigest()

    def _csrf(self, req: Request) -> dict[str, Any]:
        return {"csrf_token": self._csrf_for(self._session_id(req))}

    def _identify(self, req: Request) -> str | None:
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

    def _create_update(self, req: Request) -> dict[str, Any]:
        user = self._identify(req)
        if user is None and self.auth != "none":
            raise Reject(403, [("body", "user", "You must be logged in to create updates.")])
        req.user = user or "anonymous"
        token = req.first(req.form, "csrf_token")
        session = req.cookies.get(SESSION_COOKIE)
        if not token:
            raise Reject(400, [("body", "csrf_token", "Required")])
        if not session or not hmac.compare_digest(token, self._csrf_for(session)):
            raise Reject(400, [("body", "csrf_token", "CSRF tokens do not match")])
        values = self._validate_update_form(req)
        with self._lock:
            if values["edited"]:
                raise Reject(400, [("body", "edited", "Editing updates is not simulated")])
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

    def _validate_update_form(self, req: Request) -> dict[str, Any]:
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
                values[name] = parse_bool(req.first(form, name), default)
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
            raise Reject(400, errors)
        if values["type"] == "security" and values["severity"] == "unspecified":
            raise Reject(400, [("body", "severity",
                                 "Must specify severity for a security update")])
        if not values["from_tag"] and not values["builds"]:
            raise Reject(400, [("body", "builds,from_tag",
                                 "You must specify either builds or from_tag.")])
        return values

    def _builds_from_tag(self, tag: str, builds: list[str]) -> dict[str, list[str]]:
        if any(u.from_tag == tag for u in self._updates.values()):
            raise Reject(400, [("body", "from_tag", "Update already exists using this side tag")])
        if not self._koji.tag_exists(tag):
            raise Reject(400, [("body", "from_tag", "The supplied from_tag doesn't exist.")])
        release = self._release_of_side_tag(tag)
        if release is None:
            raise Reject(400, [("body", "from_tag", "The supplied tag is not a side tag.")])
        tagged = self._koji.tagged_nvrs(tag)
        if builds:
            missing = [nvr for nvr in builds if nvr not in tagged]
            if missing:
                raise Reject(400, [("body", "builds", f"Invalid tag: {nvr} not tagged with "
                                     f"any of the following tags {[tag]}") for nvr in missing])
            return {release.name: list(builds)}
        if not tagged:
            raise Reject(400, [("body", "from_tag",
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
            raise Reject(400, errors)
        for name in by_release:
            if not self._releases[name].composed_by_bodhi:
                raise Reject(400, [("body", "builds",
                                     "Cannot manually create updates for a Release which is "
                                     "not composed by Bodhi.\nRead the 'Automatic updates' page "
                                     "in Bodhi docs about this error.")])
        return by_release

    def _check_builds_unused(self, nvrs: list[str]) -> None:
        used = {nvr: u.alias for u in self._updates.values() for nvr in u.builds}
        errors = [("body", "builds", f"Update for {nvr} already exists")
                  for nvr in nvrs if nvr in used]
        if errors:
            raise Reject(400, errors)

    def _new_alias(self, release: SimRelease) -> str:
        while True:
            alias = f"{release.id_prefix}-{datetime.now(UTC).year}-{self._rng.getrandbits(40):010x}"
            if alias not in self._updates:
                return alias

    def _list_updates(self, req: Request) -> dict[str, Any]:
        page, rows = paging(req)
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
                             else parse_bool(req.first(p, "from_side_tag"), False))
        except ValueError as err:
            errors.append(("querystring", "from_side_tag", str(err)))
            from_side_tag = None
        if errors:
            raise Reject(400, errors)
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
            found = [u for u in found if {package_of(n) for n in u.builds} & set(packages)]
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
        answer = page_of([u.to_json(req.base_url) for u in found], "updates", page, rows)
        # What real Bodhi's query_updates adds for its web UI.
        answer.update(chrome=req.first(p, "chrome"), display_user=False, display_request=True,
                      package=None)
        return answer

    def _get_update(self, req: Request) -> dict[str, Any]:
        alias = req.params["alias"][0]
        with self._lock:
            update = self._updates.get(alias)
        if update is None:
            raise Reject(404, [("url", "id", "Invalid update id")])
        user = self._identify(req)
        return {"update": update.to_json(req.base_url),
                "can_edit": user is not None and user == update.user, "ci_allowed": False}
