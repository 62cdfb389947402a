"""Loading and validating the YAML configuration (ebs.config.loader / model)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from ebs.config.loader import (
    ConfigError,
    example_path,
    load_config,
    parse_config,
    render_example,
)
from ebs.config.model import PRODUCTION_BODHI_URL, STAGING_BODHI_URL, EbsConfig
from ebs.config.secrets import read_secret_file

# The shape and values of the original ELNBuildSync's tests/local_testconfig.yaml
# (its single-file format, with db, an inline client_secret and email).
ORIGINAL_LOCAL_TESTCONFIG = r"""
configuration:
  koji:
    profile: koji
    trigger_tag: f40
    build_target: eln
    stable_tag: eln
    scratch_build: true
    fail_fast: true
  bodhi:
    batch_size: 750
  db:
    host: temp_postgres
    port: 5432
    name: elnbuildsync
    driver: postgresql+asyncpg
    user: elnbuildsync
  open_id_connect:
    auth_url: "https://ipsilon.tinystage.test/idp/openidc/Authorization"
    client_id: "YOUR_CLIENT_ID"
    client_secret: "YOUR_CLIENT_SECRET"
    token_endpoint: "https://ipsilon.tinystage.test/idp/openidc/Token"
    userinfo_endpoint: "https://ipsilon.tinystage.test/idp/openidc/UserInfo"
    scopes:
      - openid
      - profile
      - https://id.fedoraproject.org/scope/groups
    admin_groups:
      - eln
  control:
    status_interval: 600 # 10 minutes
    pause: false
    skip_tag:
      - ^fedora-release$
      - ^rust$
      - ^llvm[0-9\.]*$
      - ^clang[0-9\.]*$
      - ^selinux-policy$
      - ^ocaml.*
      - ^redhat-rpm-config$
      - gtk3
      - gtk4
      - ^subversion$

    exclude:
      - ^kernel$
      - ^kernel-headers$
      - ^kernel-tools$
      - ^crypto-policies$
      - ^rubygems$
      - ^grub2$
      - ^shim.*
      - texlive
      - texlive-base
      - ^java-.*-openjdk-portable$
      - ^qemu$
    ordering:
      ^ocaml$: 0
      ^llvm[0-9\.]*$: 0
      ^clang[0-9\.]*$: 1
      ^fedora-repos.*$: 0
  email:
    smtp_host: localhost
    smtp_port: 587
    smtp_username: alice
    from: elnbuildsync@fedoraproject.org
    recipients:
      - list1@fedoraproject.org
      - list2@redhat.com
components:
  autopackagelist:
    view: [ eln, eln-extras ]
    source: [ source, buildroot-source ]
    content_resolver: https://tiny.distro.builders
  overrides:
    ipa:
      upstream_name: freeipa
    extrapackage: {}
"""

# The original's later split layout: a static file and a dynamic one, the
# trigger tag in control, plus koji.username / wait_repo and bodhi.staging.
ORIGINAL_STATIC = """
configuration:
  koji:
    profile: koji
    build_target: eln
    stable_tag: eln
    scratch_build: true
    fail_fast: true
    username: eln-buildsync
    wait_repo: true
  bodhi:
    staging: false
    max_single_batch_size: 750
    batch_size: 500
  db: {host: temp_postgres, port: 5432, name: elnbuildsync, driver: postgresql+asyncpg,
       user: elnbuildsync}
  open_id_connect: false
  email: false
"""
ORIGINAL_DYNAMIC = """
configuration:
  control:
    trigger_tag: f40
    status_interval: 600
    pause: false
    skip_tag: [^fedora-release$]
    exclude: [^kernel$]
    ordering: {^ocaml$: 0}
components:
  autopackagelist:
    view: [eln, eln-extras]
    source: [source, buildroot-source]
  overrides:
    ipa: {upstream_name: freeipa}
"""

BASE: dict[str, Any] = {
    "configuration": {
        "koji": {"trigger_tag": "f45", "build_target": "eln", "stable_tag": "eln"},
        "bodhi": {"batch_size": 0},
        "control": {"exclude": ["^kernel$"], "skip_tag": [], "ordering": {}},
    },
    "components": {"overrides": {"bash": {}}},
}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_text(patch: dict[str, Any] | None = None) -> str:
    return yaml.safe_dump(_merge(BASE, patch or {}), sort_keys=False)


def config_error(text: str, origin: str = "cfg.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, origin)
    return info.value


# --- the original's format ----------------------------------------------------


def test_original_local_testconfig_loads(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = parse_config(ORIGINAL_LOCAL_TESTCONFIG, "local_testconfig.yaml")
    cnf = cfg.configuration
    assert (cnf.koji.profile, cnf.koji.trigger_tag, cnf.koji.build_target) == ("koji", "f40", "eln")
    assert cnf.koji.scratch_build and cnf.koji.fail_fast and cnf.koji.wait_repo
    assert cnf.bodhi.batch_size == 750
    assert cnf.control.status_interval == 600 and not cnf.control.pause
    assert cnf.control.exclude[0] == "^kernel$"
    assert cnf.control.ordering == {
        "^ocaml$": 0,
        r"^llvm[0-9\.]*$": 0,
        r"^clang[0-9\.]*$": 1,
        "^fedora-repos.*$": 0,
    }
    assert cnf.email is not None
    assert cnf.email.from_ == "elnbuildsync@fedoraproject.org"
    assert cnf.email.recipients == ["list1@fedoraproject.org", "list2@redhat.com"]
    assert cnf.open_id_connect is not None and cnf.open_id_connect.admin_groups == ["eln"]
    apl = cfg.components.autopackagelist
    assert apl is not None and apl.view == ["eln", "eln-extras"]
    assert apl.source == ["source", "buildroot-source"]
    assert cfg.components.overrides["ipa"].upstream_name == "freeipa"
    assert cfg.components.overrides["extrapackage"].upstream_name is None
    # ebs's own sections take their defaults.
    assert cfg.timers.lull == 60 and cfg.timers.task_poll == 300
    assert cfg.timers.task_timeout == 24 * 3600 and cfg.timers.tag_timeout == 3600
    assert cfg.temporal.task_queue == "ebs"

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("configuration.db is ignored" in w for w in warnings) == 1
    assert sum("client_secret is set inline" in w for w in warnings) == 1


def test_inline_client_secret_is_kept_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = parse_config(ORIGINAL_LOCAL_TESTCONFIG, "local_testconfig.yaml")
    oidc = cfg.configuration.open_id_connect
    assert oidc is not None and oidc.client_secret is not None
    assert oidc.client_secret.get_secret_value() == "YOUR_CLIENT_SECRET"
    assert "YOUR_CLIENT_SECRET" not in caplog.text
    assert "YOUR_CLIENT_SECRET" not in repr(cfg) and "YOUR_CLIENT_SECRET" not in str(cfg)
    assert "YOUR_CLIENT_SECRET" not in cfg.model_dump_json()


def test_original_split_static_and_dynamic_files(tmp_path: Path) -> None:
    static = tmp_path / "elnbuildsync.yaml"
    dynamic = tmp_path / "elnbuildsync_dynamic.yaml"
    static.write_text(ORIGINAL_STATIC)
    dynamic.write_text(ORIGINAL_DYNAMIC)
    cfg = load_config(static, dynamic)
    cnf = cfg.configuration
    assert cnf.koji.trigger_tag == "f40"  # from the dynamic file's control block
    assert cnf.koji.username == "eln-buildsync"
    assert cnf.bodhi.staging is False and cnf.bodhi.base_url() == PRODUCTION_BODHI_URL
    assert (cnf.bodhi.batch_size, cnf.bodhi.max_single_batch_size) == (500, 750)
    assert cnf.email is None and cnf.open_id_connect is None
    assert cnf.control.exclude == ["^kernel$"]
    assert cfg.components.overrides["ipa"].upstream_name == "freeipa"


def test_trigger_tag_in_both_places_must_agree() -> None:
    text = config_text({"configuration": {"control": {"trigger_tag": "f44"}}})
    err = config_error(text)
    assert "configuration.control.trigger_tag ('f44')" in str(err)
    assert "configuration.koji.trigger_tag ('f45')" in str(err)
    same = config_text({"configuration": {"control": {"trigger_tag": "f45"}}})
    assert parse_config(same).configuration.koji.trigger_tag == "f45"


def test_false_disables_email_and_oidc_and_null_lists_are_empty() -> None:
    text = config_text(
        {
            "configuration": {
                "email": False,
                "open_id_connect": False,
                "control": {"exclude": None, "skip_tag": None, "ordering": None},
            },
            "components": {"autopackagelist": {"view": "eln", "source": "source"}},
        }
    )
    cfg = parse_config(text)
    assert cfg.configuration.email is None and cfg.configuration.open_id_connect is None
    assert cfg.configuration.control.exclude == [] and cfg.configuration.control.ordering == {}
    apl = cfg.components.autopackagelist
    assert apl is not None and apl.view == ["eln"] and apl.source == ["source"]


def test_new_sections_and_connection_overrides() -> None:
    text = config_text(
        {
            "configuration": {
                "koji": {
                    "server": "http://127.0.0.1:8080/kojihub",
                    "auth": {
                        "method": "kerberos",
                        "principal": "ebs/host@EXAMPLE.ORG",
                        "keytab": "/etc/ebs/ebs.keytab",
                    },
                },
                "bodhi": {"url": "http://127.0.0.1:8081/", "auth": "none"},
            },
            "temporal": {"address": "temporal:7233", "namespace": "ebs", "api_key_file": "/k"},
            "timers": {"lull": 5, "task_poll": 10, "tag_timeout": 120},
        }
    )
    cfg = parse_config(text)
    koji = cfg.configuration.koji
    assert koji.server == "http://127.0.0.1:8080/kojihub"
    assert (koji.auth.method, koji.auth.principal) == ("kerberos", "ebs/host@EXAMPLE.ORG")
    assert cfg.configuration.bodhi.auth.method == "none"
    assert cfg.configuration.bodhi.base_url() == "http://127.0.0.1:8081/"
    assert (cfg.temporal.address, cfg.temporal.namespace) == ("temporal:7233", "ebs")
    assert (cfg.timers.lull, cfg.timers.task_poll, cfg.timers.tag_timeout) == (5, 10, 120)
    assert cfg.timers.task_timeout == 24 * 3600  # untouched default


def test_staging_bodhi_url() -> None:
    text = config_text(
        {"configuration": {"koji": {"profile": "stg"}, "bodhi": {"staging": True, "auth": "none"}}}
    )
    assert parse_config(text).configuration.bodhi.base_url() == STAGING_BODHI_URL


# --- validation errors: YAML path + what was expected ---------------------------------


def test_bad_regex_names_the_list_index() -> None:
    text = config_text({"configuration": {"control": {"exclude": ["^a$", "^b$", "^c$", "("]}}})
    err = config_error(text)
    assert (
        "configuration.control.exclude[3]: invalid regex '(': missing ), unterminated subpattern"
        in str(err)
    )
    [issue] = err.issues
    assert issue.path == "configuration.control.exclude[3]"
    # file:line of the offending entry
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "- (")
    assert issue.line == line and f"cfg.yaml:{line}:" in str(err)


@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        (
            {"configuration": {"koji": {"trigger_tg": "f45"}}},
            "configuration.koji.trigger_tg",
            "unknown key; expected one of: profile, trigger_tag,",
        ),
        (
            {"configuration": {"bodhi": {"batch_size": "many"}}},
            "configuration.bodhi.batch_size",
            "expected a valid integer, unable to parse string as an integer, got 'many'",
        ),
        (
            {"configuration": {"bodhi": {"batch_size": -1}}},
            "configuration.bodhi.batch_size",
            "expected greater than or equal to 0, got -1",
        ),
        (
            {"configuration": {"koji": {"scratch_build": "sometimes"}}},
            "configuration.koji.scratch_build",
            "expected a valid boolean",
        ),
        (
            {"configuration": {"control": {"skip_tag": ["[gtk"]}}},
            "configuration.control.skip_tag[0]",
            "invalid regex '[gtk': unterminated character set",
        ),
        (
            {"configuration": {"control": {"ordering": {"^ocaml(": 0}}}},
            "configuration.control.ordering['^ocaml(']",
            "invalid regex '^ocaml(': missing ), unterminated subpattern",
        ),
        (
            {"configuration": {"control": {"ordering": {"^ocaml$": "first"}}}},
            "configuration.control.ordering['^ocaml$']",
            "expected a valid integer",
        ),
        (
            {"configuration": {"control": {"exclude": "^kernel$"}}},
            "configuration.control.exclude",
            "expected a list, got str '^kernel$'",
        ),
        (
            {"configuration": {"control": {"status_interval": 0}}},
            "configuration.control.status_interval",
            "expected greater than 0",
        ),
        (
            {"configuration": {"koji": {"server": "koji.example.org"}}},
            "configuration.koji.server",
            "expected an http(s) URL, got 'koji.example.org'",
        ),
        (
            {"configuration": {"koji": {"auth": {"method": "magic"}}}},
            "configuration.koji.auth.method",
            "expected 'kerberos', 'password', 'ssl' or 'none'",
        ),
        (
            {"configuration": {"koji": {"auth": {"method": "password", "user": "ebs"}}}},
            "configuration.koji.auth",
            "password auth takes user and password_file",
        ),
        (
            {"configuration": {"bodhi": {"auth": {"method": "token-file"}}}},
            "configuration.bodhi.auth",
            "bodhi auth 'token-file' needs token_file",
        ),
        (
            {"configuration": {"koji": {"auth": {"method": "kerberos", "keytab": "/k"}}}},
            "configuration.koji.auth",
            "kerberos auth takes both principal and keytab",
        ),
        (
            {"configuration": {"koji": {"wait_repo": False}}},
            "configuration.koji",
            "wait_repo cannot be false with the production Koji profile 'koji'",
        ),
        (
            {"configuration": {"bodhi": {"auth": "none"}}},
            "configuration.bodhi",
            "auth 'none' is for staging or sandbox Bodhi only",
        ),
        (
            {"configuration": {"bodhi": {"staging": True}}},
            "configuration",
            "koji.profile is 'koji' (production) but bodhi.staging is true",
        ),
        (
            {"configuration": {"email": True}},
            "configuration.email",
            "expected a mapping, or false to disable",
        ),
        (
            {
                "configuration": {
                    "email": {"smtp_host": "h", "from": "a@example.org", "recipients": []}
                }
            },
            "configuration.email.recipients",
            "expected at least 1 item(s), got an empty list",
        ),
        (
            {"configuration": {"email": {"smtp_host": "h", "recipients": ["x@example.org"]}}},
            "configuration.email.from",
            "missing required key",
        ),
        (
            {"configuration": {"koji": {"build_target": None}}},
            "configuration.koji.build_target",
            "expected a valid string, got null",
        ),
        (
            {"components": {"autopackagelist": {"content_resolver": "ftp://x"}}},
            "components.autopackagelist.content_resolver",
            "expected an http(s) URL",
        ),
        # (any key under an override is accepted, as the original merges them;
        # see tests/config/test_config_original.py)
        ({"timers": {"lull": 0}}, "timers.lull", "expected greater than 0, got 0"),
        ({"timers": {"lul": 5}}, "timers.lul", "unknown key; expected one of: lull, task_poll"),
        (
            {"temporal": {"tls_cert_file": "/c"}},
            "temporal",
            "tls_cert_file and tls_key_file go together",
        ),
        ({"extra_section": {}}, "extra_section", "unknown key; expected one of: configuration,"),
    ],
)
def test_validation_error_names_path_and_expectation(
    patch: dict[str, Any], path: str, expected: str
) -> None:
    err = config_error(config_text(patch))
    assert [i.path for i in err.issues] == [path], str(err)
    assert expected in err.issues[0].message, str(err)
    assert f"{path}: {err.issues[0].message}" in str(err)
    assert "cfg.yaml:" in str(err)


def test_missing_required_key() -> None:
    data = _merge(BASE, {})
    del data["configuration"]["koji"]["trigger_tag"]
    err = config_error(yaml.safe_dump(data))
    assert "configuration.koji.trigger_tag: missing required key" in str(err)
    missing_section = config_error("components: {}\n")
    assert "configuration: missing required key" in str(missing_section)


def test_every_problem_is_reported_at_once() -> None:
    text = config_text(
        {
            "configuration": {"bodhi": {"batch_size": "x"}, "control": {"exclude": ["("]}},
            "timers": {"lull": -1},
        }
    )
    err = config_error(text)
    assert {i.path for i in err.issues} == {
        "configuration.bodhi.batch_size",
        "configuration.control.exclude[0]",
        "timers.lull",
    }
    assert "3 problems" in str(err)
    assert all(i.line and i.origin == "cfg.yaml" for i in err.issues)


def test_yaml_syntax_error_gives_file_and_line() -> None:
    text = "configuration:\n  koji:\n    trigger_tag: [f45\n    build_target: eln\n"
    err = config_error(text, "/etc/ebs/config.yaml")
    assert str(err).startswith("/etc/ebs/config.yaml:4:")
    assert "YAML syntax error" in str(err)


def test_duplicate_keys_are_an_error() -> None:
    text = "configuration:\n  control:\n    exclude: [a]\n    exclude: [b]\n"
    err = config_error(text)
    assert str(err).startswith("cfg.yaml:4:")
    assert "duplicate key 'exclude' (first at line 3)" in str(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "cfg.yaml: the file is empty"),
        ("# nothing\n", "cfg.yaml: the file is empty"),
        ("- configuration\n", "cfg.yaml:1: expected a mapping with 'configuration'"),
        ("configuration: 3\n", "cfg.yaml:1: configuration: expected a mapping, got int 3"),
    ],
)
def test_not_a_config_at_all(text: str, expected: str) -> None:
    assert expected in str(config_error(text))


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: cannot read the configuration"):
        load_config(missing)


def test_load_config_reports_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "ebs.yaml"
    path.write_text(config_text({"configuration": {"bodhi": {"batch_size": "x"}}}))
    with pytest.raises(ConfigError, match=f"{path}:[0-9]+: configuration.bodhi.batch_size"):
        load_config(path)


def test_no_components_warns(caplog: pytest.LogCaptureFixture) -> None:
    data = _merge(BASE, {})
    del data["components"]
    caplog.set_level(logging.WARNING)
    cfg = parse_config(yaml.safe_dump(data))
    assert cfg.components.autopackagelist is None and not cfg.components.overrides
    assert "no component is eligible" in caplog.text


def test_warnings_can_be_collected_instead_of_logged(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    parse_config(ORIGINAL_LOCAL_TESTCONFIG, warn=seen.append)
    assert len(seen) == 2 and not caplog.records


# --- examples and secrets ------------------------------------------------------------


def test_production_example_loads() -> None:
    cfg = load_config(example_path("production"))
    assert isinstance(cfg, EbsConfig)
    cnf = cfg.configuration
    assert cnf.koji.trigger_tag == "rawhide" and cnf.koji.auth.method == "kerberos"
    assert cnf.email is not None and cnf.email.password_file
    assert cnf.open_id_connect is not None and cnf.open_id_connect.client_secret is None
    assert cfg.components.autopackagelist is not None


def test_sandbox_example_renders_and_loads() -> None:
    text = render_example(
        "sandbox", koji_server="http://127.0.0.1:41001/kojihub", bodhi_url="http://127.0.0.1:41002/"
    )
    cfg = parse_config(text, "sandbox.yaml")
    cnf = cfg.configuration
    assert cnf.koji.server == "http://127.0.0.1:41001/kojihub"
    assert cnf.koji.auth.method == "none" and cnf.bodhi.auth.method == "none"
    assert (cnf.koji.trigger_tag, cnf.koji.build_target, cnf.koji.stable_tag) == (
        "f45",
        "eln",
        "eln",
    )
    assert r"^llvm[0-9.]*$" in cnf.control.ordering  # a regex's `$` is not a placeholder
    assert cfg.timers.lull < 60


def test_sandbox_example_needs_its_placeholders() -> None:
    with pytest.raises(ConfigError, match=r"needs a value for \$\{bodhi_url\}"):
        render_example("sandbox", koji_server="http://127.0.0.1:1/kojihub")
    unfilled = example_path("sandbox").read_text()
    err = config_error(unfilled)
    assert "configuration.koji.server: expected an http(s) URL, got '${koji_server}'" in str(err)


def test_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    assert read_secret_file(secret, "SMTP password") == "s3cr3t"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="SMTP password file .* is empty"):
        read_secret_file(empty, "SMTP password")
    with pytest.raises(ConfigError, match="cannot read the SMTP password from"):
        read_secret_file(tmp_path / "missing", "SMTP password")



def test_oidc_client_secret_file_is_accepted(tmp_path: Path) -> None:
    """client_secret_file is the API's (browser login, introspection); the API
    reads it when it starts, not the config loader."""
    text = config_text(
        {
            "configuration": {
                "open_id_connect": {
                    "auth_url": "https://id.example.org/a",
                    "token_endpoint": "https://id.example.org/t",
                    "client_id": "ebs",
                    "admin_groups": ["eln"],
                    "client_secret_file": str(tmp_path / "does-not-exist"),
                }
            }
        }
    )
    warnings: list[str] = []
    oidc = parse_config(text, warn=warnings.append).configuration.open_id_connect
    assert oidc is not None and oidc.client_id == "ebs"
    assert warnings == []
    assert oidc.client_secret_file == str(tmp_path / "does-not-exist")


def test_a_wrongly_typed_secret_is_not_echoed() -> None:
    text = config_text(
        {
            "configuration": {
                "open_id_connect": {
                    "auth_url": "https://id.example.org/a",
                    "token_endpoint": "https://id.example.org/t",
                    "client_id": "ebs",
                    "admin_groups": ["eln"],
                    "client_secret": 918273645,
                }
            }
        }
    )
    err = config_error(text)
    assert "configuration.open_id_connect.client_secret" in str(err)
    assert "918273645" not in str(err) and "(not shown)" in str(err)


def test_staging_koji_profile_implies_staging_bodhi() -> None:
    cfg = parse_config(
        "configuration:\n  koji: {profile: stg, trigger_tag: f45, build_target: eln, "
        "stable_tag: eln}\n"
    )
    assert cfg.configuration.bodhi.staging is True
    assert cfg.configuration.bodhi.base_url() == STAGING_BODHI_URL
