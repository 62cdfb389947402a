"""Config hot reload: a worker started from a git config repository follows its
commits (and keeps its config when a commit is broken); a valid change reaches
the next batch, never a running one, and every batch carries its version."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.config.sources import DEFAULT_GIT_PATH
from ebs.contracts.batch import BatchResult
from ebs.contracts.collector import CollectorStatus
from ebs.contracts.names import QUERY_STATUS
from ebs.contracts.refresh import ConfigRefreshReport
from ebs.contracts.search import CONFIG_VERSION_KEY
from ebs.devstack.processes import Child
from ebs.devstack.waiting import eventually, until
from ebs.koji.adapter import KojiAdapter
from ebs.schedules import (
    config_refresh_schedule_id,
    refresh_when_due,
    sidetag_sweep_schedule_id,
    worker_identities,
)
from ebs.simulator import Simulator
from ebs.worker import build_worker
from ebs.workflows.collector import BatchCollector
from tests.engine.test_schedules import delete_schedules, run_now
from tests.engine.test_sweep import start_waiting_batch
from tests.helpers.config import write_config
from tests.helpers.engine import Engine

HOUR = 3600.0
RUN_WORKER = (
    "import asyncio, sys\n"
    "from ebs.worker import run_worker\n"
    "sys.exit(asyncio.run(run_worker(sys.argv[1])))\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, text: str, message: str) -> str:
    (repo / DEFAULT_GIT_PATH).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q",
        "-m", message)
    return git(repo, "rev-parse", "HEAD")


async def test_worker_follows_a_git_config_repository(
    dev_server_env: WorkflowEnvironment, engine_sim: Simulator, tmp_path: Path,
) -> None:
    client = dev_server_env.client
    queue = f"gitcfg-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "elnbuildsync-config"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    text = write_config(tmp_path / "v1.yaml", engine_sim,
                        client.service_client.config.target_host, queue).read_text()
    first = commit(repo, text, "v1")
    log = tmp_path / "worker.log"
    proc = Child("worker", [sys.executable, "-c", RUN_WORKER, f"git+{repo}#main"], log,
                 new_session=False).start()

    async def registered() -> list[str]:
        assert proc.alive(), log.read_text()
        return await worker_identities(client, queue)

    try:
        await eventually(registered, 30, "the worker on its task queue", interval=0.1)
        # The worker made the schedules with the config's intervals.
        sweep = await client.get_schedule_handle(sidetag_sweep_schedule_id(queue)).describe()
        assert sweep.schedule.spec.intervals[0].every.total_seconds() == 12 * HOUR

        data = yaml.safe_load(text)
        data["configuration"]["control"] = {"skip_tag": ["^fedora-release$"]}
        second = commit(repo, yaml.safe_dump(data), "v2")
        run = await run_now(client, config_refresh_schedule_id(queue), ConfigRefreshReport)
        report = await asyncio.wait_for(run.result(), timeout=60)
        assert [(w.worker, w.ok, w.previous_version, w.version) for w in report.workers] == [
            (f"{proc.pid}@{socket.gethostname()}", True, f"git:{first}", f"git:{second}"),
        ]

        commit(repo, "configuration:\n  koji: [\n", "broken")
        run = await run_now(client, config_refresh_schedule_id(queue), ConfigRefreshReport)
        report = await asyncio.wait_for(run.result(), timeout=60)
        (answer,) = report.workers
        assert not answer.ok and answer.version == f"git:{second}"
        assert "YAML syntax error" in answer.error and DEFAULT_GIT_PATH in answer.error
    finally:
        code = proc.stop(timeout=30)
        await delete_schedules(client, queue)
    output = log.read_text()
    assert code == 0, output
    failures = [ln for ln in output.splitlines() if "configuration refresh failed" in ln]
    assert len(failures) == 1 and f"keeping version git:{second}: " in failures[0]


async def batch_status(engine: Engine, batch_id: str) -> BatchResult:
    return await engine.client.get_workflow_handle(batch_id).query(
        QUERY_STATUS, result_type=BatchResult
    )


async def config_version_attribute(handle: WorkflowHandle) -> str | None:  # type: ignore[type-arg]
    return (await handle.describe()).typed_search_attributes.get(CONFIG_VERSION_KEY)


async def test_a_new_config_reaches_the_next_batch_never_the_running_one(
    time_skipping_env: WorkflowEnvironment, engine_sim: Simulator, tmp_path: Path,
) -> None:
    sim = engine_sim
    sim.bodhi_app.stable_after = None
    queue = f"cfg-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path / "ebs.yaml", sim, "127.0.0.1:7233", queue,
                          timers={"stable_poll": 6 * HOUR, "task_poll": 30, "repo_poll": 30,
                                  "lull": 60})
    data = yaml.safe_load(config.read_text())
    data["configuration"]["bodhi"].update(warn_timeout=30 * 24 * HOUR,
                                          stable_timeout=60 * 24 * HOUR)
    config.write_text(yaml.safe_dump(data))
    holder = ConfigHolder(str(config))
    holder.load()
    v1 = holder.version
    cfg = holder.config
    koji = KojiAdapter(cfg.configuration.koji, timeout=30, tag_wait=10)
    engine = Engine(time_skipping_env, sim, holder, koji, queue)
    worker = build_worker(time_skipping_env.client, holder=holder, koji=koji,
                          bodhi=BodhiAdapter(cfg.configuration.bodhi), task_queue=queue)
    try:
        async with worker:
            collector, first = await start_waiting_batch(engine, "bash")
            data["configuration"]["koji"]["fail_fast"] = False
            config.write_text(yaml.safe_dump(data))
            assert holder.refresh()
            v2 = holder.version
            assert v2 != v1

            # The running batch keeps the settings it started with.
            running = await batch_status(engine, first)
            assert running.config_version == v1
            first_handle = engine.client.get_workflow_handle(first, result_type=BatchResult)
            assert await config_version_attribute(first_handle) == v1
            sim.bodhi_app.make_stable(running.updates[0])
            async with time_skipping_env.time_skipping_unlocked():  # type: ignore[attr-defined]
                done = await first_handle.result()
            assert done.config_version == v1 and done.outcome == "succeeded"

            # The next batch runs with the new one, and says so.
            await collector.signal(BatchCollector.tag, engine.tag_event("coreutils"))

            async def next_batch() -> CollectorStatus | None:
                await time_skipping_env.sleep(30)
                st = await collector.query(BatchCollector.status)
                return st if st.current_batch_id and st.current_batch_id != first else None

            st = await eventually(next_batch, 30, "the next batch", interval=0)
            second = st.current_batch_id
            assert (await batch_status(engine, second)).config_version == v2
            assert await config_version_attribute(
                engine.client.get_workflow_handle(second)) == v2
            assert [(b.batch_id, b.config_version) for b in st.recent_batches] == [(first, v1)]
            assert st.config_version == v2  # what /status.json shows as the collector's
    finally:
        koji.close()


async def test_a_worker_refreshes_by_itself_when_no_scheduled_refresh_comes(
    engine_sim: Simulator, tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "ebs.yaml", engine_sim, "127.0.0.1:7233", "q",
                          timers={"config_refresh": 0.05})
    holder = ConfigHolder(str(config))
    holder.load()
    first = holder.version
    loop = asyncio.create_task(refresh_when_due(holder))
    try:
        data = yaml.safe_load(config.read_text())
        data["configuration"]["control"] = {"pause": True}
        config.write_text(yaml.safe_dump(data))
        await until(lambda: holder.version != first or loop.done(), 10, "a new version")
        assert not loop.done()
        assert holder.config.configuration.control.pause
    finally:
        loop.cancel()
    # A config built in code has nothing to re-read: the loop ends at once.
    await asyncio.wait_for(refresh_when_due(ConfigHolder.fixed(holder.config)), timeout=1)
