"""ConfigHolder: loading, refreshing, keeping the last good state, settings snapshots."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ebs.config.holder import ConfigHolder, koji_weburl
from ebs.config.loader import ConfigError, parse_config
from ebs.config.model import KojiConfig
from ebs.config.packages import build_package_lists
from ebs.config.sources import Fetched
from ebs.config.sources import fetch as fetch_source
from ebs.contracts.batch import BatchSettings
from ebs.contracts.collector import CollectorSettings
from ebs.devstack.waiting import wait_until
from tests.config.test_config_packages import ListServer


@pytest.fixture
def lists_server() -> Iterator[ListServer]:
    server = ListServer()
    server.set_list("eln", "source", ["bash", "ipa", "kernel"])
    server.set_list("eln", "buildroot-source", ["gcc"])
    yield server
    server.close()


def config_data(content_resolver: str, **koji: Any) -> dict[str, Any]:
    return {
        "configuration": {
            "koji": {
                "trigger_tag": "f45",
                "build_target": "eln",
                "stable_tag": "eln",
                "server": "http://127.0.0.1:9/kojihub",
                **koji,
            },
            "bodhi": {"url": "http://127.0.0.1:9/", "auth": "none"},
            "control": {"exclude": ["^kernel$"]},
            "db": {"host": "x"},
        },
        "components": {
            "autopackagelist": {"view": ["eln"], "content_resolver": content_resolver},
            "overrides": {"ipa": {"upstream_name": "freeipa"}},
        },
    }


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def config_file(tmp_path: Path, lists_server: ListServer) -> Path:
    return write(tmp_path / "ebs.yaml", config_data(lists_server.url))


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_load(config_file: Path) -> None:
    holder = ConfigHolder(str(config_file))
    assert not holder.loaded
    state = holder.load()
    assert holder.loaded and holder.current() is state
    assert state.trigger_tag == "f45" == holder.trigger_tag
    assert state.version.startswith("sha256:") and holder.version == state.version
    assert state.origins == (str(config_file),)
    assert holder.eligibility.is_eligible("bash")
    assert holder.eligibility.is_eligible("freeipa")
    assert holder.eligibility.why_not("kernel") == "excluded by pattern '^kernel$'"
    assert holder.config.configuration.koji.build_target == "eln"
    assert state.koji_weburl == "http://127.0.0.1:9/koji"


def test_not_loaded_yet_is_an_error(config_file: Path) -> None:
    with pytest.raises(RuntimeError, match="not been loaded"):
        ConfigHolder(str(config_file)).current()


def test_first_load_failure_raises(tmp_path: Path, lists_server: ListServer) -> None:
    data = config_data(lists_server.url)
    data["configuration"]["control"]["exclude"] = ["("]
    holder = ConfigHolder(str(write(tmp_path / "bad.yaml", data)))
    with pytest.raises(ConfigError, match=r"configuration.control.exclude\[0\]: invalid regex"):
        holder.load()
    assert not holder.loaded
    with pytest.raises(ConfigError, match="cannot read the configuration from"):
        ConfigHolder(str(tmp_path / "missing.yaml")).load()


def test_batch_and_collector_settings(tmp_path: Path, lists_server: ListServer) -> None:
    data = config_data(lists_server.url, scratch_build=True, fail_fast=True, draft_builds=False)
    data["configuration"]["control"] = {
        "skip_tag": ["^rust$"],
        "ordering": {"^llvm$": 0, "^clang$": 1},
        "pause": True,
    }
    data["configuration"]["bodhi"].update(
        batch_size=500, max_single_batch_size=750, warn_timeout=100, stable_timeout=200
    )
    data["configuration"]["email"] = {
        "smtp_host": "localhost",
        "from": "ebs@example.org",
        "recipients": ["eln@example.org"],
    }
    data["temporal"] = {"ui_url": "http://127.0.0.1:8233"}
    data["timers"] = {
        "lull": 7,
        "task_poll": 11,
        "repo_poll": 13,
        "task_timeout": 17,
        "tag_timeout": 19,
        "stable_poll": 23,
    }
    holder = ConfigHolder(str(write(tmp_path / "ebs.yaml", data)))
    state = holder.load()

    assert holder.batch_settings() == BatchSettings(
        build_target="eln",
        stable_tag="eln",
        trigger_tag="f45",
        scratch=True,
        fail_fast=True,
        draft_builds=False,
        skip_tag=["^rust$"],
        ordering={"^llvm$": 0, "^clang$": 1},
        default_ordering=1000,
        max_batch_packages=2000,  # control.max_batch_packages' default
        bodhi_batch_size=500,
        bodhi_max_single_batch_size=750,
        bodhi_warn_timeout=100 * 60,  # warn_timeout is in minutes
        bodhi_stable_timeout=200,
        task_poll=11,
        repo_poll=13,
        task_timeout=17,
        tag_timeout=19,
        stable_poll=23,
        koji_weburl="http://127.0.0.1:9/koji",
        bodhi_url="http://127.0.0.1:9/",
        temporal_ui_url="http://127.0.0.1:8233",
        email_enabled=True,
        config_version=state.version,
    )
    assert list(holder.batch_settings().ordering) == ["^llvm$", "^clang$"]  # order kept
    assert holder.collector_settings() == CollectorSettings(
        lull=7, paused_by_config=True, config_version=state.version
    )


def test_email_disabled_in_settings(config_file: Path) -> None:
    holder = ConfigHolder(str(config_file))
    holder.load()
    assert holder.batch_settings().email_enabled is False
    assert holder.collector_settings().paused_by_config is False


def test_rawhide_resolves_through_the_injected_resolver(
    tmp_path: Path, lists_server: ListServer
) -> None:
    path = write(tmp_path / "ebs.yaml", config_data(lists_server.url, trigger_tag="rawhide"))
    answers = ["f45"]
    holder = ConfigHolder(str(path), resolve_rawhide=lambda: answers[-1])
    holder.load()
    assert holder.trigger_tag == "f45"
    assert holder.batch_settings().trigger_tag == "f45"
    assert holder.config.configuration.koji.trigger_tag == "rawhide"  # the config as written

    answers.append("f46")  # Rawhide branched: the pending release moved on
    assert holder.refresh()
    assert holder.trigger_tag == "f46"


def test_rawhide_without_resolver_fails(tmp_path: Path, lists_server: ListServer) -> None:
    path = write(tmp_path / "ebs.yaml", config_data(lists_server.url, trigger_tag="rawhide"))
    with pytest.raises(ConfigError, match="trigger_tag is 'rawhide' but no Bodhi"):
        ConfigHolder(str(path)).load()


def test_rawhide_resolution_failure_keeps_the_previous_tag(
    tmp_path: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "ebs.yaml", config_data(lists_server.url, trigger_tag="rawhide"))
    bodhi_up = [True]

    def resolve() -> str:
        if not bodhi_up[0]:
            raise ConnectionError("bodhi.example.org: connection refused")
        return "f45"

    holder = ConfigHolder(str(path), resolve_rawhide=resolve)
    before = holder.load()
    bodhi_up[0] = False
    caplog.set_level(logging.INFO)
    assert not holder.refresh()
    assert holder.current() is before and holder.trigger_tag == "f45"
    [record] = error_records(caplog)
    assert "cannot resolve trigger tag 'rawhide' via Bodhi" in record.getMessage()
    assert "connection refused" in record.getMessage()


def test_package_list_failure_keeps_the_previous_lists(
    config_file: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(str(config_file))
    before = holder.load()
    lists_server.set_list("eln", "buildroot-source", ["gcc", "zsh"], status=500)
    caplog.set_level(logging.INFO)

    assert not holder.refresh()
    assert holder.current() is before
    assert holder.eligibility.is_eligible("gcc")
    [record] = error_records(caplog)
    message = record.getMessage()
    assert message.startswith(f"configuration refresh failed, keeping version {before.version}:")
    assert "view-buildroot-source-package-name-list--view-eln.txt: HTTP 500" in message
    assert "\n" not in message
    assert "HTTP 500" in holder.last_error

    lists_server.set_list("eln", "buildroot-source", ["gcc", "zsh"])  # back, with a new package
    caplog.clear()
    assert holder.refresh()
    assert holder.eligibility.is_eligible("zsh")
    assert holder.version == before.version  # the config text did not change
    assert holder.last_error == "" and not error_records(caplog)


def test_invalid_config_on_refresh_keeps_the_previous_one(
    config_file: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(str(config_file))
    before = holder.load()
    data = config_data(lists_server.url)
    data["configuration"]["bodhi"]["batch_size"] = "lots"
    data["configuration"]["control"]["exclude"] = ["^kernel$", "("]
    write(config_file, data)
    caplog.set_level(logging.INFO)

    assert not holder.refresh()
    assert holder.current() is before
    [record] = error_records(caplog)
    message = record.getMessage()
    assert "configuration.bodhi.batch_size" in message
    assert "configuration.control.exclude[1]: invalid regex '('" in message
    assert "\n" not in message


def test_config_change_is_picked_up_and_warnings_are_not_repeated(
    config_file: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    holder = ConfigHolder(str(config_file))
    first = holder.load()
    assert holder.refresh() and holder.refresh()
    db_warnings = [r for r in caplog.records if "configuration.db is ignored" in r.getMessage()]
    assert len(db_warnings) == 1  # once per version, not once per refresh

    data = config_data(lists_server.url, trigger_tag="f46")
    data["temporal"] = {"address": "elsewhere:7233"}
    write(config_file, data)
    caplog.clear()
    assert holder.refresh()
    assert holder.version != first.version and holder.trigger_tag == "f46"
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"(was {first.version}) refreshed" in m for m in messages)
    assert any("the temporal section changed; restart" in m for m in messages)


def test_static_and_dynamic_sources_are_merged(tmp_path: Path, lists_server: ListServer) -> None:
    data = config_data(lists_server.url)
    static = {"configuration": {k: v for k, v in data["configuration"].items() if k != "control"}}
    del static["configuration"]["koji"]["trigger_tag"]
    dynamic = {
        "configuration": {"control": {"trigger_tag": "f44", "exclude": ["^gcc$"]}},
        "components": data["components"],
    }
    paths = [
        str(write(tmp_path / "static.yaml", static)),
        str(write(tmp_path / "dyn.yaml", dynamic)),
    ]
    holder = ConfigHolder(paths)
    state = holder.load()
    assert state.trigger_tag == "f44"
    assert state.origins == tuple(paths)
    assert state.version.count("sha256:") == 2 and "+" in state.version
    assert holder.eligibility.why_not("gcc") == "excluded by pattern '^gcc$'"


def test_readers_always_see_a_consistent_state(tmp_path: Path) -> None:
    """Config and package lists are swapped together, never half."""
    variants, names = [], ("alpha", "beta")
    for name in names:
        data = {
            "configuration": {
                "koji": {"trigger_tag": name, "build_target": "eln", "stable_tag": "eln"}
            },
            "components": {"overrides": {name: {}}},
        }
        variants.append(yaml.safe_dump(data))
    path = tmp_path / "ebs.yaml"
    path.write_text(variants[0])
    holder = ConfigHolder(str(path))
    holder.load()
    stop = threading.Event()
    problems: list[str] = []
    seen = ["", "", ""]  # the trigger tag each reader saw last

    def read(me: int) -> None:
        while not stop.is_set():
            state = holder.current()
            if list(state.package_lists.downstream_to_upstream) != [state.trigger_tag]:
                problems.append(f"{state.trigger_tag} with {dict(state.package_lists.origins)}")
            seen[me] = state.trigger_tag
            time.sleep(0)  # not a wait: drops the GIL (spinning readers slow refresh() 20x)

    def all_read(tag: str) -> None:
        """Every reader reads each state, not only some."""
        wait_until(lambda: all(s == tag for s in seen), 10,
                   lambda: f"every reader to see {tag} (seen {seen})", interval=0.002)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(len(seen))]
    for reader in readers:
        reader.start()
    try:
        for i in range(20):
            path.write_text(variants[i % 2])
            assert holder.refresh()
            all_read(names[i % 2])
    finally:
        stop.set()
        for reader in readers:
            reader.join(5)
    assert not problems


async def test_refresh_forever(config_file: Path) -> None:
    loop = asyncio.get_running_loop()
    enough = asyncio.Event()
    calls: list[str] = []

    def counting_fetch(spec: str) -> Fetched:  # runs in a worker thread
        calls.append(spec)
        if len(calls) >= 4:
            loop.call_soon_threadsafe(enough.set)
        return fetch_source(spec)

    holder = ConfigHolder(str(config_file), fetch=counting_fetch)
    await asyncio.to_thread(holder.load)
    task = asyncio.create_task(holder.refresh_forever(interval=0))
    await asyncio.wait_for(enough.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 4 and holder.loaded


def test_fixed_holder() -> None:
    cfg = parse_config(
        "configuration:\n  koji: {trigger_tag: f45, build_target: eln, stable_tag: eln,\n"
        "    server: 'http://127.0.0.1:3/kojihub'}\n",
        warn=lambda _: None,
    )
    lists = build_package_lists({"bash": "test"}, {})
    holder = ConfigHolder.fixed(cfg, lists, version="test-1")
    assert holder.refresh()
    assert holder.current().version == "test-1"
    assert holder.eligibility.is_eligible("bash")
    assert holder.batch_settings().config_version == "test-1"
    assert holder.batch_settings().koji_weburl == "http://127.0.0.1:3/koji"
    assert holder.trigger_tag == "f45"


@pytest.mark.parametrize(
    ("koji", "expected"),
    [
        ({"server": "http://127.0.0.1:5/kojihub"}, "http://127.0.0.1:5/koji"),
        ({"server": "http://127.0.0.1:5/kojihub/"}, "http://127.0.0.1:5/koji"),
        ({"server": "http://h/hub", "weburl": "http://h/web/"}, "http://h/web"),
        ({"server": "http://h/api"}, "http://h/api"),
        ({"profile": "no-such-profile-anywhere"}, ""),
    ],
)
def test_koji_weburl(koji: dict[str, str], expected: str) -> None:
    cfg = KojiConfig.model_validate(
        {"trigger_tag": "f45", "build_target": "eln", "stable_tag": "eln", **koji}
    )
    assert koji_weburl(cfg) == expected


def test_rawhide_resolver_given_the_config_being_loaded(
    tmp_path: Path, lists_server: ListServer
) -> None:
    data = config_data(lists_server.url, trigger_tag="rawhide")
    path = write(tmp_path / "ebs.yaml", data)
    asked: list[str] = []

    def resolve_for(cfg: Any) -> str:
        asked.append(cfg.configuration.bodhi.base_url())
        return "f45"

    holder = ConfigHolder(str(path), resolve_rawhide_for=resolve_for)
    holder.load()
    assert holder.trigger_tag == "f45"
    data["configuration"]["bodhi"]["url"] = "http://127.0.0.1:10/"
    write(path, data)
    assert holder.refresh()
    assert asked == ["http://127.0.0.1:9/", "http://127.0.0.1:10/"]  # the new config's Bodhi


def test_rawhide_resolving_to_nothing_is_an_error(tmp_path: Path, lists_server: ListServer) -> None:
    path = write(tmp_path / "ebs.yaml", config_data(lists_server.url, trigger_tag="rawhide"))
    with pytest.raises(ConfigError, match="resolved trigger tag 'rawhide' to ''"):
        ConfigHolder(str(path), resolve_rawhide=lambda: "").load()


# --- credentials in config URLs ------------------------------------------------------

TOKEN = "glpat-S3CR3T-t0ken"


def test_credentials_in_a_source_url_are_never_shown(
    config_file: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the first-load error, nor a refresh's log line and last_error, nor
    the origins and ConfigIssues of a config fetched with a token show it."""
    caplog.set_level(logging.DEBUG)
    url = f"https://ebs:{TOKEN}@config.example.org/ebs.yaml"
    good = config_file.read_text()
    texts = {"now": good}

    def fake_fetch(spec: str) -> Fetched:
        assert spec == url  # the holder fetches with the credentials
        if texts["now"] == "down":  # an error that echoes the URL as given
            raise OSError(f"cannot connect to {spec}")
        return Fetched(texts["now"], "sha256:" + str(hash(texts["now"]))[-12:], spec)

    holder = ConfigHolder(url, fetch=fake_fetch)
    state = holder.load()
    assert state.origins == ("https://***@config.example.org/ebs.yaml",)

    texts["now"] = "down"
    assert not holder.refresh()
    assert "https://***@config.example.org/ebs.yaml" in holder.last_error
    texts["now"] = good.replace("trigger_tag: f45", "trigger_tag: [f45]")
    assert not holder.refresh()
    with pytest.raises(ConfigError) as err:
        holder.load()
    assert [i.origin for i in err.value.issues] == ["https://***@config.example.org/ebs.yaml"]
    for shown in (caplog.text, holder.last_error, str(err.value), *map(str, err.value.issues)):
        assert TOKEN not in shown

    with pytest.raises(ConfigError, match=r"from https://\*\*\*@config\.example\.org") as first:
        texts["now"] = "down"
        ConfigHolder(url, fetch=fake_fetch).load()
    assert TOKEN not in str(first.value)


# --- settings only read at worker start ----------------------------------------------------


def _restart_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "restart the ebs workers" in r.getMessage()]


def test_koji_and_bodhi_connection_changes_ask_for_a_worker_restart(
    config_file: Path, lists_server: ListServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    holder = ConfigHolder(str(config_file))
    holder.load()

    # a change the next batch picks up by itself: no restart needed
    data = config_data(lists_server.url, trigger_tag="f46")
    data["configuration"]["bodhi"]["batch_size"] = 10
    write(config_file, data)
    assert holder.refresh()
    assert _restart_warnings(caplog) == []

    data = config_data(lists_server.url, trigger_tag="f46",
                       server="http://127.0.0.1:10/kojihub", username="eln-bot",
                       auth={"method": "kerberos", "principal": "ebs@EXAMPLE.ORG",
                             "keytab": "/run/secrets/ebs/koji/koji.keytab"})
    data["configuration"]["bodhi"] = {"url": "http://127.0.0.1:11/", "auth": "kerberos",
                                      "batch_size": 10}
    write(config_file, data)
    caplog.clear()
    assert holder.refresh()
    (message,) = _restart_warnings(caplog)
    assert message == (
        "configuration: configuration.koji.server, configuration.koji.auth, "
        "configuration.koji.username, configuration.bodhi.url, configuration.bodhi.auth "
        "changed; the worker connects to Koji and Bodhi only at start: restart the ebs "
        "workers to apply it"
    )
    assert "ebs@EXAMPLE.ORG" not in message and "127.0.0.1:10" not in message

    # once per change, not on every refresh after it
    caplog.clear()
    assert holder.refresh()
    assert _restart_warnings(caplog) == []


@pytest.mark.parametrize(
    ("koji", "bodhi", "keys"),
    [
        ({"profile": "stg"}, {}, ["configuration.koji.profile"]),
        ({"multicall_chunk": 100}, {}, ["configuration.koji.multicall_chunk"]),
        ({}, {"url": None, "staging": True}, ["configuration.bodhi.url"]),
        ({}, {"warn_timeout": 60}, []),
        ({"build_target": "eln-extras", "fail_fast": True}, {}, []),
    ],
)
def test_start_only_changes(koji: dict[str, Any], bodhi: dict[str, Any], keys: list[str]) -> None:
    from ebs.config.holder import start_only_changes

    base = config_data("https://tiny.distro.builders")
    before = parse_config(yaml.safe_dump(base))
    changed = config_data("https://tiny.distro.builders", **koji)
    changed["configuration"]["bodhi"].update(bodhi)
    changed["configuration"]["bodhi"] = {
        k: v for k, v in changed["configuration"]["bodhi"].items() if v is not None
    }
    after = parse_config(yaml.safe_dump(changed))
    assert start_only_changes(before, after) == keys
