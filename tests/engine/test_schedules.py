"""ebs's Temporal Schedules on the dev server (the time-skipping server has no
schedules): idempotent creation, updates that keep an operator's pause, and the
scheduled sweep and config refresh actually running on workers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    WorkflowHandle,
)
from temporalio.testing import WorkflowEnvironment

from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.config.model import Timers
from ebs.contracts.koji import SideTagRequest
from ebs.contracts.refresh import ConfigRefreshReport
from ebs.contracts.sweep import SweepReport
from ebs.devstack.waiting import eventually
from ebs.koji.adapter import KojiAdapter
from ebs.schedules import (
    cleanup_schedule_id,
    config_refresh_schedule_id,
    ensure_schedules,
    refresh_queue,
    sidetag_sweep_schedule_id,
)
from ebs.simulator import Simulator
from ebs.temporal_client import connect_to, temporal_cli_path
from ebs.worker import build_worker
from tests.engine.test_sweep import age_koji
from tests.helpers.config import write_config
from tests.helpers.engine import _package_lists, engine_config

HOUR = 3600.0


def unique_queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def delete_schedules(client: Client, queue: str) -> None:
    for schedule_id in (config_refresh_schedule_id(queue), sidetag_sweep_schedule_id(queue),
                        cleanup_schedule_id(queue)):
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except Exception:  # noqa: S110 - not created by this test
            pass


async def run_now(client: Client, schedule_id: str, result_type: type, timeout: float = 20.0
                  ) -> WorkflowHandle[Any, Any]:
    """Trigger a schedule and return the workflow run it started."""
    handle = client.get_schedule_handle(schedule_id)
    before = (await handle.describe()).info.num_actions
    await handle.trigger()

    async def started() -> ScheduleActionExecutionStartWorkflow | None:
        info = (await handle.describe()).info
        if info.num_actions > before and info.recent_actions:
            action = info.recent_actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return action
        return None

    action = await eventually(started, timeout, f"schedule {schedule_id} to start a workflow")
    return client.get_workflow_handle(action.workflow_id, result_type=result_type)


async def test_schedules_are_created_once_and_follow_the_timers(
    dev_server_env: WorkflowEnvironment,
) -> None:
    client = dev_server_env.client
    queue = unique_queue("sched")
    sweep_id = sidetag_sweep_schedule_id(queue)
    try:
        first = await ensure_schedules(client, queue, Timers())
        assert [(c.schedule_id, c.action) for c in first] == [
            (config_refresh_schedule_id(queue), "created"), (sweep_id, "created"),
            (cleanup_schedule_id(queue), "created"),
        ]
        again = await ensure_schedules(client, queue, Timers())
        assert [c.action for c in again] == ["unchanged", "unchanged", "unchanged"]
        # `ebs worker --untagging` changes the cleanup's input, and back.
        untag = await ensure_schedules(client, queue, Timers(), untagging=True)
        assert [c.action for c in untag] == ["unchanged", "unchanged", "updated"]
        assert "input" in untag[2].detail
        back = await ensure_schedules(client, queue, Timers())
        assert [c.action for c in back] == ["unchanged", "unchanged", "updated"]

        # An operator pauses the sweep; a new interval keeps it paused.
        handle = client.get_schedule_handle(sweep_id)
        await handle.pause(note="Koji maintenance")
        changed = await ensure_schedules(client, queue, Timers(sidetag_sweep=HOUR))
        assert [str(c) for c in changed] == [
            f"{config_refresh_schedule_id(queue)}: unchanged",
            f"{sweep_id}: updated (every 43200s -> 3600s)",
            f"{cleanup_schedule_id(queue)}: unchanged",
        ]
        desc = await handle.describe()
        assert [i.every for i in desc.schedule.spec.intervals] == [timedelta(hours=1)]
        assert desc.schedule.state.paused and desc.schedule.state.note == "Koji maintenance"
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue, action.id) == ("SideTagSweep", queue, sweep_id)

        # ... and `temporal schedule` shows it.
        proc = await asyncio.create_subprocess_exec(
            temporal_cli_path(), "schedule", "describe", "--schedule-id", sweep_id,
            "--address", client.service_client.config.target_host, "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, err.decode()
        assert "SideTagSweep" in out.decode() and json.loads(out)["schedule"]["state"]["paused"]
    finally:
        await delete_schedules(client, queue)


@asynccontextmanager
async def workers(client: Client, holder: ConfigHolder, sim: Simulator, queue: str
                  ) -> AsyncIterator[None]:
    """A worker process's two workers: the main one and its config-refresh one."""
    from ebs.schedules import build_refresh_worker

    cfg = holder.config
    koji = KojiAdapter(cfg.configuration.koji, timeout=30, tag_wait=10)
    bodhi = BodhiAdapter(cfg.configuration.bodhi)
    try:
        async with build_worker(client, holder=holder, koji=koji, bodhi=bodhi,
                                task_queue=queue), \
                build_refresh_worker(client, holder, queue):
            yield
    finally:
        koji.close()


async def test_triggered_sweep_schedule_removes_a_leaked_side_tag(
    dev_server_env: WorkflowEnvironment, engine_sim: Simulator,
) -> None:
    client = dev_server_env.client
    sim = engine_sim
    queue = unique_queue("sweep")
    cfg = engine_config(sim)
    holder = ConfigHolder.fixed(cfg, _package_lists(sim, cfg), trigger_tag=sim.layout.trigger_tag)
    koji = KojiAdapter(cfg.configuration.koji, timeout=30)
    build_tag = koji.get_build_target("eln").build_tag
    leaked = koji.create_side_tag(SideTagRequest(build_tag, "ebs-batch-20200101-000000-1:build:1"))
    age_koji(sim, 49 * HOUR)
    recent = koji.create_side_tag(SideTagRequest(build_tag, "ebs-batch-20200101-000000-2:build:1"))
    koji.close()
    try:
        await ensure_schedules(client, queue, cfg.timers)
        async with workers(client, holder, sim, queue):
            run = await run_now(client, sidetag_sweep_schedule_id(queue), SweepReport)
            report: SweepReport = await asyncio.wait_for(run.result(), timeout=60)
    finally:
        await delete_schedules(client, queue)
    assert run.id.startswith(sidetag_sweep_schedule_id(queue))
    assert report.error == "" and report.removed == [leaked.name]
    assert {n.name: n.reason for n in report.kept} == {
        recent.name: "younger than the grace period"
    }
    assert report.running_batches_from == ["visibility: 0 running batch(es)"]
    assert not sim.koji_view().tag_exists(leaked.name) and sim.koji_view().tag_exists(recent.name)


def config_text(sim: Simulator, address: str, queue: str, tmp: Path, **timers: float) -> str:
    path = write_config(tmp / "render.yaml", sim, address, queue, timers=timers)
    return path.read_text()


async def test_config_refresh_reaches_every_worker_and_resyncs_the_schedules(
    dev_server_env: WorkflowEnvironment, engine_sim: Simulator, tmp_path: Path,
) -> None:
    sim = engine_sim
    target = dev_server_env.client.service_client.config.target_host
    queue = unique_queue("refresh")
    config = tmp_path / "ebs.yaml"
    config.write_text(config_text(sim, target, queue, tmp_path))
    holders = {name: ConfigHolder(str(config)) for name in ("worker-a", "worker-b")}
    for holder in holders.values():
        holder.load()
    v1 = holders["worker-a"].version
    clients = {name: await connect_to(target, identity=name) for name in holders}
    try:
        await ensure_schedules(clients["worker-a"], queue, holders["worker-a"].config.timers)
        async with AsyncExitStack() as stack:
            for name, holder in holders.items():
                await stack.enter_async_context(workers(clients[name], holder, sim, queue))

            data = yaml.safe_load(config.read_text())
            data["timers"]["sidetag_sweep"] = HOUR
            config.write_text(yaml.safe_dump(data))
            run = await run_now(clients["worker-a"], config_refresh_schedule_id(queue),
                                ConfigRefreshReport)
            report: ConfigRefreshReport = await asyncio.wait_for(run.result(), timeout=60)
            v2 = holders["worker-a"].version
            assert v2 != v1 and holders["worker-b"].version == v2
            assert sorted((w.worker, w.ok, w.previous_version, w.version)
                          for w in report.workers) == [
                ("worker-a", True, v1, v2), ("worker-b", True, v1, v2),
            ]
            assert report.unreachable == []
            assert report.schedules == [
                f"{sidetag_sweep_schedule_id(queue)}: updated (every 43200s -> 3600s)"
            ]

            # A broken config: every worker says why and keeps the one it has.
            config.write_text("configuration: [\n")
            run = await run_now(clients["worker-b"], config_refresh_schedule_id(queue),
                                ConfigRefreshReport)
            broken: ConfigRefreshReport = await asyncio.wait_for(run.result(), timeout=60)
            assert sorted(w.worker for w in broken.workers) == ["worker-a", "worker-b"]
            for answer in broken.workers:
                assert not answer.ok and answer.version == answer.previous_version == v2
                assert "YAML syntax error" in answer.error and str(config) in answer.error
            assert broken.schedules == []
            assert all(h.version == v2 for h in holders.values())
    finally:
        await delete_schedules(dev_server_env.client, queue)
    assert refresh_queue(queue, "worker-a") == f"{queue}:config:worker-a"
