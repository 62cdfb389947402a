"""The original ELNBuildSync's configuration files load unchanged, with their meaning.

The two files below are written in the original's production layout (a static
file mounted at /etc/elnbuildsync/static-config/elnbuildsync.yaml and the
dynamic elnbuildsync_dynamic.yaml of the elnbuildsync-config repository), with
every key the original's parser and README document, in its units.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from ebs.config.holder import ConfigHolder
from ebs.config.loader import ConfigError, load_config, parse_config

STATIC = r"""
configuration:
  koji:
    profile: koji
    instance: fedora
    build_target: eln
    stable_tag: eln
    scratch_build: false
    fail_fast: false
    wait_repo: true
    username: eln-buildsync
    # seconds to wait for the side tag's buildroot before starting over
    side_tag_timeout: 5400
  bodhi:
    staging: false
    batch_size: 500
    max_single_batch_size: 750
    warn_timeout: 240       # minutes
    stable_timeout: 172800  # seconds
  db:
    host: postgresql.elnbuildsync.svc
    port: 5432
    name: elnbuildsync
    driver: postgresql+asyncpg
    user: elnbuildsync
    page_size: 500
  open_id_connect:
    auth_url: "https://id.fedoraproject.org/openidc/Authorization"
    client_id: "elnbuildsync"
    token_endpoint: "https://id.fedoraproject.org/openidc/Token"
    userinfo_endpoint: "https://id.fedoraproject.org/openidc/UserInfo"
    admin_groups:
      - eln
      - releng
  email:
    smtp_host: bastion.fedoraproject.org
    smtp_port: 587
    smtp_username: elnbuildsync
    from: elnbuildsync@fedoraproject.org
    recipients:
      - eln-notifications@lists.fedoraproject.org
"""

DYNAMIC = r"""
configuration:
  control:
    trigger_tag: f45
    status_interval: 600
    pause: false
    skip_tag:
      - ^fedora-release$
      - ^llvm[0-9\.]*$
    exclude:
      - ^kernel$
      - ^shim.*
    ordering:
      ^llvm[0-9\.]*$: 0
      ^clang[0-9\.]*$: 1
components:
  autopackagelist:
    view: [eln, eln-extras]
    source: [source, buildroot-source]
    content_resolver: https://tiny.distro.builders
  overrides:
    ipa:
      upstream_name: freeipa
      view: override
      source: override
    extrapackage: {}
"""


def _write(tmp_path: Path) -> tuple[Path, Path]:
    static = tmp_path / "elnbuildsync.yaml"
    dynamic = tmp_path / "elnbuildsync_dynamic.yaml"
    static.write_text(STATIC)
    dynamic.write_text(DYNAMIC)
    return static, dynamic


def test_production_files_load_unchanged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = load_config(*_write(tmp_path))
    cnf = cfg.configuration
    assert cnf.koji.trigger_tag == "f45" and cnf.koji.username == "eln-buildsync"
    # koji.side_tag_timeout is the side tag's buildroot wait: timers.tag_timeout.
    assert cfg.timers.tag_timeout == 5400
    assert cnf.bodhi.single_update_limit() == 750 and cnf.bodhi.batch_size == 500
    assert cnf.bodhi.warn_seconds() == 240 * 60
    assert cnf.bodhi.stable_timeout == 172800
    assert cfg.components.overrides["ipa"].upstream_name == "freeipa"
    notes = caplog.text
    assert "configuration.koji.instance has no effect" in notes
    assert "components.overrides.ipa: source, view kept" in notes
    assert "configuration.db is ignored" in notes


def test_batch_settings_carry_the_original_meaning(tmp_path: Path) -> None:
    holder = ConfigHolder.fixed(load_config(*_write(tmp_path)))
    s = holder.batch_settings()
    assert s.tag_timeout == 5400
    assert s.bodhi_warn_timeout == 240 * 60  # seconds inside the workflow
    assert s.bodhi_stable_timeout == 172800
    assert s.bodhi_batch_size == 500 and s.bodhi_max_single_batch_size == 750


def _minimal(**bodhi: object) -> str:
    return yaml.safe_dump(
        {
            "configuration": {
                "koji": {"trigger_tag": "f45", "build_target": "eln", "stable_tag": "eln"},
                "bodhi": bodhi,
            }
        }
    )


def test_bodhi_defaults_are_the_originals() -> None:
    bodhi = parse_config(_minimal(batch_size=300)).configuration.bodhi
    assert bodhi.warn_timeout == 180 and bodhi.warn_seconds() == 3 * 3600
    assert bodhi.stable_timeout == 86400
    # max_single_batch_size defaults to batch_size, as in the original
    assert bodhi.single_update_limit() == 300


def test_warn_timeout_zero_means_no_warning() -> None:
    bodhi = parse_config(_minimal(warn_timeout=0)).configuration.bodhi
    assert bodhi.warn_seconds() == 0


def test_max_single_batch_size_needs_batch_size() -> None:
    with pytest.raises(ConfigError, match="max_single_batch_size"):
        parse_config(_minimal(batch_size=0, max_single_batch_size=750))


def test_side_tag_timeout_and_tag_timeout_must_agree() -> None:
    data = yaml.safe_load(_minimal())
    data["configuration"]["koji"]["side_tag_timeout"] = 600
    data["timers"] = {"tag_timeout": 1200}
    with pytest.raises(ConfigError, match="side_tag_timeout"):
        parse_config(yaml.safe_dump(data))
    data["timers"] = {"tag_timeout": 600}
    assert parse_config(yaml.safe_dump(data)).timers.tag_timeout == 600
