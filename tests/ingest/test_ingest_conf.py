"""The example fedora-messaging configurations shipped in ebs/ingest/conf/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fedora_messaging.config import LazyConfig

import ebs.ingest
from ebs.bus import BRIDGE_TOPICS
from ebs.devstack.processes import free_port

CONF = Path(ebs.ingest.__file__).parent / "conf"


@pytest.mark.parametrize(
    ("name", "env"), [("production", "prod"), ("staging", "stg"), ("sandbox", "*")]
)
def test_example_configurations_bind_the_bridge_topics_on_a_shared_queue(
    name: str, env: str
) -> None:
    conf = LazyConfig().load_config(str(CONF / f"{name}.toml"))  # validates, as the bridge does
    ((queue, settings),) = conf["queues"].items()
    assert settings["durable"] and not settings["exclusive"] and not settings["auto_delete"]
    keys = {key for b in conf["bindings"] if b["queue"] == queue for key in b["routing_keys"]}
    assert keys == {f"org.fedoraproject.{env}.{topic}" for topic in BRIDGE_TOPICS}
    assert conf["consumer_config"]["consumers"] >= 1
    loggers = conf["log_config"]["loggers"]
    assert loggers["fedora_messaging.twisted.consumer"]["level"] == "ERROR"
    assert loggers["ebs"]["level"] == "INFO"
    if name != "sandbox":
        assert conf["amqp_url"].startswith("amqps://") and conf["tls"]["certfile"]


def test_sandbox_broker_url_is_the_line_ebs_dev_rewrites() -> None:
    text = (CONF / "sandbox.toml").read_text()
    assert 'amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2F"' in text.splitlines()


@pytest.mark.parametrize("via_env", [False, True])
def test_a_named_messaging_config_that_does_not_exist_is_exit_2(
    via_env: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ebs.ingest.service import EXIT_CONFIG, run

    missing = tmp_path / "nope.toml"
    named: str | None = None
    if via_env:
        monkeypatch.setenv("FEDORA_MESSAGING_CONF", str(missing))
    else:
        monkeypatch.delenv("FEDORA_MESSAGING_CONF", raising=False)
        named = str(missing)
    assert run(str(tmp_path / "ebs.yaml"), messaging_config=named) == EXIT_CONFIG
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no such file" in lines[0] and str(missing) in lines[0]
    assert ("$FEDORA_MESSAGING_CONF" if via_env else "--messaging-config") in lines[0]


def test_the_bridge_reads_its_config_from_the_worker_s_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config-url / --config-git reach the config holder (merged after files);
    a source that cannot be read is one redacted line and exit 2."""

    from ebs.cli import run_cli
    from ebs.ingest.service import EXIT_CONFIG

    monkeypatch.delenv("FEDORA_MESSAGING_CONF", raising=False)
    monkeypatch.delenv("EBS_CONFIG", raising=False)
    closed = free_port()
    url = f"http://ebs:s3cret@127.0.0.1:{closed}/ebs.yaml"
    args = ["--config-url", url, "--messaging-config", str(CONF / "sandbox.toml"),
            "--no-logging-config"]
    assert run_cli(["ingest", *args]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"cannot read the configuration from http://***@127.0.0.1:{closed}/ebs.yaml" in err
    assert "s3cret" not in err
    assert run_cli(["ingest", "--messaging-config", str(CONF / "sandbox.toml")]) == EXIT_CONFIG
    assert "give at least one of --config, --config-url, --config-git" in capsys.readouterr().err
