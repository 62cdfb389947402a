"""Every `$ temporal ...` command of docs/TEMPORAL_CLI.md, run with the real
`temporal` CLI against a dev server hosting the real BatchCollector."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from pathlib import Path

from ebs.api.components import read_denied
from ebs.contracts.collector import CollectorState
from ebs.contracts.events import EnqueueRequest
from ebs.contracts.ledger import (
    LEDGER_WORKFLOW,
    LEDGER_WORKFLOW_ID,
    SIGNAL_LEDGER_RECORD,
    ComponentRecord,
    LedgerBatch,
    LedgerPackage,
    LedgerState,
    record_shard_ids,
)
from ebs.contracts.names import COLLECTOR_WORKFLOW_ID, QUERY_LOG_LEVEL, UPDATE_ENQUEUE
from ebs.temporal_client import temporal_cli_path
from tests.helpers.api import (
    TASK_QUEUE,
    Stack,
    progress_batch,
    stack_fixture,  # noqa: F401 (the `stack` fixture)
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "TEMPORAL_CLI.md"
EXAMPLE_BATCH = "ebs-batch-20261125-101500-1"


def documented_commands() -> list[str]:
    """The `$ temporal` commands of the doc's console blocks, in order."""
    text = DOC.read_text()
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        commands += [line[2:].strip() for line in joined.splitlines() if line.startswith("$ ")]
    return commands


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_documented_temporal_commands_work(stack: Stack) -> None:
    commands = documented_commands()
    assert len(commands) >= 10
    assert all(c.startswith("temporal ") for c in commands)
    assert all(f"--task-queue {TASK_QUEUE}" in c for c in commands if "--task-queue" in c)

    # A finished batch for the batch commands to look at.
    await stack.reset_collector(lull=0.2)
    handle = await stack.client.start_workflow(
        "BatchCollector", CollectorState(), id=COLLECTOR_WORKFLOW_ID, task_queue=TASK_QUEUE
    )
    await handle.execute_update(
        UPDATE_ENQUEUE, EnqueueRequest(["bash", "glibc", "llvm", "coreutils"])
    )
    batch_id = await stack.wait_for_batch()
    await stack.script_batch(batch_id, progress_batch)
    await stack.finish_batch(batch_id, "partial")
    recent = (await stack.collector_status()).recent_batches
    # Then a fresh collector that will not batch while the commands run.
    await stack.reset_collector(lull=3600)

    # A ledger with bash's failed URL, and the record shards, for the ledger commands.
    failed = LedgerPackage(
        ComponentRecord("bash", batch_id, "failed", "build failed", "bash-5.3.0-2.fc45"),
        scm_url="git+https://src.fedoraproject.org/rpms/bash.git#0ld", failed_for_good=True,
    )
    for wid in [LEDGER_WORKFLOW_ID, *record_shard_ids()]:
        await stack.client.start_workflow(
            LEDGER_WORKFLOW, LedgerState(), id=wid, task_queue=TASK_QUEUE,
            start_signal=SIGNAL_LEDGER_RECORD,
            start_signal_args=[LedgerBatch(batch_id, "2026-11-25T10:15:00", [failed])],
        )

    env = {**os.environ, "TEMPORAL_ADDRESS": stack.address, "TEMPORAL_NAMESPACE": "default"}
    outputs: dict[str, str] = {}
    signalled: list[str] = []
    for command in commands:
        argv = shlex.split(command.replace(EXAMPLE_BATCH, batch_id))
        argv[0] = temporal_cli_path()
        code, out, err = await run(argv, env)
        assert code == 0, f"{command}\n{out}\n{err}"
        outputs[command] = out
        if command.startswith("temporal workflow signal ") and "--name " in command:
            # Each documented signal has taken effect before the next step.
            name = argv[argv.index("--name") + 1]
            signalled.append(name)
            if name == "set_log_level":
                handle = stack.client.get_workflow_handle(COLLECTOR_WORKFLOW_ID)
                level = await handle.query(QUERY_LOG_LEVEL, result_type=str)
                assert level == "DEBUG", (command, level)
                continue
            if name in ("pause", "resume"):
                paused = (await stack.collector_status()).paused
                assert paused is (name == "pause"), (command, paused)
    assert sorted(signalled) == sorted(["pause", "resume", "set_log_level", "clear_denied"])

    def output(fragment: str) -> str:
        return next(o for c, o in outputs.items() if fragment in c)

    assert json.loads(output("--type log_level"))["queryResult"] == ["DEBUG"]

    # The update-with-start queued bash and rejected kernel, and the plain update glibc.
    first = output("execute-update-with-start")
    assert "bash-5.3.0-2.fc45" in first and "excluded by pattern" in first
    status = json.loads(output("--workflow-id ebs-collector --type status"))["queryResult"][0]
    assert [q["component"] for q in status["queued"]] == ["bash", "glibc"]
    assert {q["requested_by"] for q in status["queued"]} == {"alice"}
    assert status["paused"] is True  # pause, resume, then signal-with-start pause
    assert not status["recent_batches"]  # a fresh collector (reset above)

    batch = json.loads(output(f"--workflow-id {EXAMPLE_BATCH} --type status"))["queryResult"][0]
    assert batch["batch_id"] == batch_id and batch["outcome"] == "partial"
    by_name = {p["component"]: p for p in batch["packages"]}
    assert by_name["bash"]["state"] == "failed" and by_name["llvm"]["nvr"]
    result = json.loads(output("workflow result"))
    assert result["status"] == "COMPLETED"
    assert result["result"]["outcome"] == "partial"

    assert batch_id in output("EbsPackages = 'bash'")
    assert batch_id in output("EbsOutcome IN")
    assert "Completed" in output("GROUP BY ExecutionStatus")
    assert [r.batch_id for r in recent] == [batch_id]

    # The denylist: listed, then cleared by the documented signal.
    listed = json.loads(output("--workflow-id ebs-ledger --type denied"))["queryResult"][0]
    assert [d["component"] for d in listed["denied"]] == ["bash"]
    assert await read_denied(stack.client) == []
    rows = json.loads(output("ebs-ledger-records-3 --type components"))["queryResult"][0]
    assert rows == [] or all(len(r) == 8 for r in rows)
