"""`ebs dev`'s Web UI decodes compressed payloads through the API's codec server."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from ebs.config.loader import load_config
from ebs.dev import DevOptions, DevStack, temporal_argv
from tests.helpers.processes import wait_until
from tests.helpers.rabbitmq import free_port


def options(tmp_path: Path, ui_port: int, api_port: int) -> DevOptions:
    messaging = tmp_path / "fm.toml"
    messaging.write_text('amqp_url = "amqp://127.0.0.1:9/"\n')
    return DevOptions(
        state_dir=tmp_path / "state", config=None, messaging_config=messaging, no_sim=False,
        demo=False, temporal_port=free_port(), ui_port=ui_port, api_port=api_port,
        sim_port=free_port(), amqp_port=free_port(), worker_metrics_port=0,
        ingest_metrics_port=0, exit_after_demo=False)


def test_the_dev_config_lets_the_web_ui_call_the_codec_server(tmp_path: Path) -> None:
    stack = DevStack(options(tmp_path, ui_port=18233, api_port=18080))
    stack.state.mkdir(parents=True)
    stack._write_config(None)
    cfg = load_config(stack.config_path)
    assert {"http://localhost:18233", "http://127.0.0.1:18233"} <= set(
        cfg.api.codec_cors_origins)


def test_the_dev_servers_web_ui_is_given_the_codec_endpoint(tmp_path: Path) -> None:
    a = options(tmp_path, ui_port=free_port(), api_port=free_port())
    a.state_dir.mkdir()
    argv = temporal_argv(a, a.state_dir)
    assert argv[argv.index("--ui-codec-endpoint") + 1] == f"http://127.0.0.1:{a.api_port}/codec"
    with open(tmp_path / "temporal.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        def settings() -> dict[str, object] | None:
            try:
                url = f"http://127.0.0.1:{a.ui_port}/api/v1/settings"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    return json.loads(resp.read())  # type: ignore[no-any-return]
            except OSError:
                assert proc.poll() is None, (tmp_path / "temporal.log").read_text()
                return None

        found = wait_until(settings, 60, "the dev server's Web UI", interval=0.2)
        assert found["Codec"]["Endpoint"] == f"http://127.0.0.1:{a.api_port}/codec"  # type: ignore[index]
    finally:
        proc.terminate()
        proc.wait(10)
