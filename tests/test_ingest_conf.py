"""The example fedora-messaging configurations shipped in ebs/ingest/conf/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fedora_messaging.config import LazyConfig

import ebs.ingest
from ebs.bus import BRIDGE_TOPICS

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
