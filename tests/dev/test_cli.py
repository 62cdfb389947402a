"""The `ebs` command line: help, one-line errors, and the operator commands
against a real Temporal dev server with the real BatchCollector."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ebs.cli import cli, run_cli
from ebs.devstack.processes import free_port
from tests.helpers.api import (
    KOJI_WEB,
    TEMPORAL_UI,
    Stack,
    config_text,
    progress_batch,
    stack_fixture,  # noqa: F401 (the `stack` fixture)
)

OPERATOR = ["trigger", "status", "pause", "resume", "history"]
SERVICES = ["worker", "ingest", "api"]


async def invoke(*args: str) -> Result:
    """Run the CLI in a thread: the test's event loop keeps serving the worker."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def ebs_process(*args: str) -> tuple[int, str, str]:
    """Run `python -m ebs` as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ebs", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


def test_every_command_explains_itself() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in [*OPERATOR, *SERVICES, "sim", "dev", "api-token"]:
        assert f"  {name} " in top.output, name
    for name in OPERATOR + SERVICES:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "--config FILE" in result.output and "$EBS_CONFIG" in result.output, name
        # The docstring's first paragraph is there, not just the options.
        description = result.output.split("Options:")[0]
        assert len(description.split()) > 8, (name, description)
    # sim and dev are click commands too: their options are parsed once, here.
    for name, option in (("sim", "--state-file"), ("dev", "--state-dir")):
        result = runner.invoke(cli, [name, "--help"], prog_name="ebs")
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: ebs {name} [OPTIONS]"), (name, result.output)
        assert option in result.output, name
        description = result.output.split("Options:")[0]
        assert len(description.split()) > 8, (name, description)


def test_service_options_reach_the_service_as_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Click parses `ebs ingest`, `ebs sim` and `ebs dev` once and hands the
    values over: no argv is rebuilt or parsed again, and the defaults are those
    the services always had."""
    import ebs.dev
    import ebs.ingest
    import ebs.simulator.cli

    calls: dict[str, Any] = {}

    def record(name: str) -> Any:
        def fake(*args: Any, **kwargs: Any) -> int:
            calls[name] = (args, kwargs)
            return 0
        return fake

    monkeypatch.setattr(ebs.ingest, "run", record("ingest"))
    monkeypatch.setattr(ebs.simulator.cli, "run", record("sim"))
    monkeypatch.setattr(ebs.dev, "run", record("dev"))
    monkeypatch.delenv("EBS_CONFIG", raising=False)
    config = tmp_path / "ebs.yaml"
    config.write_text(config_text("127.0.0.1:7233"))
    runner = CliRunner()

    result = runner.invoke(cli, ["ingest", "-c", str(config), "--config-url", "https://x/e.yaml",
                                 "--messaging-config", "fm.toml", "--consumers", "3",
                                 "--metrics-port", "9100", "--no-logging-config"])
    assert result.exit_code == 0, result.output
    assert calls["ingest"] == (([str(config), "https://x/e.yaml"],), {
        "messaging_config": "fm.toml", "consumers": 3, "metrics_port": 9100,
        "metrics_addr": "127.0.0.1", "logging_config": False})

    assert runner.invoke(cli, ["sim"]).exit_code == 0
    assert calls["sim"] == ((), {
        "host": "127.0.0.1", "port": 8880, "seed": "0", "amqp_url": None, "env": "prod",
        "task_messages": "scratch", "activity": 0.0, "state_file": None, "verbose": False})
    assert runner.invoke(cli, ["sim", "--seed", "x", "-v", "--activity", "2.5"]).exit_code == 0
    assert calls["sim"][1] | {"seed": "x", "verbose": True, "activity": 2.5} == calls["sim"][1]

    assert runner.invoke(cli, ["dev"]).exit_code == 0
    (options,), _ = calls["dev"]
    assert options == ebs.dev.DevOptions(
        state_dir=Path("state"), config=None, messaging_config=None, no_sim=False, demo=True,
        temporal_port=7233, ui_port=8233, api_port=8080, sim_port=8880, amqp_port=5672,
        worker_metrics_port=0, ingest_metrics_port=0, exit_after_demo=False)
    result = runner.invoke(cli, ["dev", "--no-demo", "--state-dir", str(tmp_path), "--no-sim",
                                 "--config", str(config), "--api-port", "18080"])
    assert result.exit_code == 0, result.output
    (options,), _ = calls["dev"]
    assert (options.demo, options.state_dir, options.no_sim, options.config,
            options.api_port) == (False, tmp_path, True, config, 18080)


def test_service_exit_codes_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import ebs.dev

    for code in (1, 2, 130):
        monkeypatch.setattr(ebs.dev, "run", lambda _options, code=code: code)
        assert run_cli(["dev", "--no-demo"]) == code


def test_service_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad options of the services are refused by click before anything starts."""
    cases = [
        (["ingest", "--config", "ebs.yaml", "--consumers", "0"], "--consumers"),
        (["sim", "--task-messages", "every"], "--task-messages"),
        (["dev", "--api-port", "x"], "'x' is not a valid integer"),
        (["dev", "--state"], "Did you mean '--state-dir'?"),
    ]
    for args, message in cases:
        assert run_cli(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, lines)
        assert message in lines[0] and f"(see `ebs {args[0]} --help`)" in lines[0], (args, lines)


def test_api_token_prints_a_usable_pair() -> None:
    from ebs.api.tokens import hash_token, parse_tokens

    result = CliRunner().invoke(cli, ["api-token", "ci-bot"])
    assert result.exit_code == 0
    token = result.output.split("token: ", 1)[1].split()[0]
    line = result.output.split("tokens file line: ", 1)[1].strip()
    assert line == f"{hash_token(token)} ci-bot"
    assert parse_tokens(line)[0].name == "ci-bot"


async def test_user_mistakes_are_one_line(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(config_text(dead))
    broken = tmp_path / "broken.yaml"
    broken.write_text("configuration:\n  koji: [\n")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(config_text(dead).replace("trigger_tag: f45", "trigger_tag: [1, 2]"))
    cases = [
        (["status", "--config", str(tmp_path / "missing.yaml")], 1, "cannot read the config"),
        (["trigger", "--config", str(unreachable), "bash;rm"], 2, "not a package name: 'bash;rm'"),
        (["history", "--config", str(unreachable), "bash'"], 2, "not a package name"),
        (["history", "--config", str(unreachable), "-x"], 2, "No such option '-x'"),
        (["status"], 2, "Missing option '--config'"),
        (["status", "--config", str(broken)], 1, "config:"),
        (["pause", "--config", str(invalid)], 1, "trigger_tag"),
        (["status", "--config", str(unreachable)], 1, "cannot connect to Temporal"),
        (["trigger", "--config", str(unreachable), "bash"], 1, "cannot connect to Temporal"),
        (["worker", "--config", str(tmp_path / "missing.yaml")], 1, "cannot read"),
        (["api", "--config", str(broken)], 1, "config:"),
        (["ingest", "--config", str(invalid)], 1, "trigger_tag"),
        (["status", "--config", str(unreachable), "--recent", "0"], 2, "1<=x<=100"),
        (["status", "--config", str(unreachable), "--recent", "101"], 2, "--recent"),
        (["api", "--config", str(unreachable), "--host", "0.0.0.0", "--allow-anonymous-writes"],
         2, "--allow-anonymous-writes needs a loopback --host"),
    ]
    results = await asyncio.gather(*(ebs_process(*args) for args, _, _ in cases))
    for (args, code, message), (rc, out, err) in zip(cases, results, strict=True):
        assert rc == code, (args, rc, out, err)
        assert "Traceback" not in err, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, err)
        assert message in lines[0], (args, err)


async def test_operator_commands(stack: Stack) -> None:
    await stack.reset_collector(lull=0.2)
    cfg = ["--config", str(stack.config_path)]

    paused = await invoke("pause", *cfg)
    assert paused.exit_code == 0 and "paused" in paused.output

    trig = await invoke("trigger", *cfg, "bash", "kernel", "glibc", "llvm", "coreutils")
    assert trig.exit_code == 3  # kernel was rejected
    lines = trig.output.splitlines()
    assert "queued    bash  bash-5.3.0-2.fc45" in lines
    assert any(line.startswith("rejected  kernel  excluded by pattern") for line in lines)

    text = (await invoke("status", *cfg)).output
    assert "Collector: running, PAUSED" in text
    assert "Queue: 4 component(s)" in text
    assert "bash-5.3.0-2.fc45" in text
    data = json.loads((await invoke("status", *cfg, "--json")).output)
    assert data["collector"]["paused"] is True
    assert [q["source"] for q in data["collector"]["queued"]] == ["cli"] * 4

    resumed = await invoke("resume", *cfg)
    assert resumed.exit_code == 0
    batch_id = await stack.wait_for_batch()
    await stack.script_batch(batch_id, progress_batch)
    text = (await invoke("status", *cfg)).output
    assert f"Current batch: {batch_id} (building:slice 10 attempt 2), 4 package(s)" in text
    assert "slice 0 [done] 1 succeeded" in text
    bash = next(line for line in text.splitlines() if line.strip().startswith("bash "))
    assert bash.split() == ["bash", "failed", "attempt", "2", f"{KOJI_WEB}/taskinfo?taskID=9011",
                            "buildArch", "failed:", "%check", "exited", "1"]

    await stack.finish_batch(batch_id, "partial")
    hist = await invoke("history", *cfg, "bash")
    assert hist.exit_code == 0
    assert f"{batch_id}" in hist.output and "bash: failed, attempt 2" in hist.output
    assert f"Temporal Web UI: {TEMPORAL_UI}/namespaces/default/workflows?query=" in hist.output
    data = json.loads((await invoke("history", *cfg, "bash", "--json")).output)
    assert data["batches"][0]["batch"]["batch_id"] == batch_id
    assert data["batches"][0]["package"]["reason"] == "buildArch failed: %check exited 1"
    text = (await invoke("status", *cfg)).output
    assert "Current batch: none" in text
    assert f"{batch_id}" in text and "partial" in text and "1 built, 1 failed" in text

