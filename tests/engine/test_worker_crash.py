"""A worker process killed mid-batch: the batch finishes after a restart,
with no duplicate Koji task, no leaked side tag, no lost package."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchRequest
from ebs.contracts.events import TagEvent
from ebs.simulator import ListSink, Simulator
from ebs.workflows.batch import RebuildBatch
from tests.helpers.processes import WorkerProcess, wait_until, write_config

PACKAGES = ["bash", "coreutils", "glibc"]


# In CI's fast run the same failure is covered by tests/chaos/test_worker_kills.py
# (SIGKILL at chosen points) and the real-stack test_e2e.py: slow here.
@pytest.mark.slow
async def test_worker_sigkill_mid_batch_then_restart(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    sim = Simulator(seed=11, sink=ListSink()).start("127.0.0.1", 0)
    sim.bodhi_app.stable_after = 0.05
    for name in PACKAGES:
        sim.set_duration(name, 3.0)
    sim.set_outcomes("glibc", ["FAILED", "CLOSED"])
    address = dev_server_env.client.service_client.config.target_host
    queue = f"crash-{uuid.uuid4().hex[:6]}"
    config = write_config(tmp_path / "ebs.yaml", sim, address, queue)
    log = tmp_path / "worker.log"
    first = WorkerProcess(config, log).start()
    second: WorkerProcess | None = None
    try:
        holder = ConfigHolder(str(config))
        holder.load()
        session = sim.session()
        events = [
            TagEvent(n, session.getLatestBuilds(sim.layout.trigger_tag, package=n)[0]["nvr"],
                       event_id=n)
            for n in PACKAGES
        ]
        handle = await dev_server_env.client.start_workflow(
            RebuildBatch.run,
            BatchRequest("ebs-batch-crash-1", events, holder.batch_settings()),
            id=f"ebs-batch-crash-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        # Kill it while the first attempt's tasks are running.
        await asyncio.to_thread(
            wait_until, lambda: len(sim.builds_submitted) >= 3, 60, "the first builds"
        )
        await asyncio.sleep(0.5)
        first.kill()
        second = WorkerProcess(config, log).start()
        result = await asyncio.wait_for(handle.result(), timeout=180)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        sim.stop()
    states = {p.component: p.state for p in result.packages}
    assert states == dict.fromkeys(PACKAGES, "stable"), (states, log.read_text()[-3000:])
    # glibc failed once and was retried once: 4 tasks in all, none twice
    submitted = [
        (b["src"], b["opts"]["custom_user_metadata"]["ebs_workflow_id"])
        for b in sim.builds_submitted
    ]
    assert len(submitted) == 4 and len(set(submitted)) == 4
    assert sorted(sim.side_tags_created) == sorted(sim.side_tags_removed)
    assert len(result.updates) == 1
