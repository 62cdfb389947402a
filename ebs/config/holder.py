"""The running process's configuration: config, package lists, resolved trigger
tag and version, swapped whole on each successful refresh.

A refresh that fails in any way (source unreachable, invalid YAML, a package
list or Bodhi down) keeps everything as it was and logs one line saying why;
only the first load fails hard, so a broken config stops ebs at start and never
afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ebs.config.eligibility import Eligibility
from ebs.config.loader import ConfigError, parse_documents
from ebs.config.model import EbsConfig, KojiConfig
from ebs.config.packages import HttpGet, PackageLists, fetch_package_lists, requests_get_text
from ebs.config.rules import DEFAULT_ORDERING
from ebs.config.sources import Fetched, redact
from ebs.config.sources import fetch as fetch_source
from ebs.contracts.batch import BatchSettings
from ebs.contracts.collector import CollectorSettings

logger = logging.getLogger(__name__)

RAWHIDE = "rawhide"
FetchSource = Callable[[str], Fetched]
_FEDORA_WEBURLS = {
    "koji": "https://koji.fedoraproject.org/koji",
    "stg": "https://koji.stg.fedoraproject.org/koji",
}
# What the worker's Koji and Bodhi adapters take from the config once, at start
# (ebs.worker): a refresh that changes one of them needs a worker restart.
# bodhi.url is compared as the effective server, so it covers bodhi.staging.
START_ONLY_KEYS: tuple[tuple[str, Callable[[EbsConfig], object]], ...] = (
    ("configuration.koji.server", lambda c: c.configuration.koji.server),
    ("configuration.koji.profile", lambda c: c.configuration.koji.profile),
    ("configuration.koji.auth", lambda c: c.configuration.koji.auth),
    ("configuration.koji.username", lambda c: c.configuration.koji.username),
    ("configuration.koji.multicall_chunk", lambda c: c.configuration.koji.multicall_chunk),
    ("configuration.bodhi.url", lambda c: c.configuration.bodhi.base_url()),
    ("configuration.bodhi.auth", lambda c: c.configuration.bodhi.auth),
)


def start_only_changes(previous: EbsConfig, current: EbsConfig) -> list[str]:
    """The START_ONLY_KEYS whose value differs between two configs."""
    return [key for key, get in START_ONLY_KEYS if get(previous) != get(current)]


@dataclass(frozen=True)
class ConfigState:
    """One consistent snapshot; never mutated, replaced whole."""

    config: EbsConfig
    package_lists: PackageLists
    eligibility: Eligibility
    trigger_tag: str  # resolved: never "rawhide"
    version: str  # of the config text(s): git commit or content hash
    origins: tuple[str, ...] = ()
    koji_weburl: str = ""
    loaded_at: float = 0.0  # epoch seconds of the fetch that produced it


def koji_weburl(koji: KojiConfig) -> str:
    """The Koji web UI for links in mails: explicit, from the hub URL, from the
    local koji profile, or Fedora's for its own profiles."""
    if koji.weburl:
        return koji.weburl.rstrip("/")
    if koji.server:
        base = koji.server.rstrip("/")
        return base[: -len("hub")] if base.endswith("/kojihub") else base
    try:
        import koji as kojilib

        weburl = kojilib.read_config(koji.profile).get("weburl")
        if weburl:
            return str(weburl).rstrip("/")
    except Exception as e:  # no such profile on this host
        logger.debug("koji profile %r has no weburl: %s", koji.profile, e)
    return _FEDORA_WEBURLS.get(koji.profile, "")


def _one_line(error: BaseException) -> str:
    """The error on one line, credentials in any URL it names redacted."""
    text = str(error) or type(error).__name__
    return redact("; ".join(part.strip() for part in text.splitlines() if part.strip()))


class ConfigHolder:
    """Thread-safe holder of the current ConfigState.

    `specs` are config sources for ebs.config.sources.fetch (path, URL or
    git+URL#ref[:path]); several are merged in order, as the original's static
    file plus its dynamic config repository. `resolve_rawhide` returns the
    Rawhide stable tag from Bodhi (ebs.bodhi.adapter's rawhide_stable_tag) and
    is needed only when koji.trigger_tag is "rawhide"; `resolve_rawhide_for`
    does the same given the config being loaded, for a Bodhi client built from
    that config's own bodhi section (it wins when both are given).

    Blocking calls (fetches, HTTP): call load()/refresh() from a thread, or use
    refresh_forever() from asyncio.
    """

    def __init__(
        self,
        specs: str | Sequence[str],
        *,
        resolve_rawhide: Callable[[], str] | None = None,
        resolve_rawhide_for: Callable[[EbsConfig], str] | None = None,
        http_get: HttpGet = requests_get_text,
        fetch: FetchSource = fetch_source,
    ) -> None:
        self.specs = (specs,) if isinstance(specs, str) else tuple(specs)
        self._resolve_rawhide = resolve_rawhide
        self._resolve_rawhide_for = resolve_rawhide_for
        self._http_get = http_get
        self._fetch = fetch
        self._state: ConfigState | None = None
        self._lock = threading.Lock()  # guards _state and the fields below
        self._refreshing = threading.Lock()  # one refresh at a time
        self.last_error: str = ""
        self.last_attempt_at: float = 0.0

    @classmethod
    def fixed(
        cls,
        config: EbsConfig,
        package_lists: PackageLists | None = None,
        *,
        trigger_tag: str | None = None,
        version: str = "fixed",
    ) -> ConfigHolder:
        """A holder for a config built in code (tests, `ebs dev`); refresh() keeps it."""
        holder = cls(())
        lists = package_lists or PackageLists()
        holder._state = ConfigState(
            config=config,
            package_lists=lists,
            eligibility=Eligibility(lists, config.configuration.control),
            trigger_tag=trigger_tag or config.configuration.koji.trigger_tag,
            version=version,
            koji_weburl=koji_weburl(config.configuration.koji),
            loaded_at=time.time(),
        )
        return holder

    # --- reading -------------------------------------------------------------

    def current(self) -> ConfigState:
        with self._lock:
            state = self._state
        if state is None:
            raise RuntimeError("the configuration has not been loaded yet (call load())")
        return state

    @property
    def loaded(self) -> bool:
        with self._lock:
            return self._state is not None

    @property
    def config(self) -> EbsConfig:
        return self.current().config

    @property
    def eligibility(self) -> Eligibility:
        return self.current().eligibility

    @property
    def trigger_tag(self) -> str:
        return self.current().trigger_tag

    @property
    def version(self) -> str:
        return self.current().version

    # --- loading -------------------------------------------------------------

    def load(self) -> ConfigState:
        """Fetch, validate and resolve everything; ConfigError if anything fails.

        The state is replaced only on success.
        """
        with self._refreshing:
            self.last_attempt_at = time.time()
            previous = self._state
            warnings: list[str] = []
            state = self._build(warnings)
            if previous is None or previous.version != state.version:
                for message in warnings:
                    logger.warning("configuration %s: %s", state.version, message)
            self._announce(previous, state)
            with self._lock:
                self._state = state
                self.last_error = ""
            return state

    def refresh(self) -> bool:
        """Reload; on failure keep the previous state, log one line, return False."""
        if not self.specs:
            return True
        try:
            self.load()
        except Exception as e:
            reason = _one_line(e)
            with self._lock:
                self.last_error = reason
                kept = self._state.version if self._state else "none"
            logger.error("configuration refresh failed, keeping version %s: %s", kept, reason)
            return False
        return True

    async def refresh_forever(self, interval: float | None = None) -> None:
        """Refresh every `interval` seconds (default: timers.config_refresh of
        the current config) until cancelled."""
        while True:
            wait = interval if interval is not None else self.current().config.timers.config_refresh
            await asyncio.sleep(wait)
            await asyncio.to_thread(self.refresh)

    def _build(self, warnings: list[str]) -> ConfigState:
        fetched = []
        for spec in self.specs:
            try:
                fetched.append(self._fetch(spec))
            except Exception as e:
                raise ConfigError(
                    f"cannot read the configuration from {redact(spec)}: {_one_line(e)}"
                ) from e
        config = parse_documents([(f.text, f.origin) for f in fetched], warn=warnings.append)
        components = config.components
        try:
            lists = fetch_package_lists(
                components.autopackagelist, components.overrides, self._http_get
            )
        except Exception as e:
            raise ConfigError(f"cannot fetch the package lists: {_one_line(e)}") from e
        trigger_tag = self._resolve_trigger_tag(config)
        return ConfigState(
            config=config,
            package_lists=lists,
            eligibility=Eligibility(lists, config.configuration.control),
            trigger_tag=trigger_tag,
            version="+".join(f.version for f in fetched),
            origins=tuple(redact(f.origin) for f in fetched),
            koji_weburl=koji_weburl(config.configuration.koji),
            loaded_at=time.time(),
        )

    def _resolve_trigger_tag(self, config: EbsConfig) -> str:
        tag = config.configuration.koji.trigger_tag
        if tag != RAWHIDE:
            return tag
        resolve_for, resolve = self._resolve_rawhide_for, self._resolve_rawhide
        if resolve_for is None and resolve is None:
            raise ConfigError(
                "configuration.koji.trigger_tag is 'rawhide' but no Bodhi is available to "
                "resolve it"
            )
        resolved = ""
        try:
            if resolve_for is not None:
                resolved = resolve_for(config)
            elif resolve is not None:
                resolved = resolve()
        except Exception as e:
            raise ConfigError(
                f"cannot resolve trigger tag 'rawhide' via Bodhi: {_one_line(e)}"
            ) from e
        if not resolved or resolved == RAWHIDE:
            raise ConfigError(f"Bodhi resolved trigger tag 'rawhide' to {resolved!r}")
        return resolved

    @staticmethod
    def _announce(previous: ConfigState | None, state: ConfigState) -> None:
        summary = (
            f"{len(state.package_lists)} components, trigger tag {state.trigger_tag}, "
            f"from {', '.join(state.origins)}"
        )
        if previous is None:
            logger.info("configuration %s loaded: %s", state.version, summary)
            return
        changed = (
            previous.version != state.version
            or previous.trigger_tag != state.trigger_tag
            or previous.package_lists != state.package_lists
        )
        if changed:
            logger.info(
                "configuration %s (was %s) refreshed: %s", state.version, previous.version, summary
            )
        else:
            logger.debug("configuration %s unchanged", state.version)
        if previous.config.temporal != state.config.temporal:
            logger.warning("configuration: the temporal section changed; restart ebs to apply it")
        restart_keys = start_only_changes(previous.config, state.config)
        if restart_keys:
            logger.warning(
                "configuration: %s changed; the worker connects to Koji and Bodhi only at "
                "start: restart the ebs workers to apply it",
                ", ".join(restart_keys),
            )

    # --- snapshots for the workflows ----------------------------------------------

    def batch_settings(self) -> BatchSettings:
        """The settings a new batch runs with (a running batch keeps its own)."""
        state = self.current()
        cnf = state.config.configuration
        timers = state.config.timers
        return BatchSettings(
            build_target=cnf.koji.build_target,
            stable_tag=cnf.koji.stable_tag,
            trigger_tag=state.trigger_tag,
            scratch=cnf.koji.scratch_build,
            fail_fast=cnf.koji.fail_fast,
            draft_builds=cnf.koji.draft_builds,
            wait_repo=cnf.koji.wait_repo,
            skip_tag=list(cnf.control.skip_tag),
            ordering=dict(cnf.control.ordering),
            default_ordering=DEFAULT_ORDERING,
            max_batch_packages=cnf.control.max_batch_packages,
            bodhi_batch_size=cnf.bodhi.batch_size,
            bodhi_max_single_batch_size=cnf.bodhi.single_update_limit(),
            bodhi_warn_timeout=cnf.bodhi.warn_seconds(),
            bodhi_stable_timeout=cnf.bodhi.stable_timeout,
            task_poll=timers.task_poll,
            repo_poll=timers.repo_poll,
            task_timeout=timers.task_timeout,
            tag_timeout=timers.tag_timeout,
            stable_poll=timers.stable_poll,
            koji_weburl=state.koji_weburl,
            bodhi_url=cnf.bodhi.base_url(),
            temporal_ui_url=state.config.temporal.ui_url,
            email_enabled=cnf.email is not None,
            config_version=state.version,
        )

    def collector_settings(self) -> CollectorSettings:
        state = self.current()
        return CollectorSettings(
            lull=state.config.timers.lull,
            paused_by_config=state.config.configuration.control.pause,
            config_version=state.version,
        )
