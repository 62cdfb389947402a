"""Every package of a large batch is findable by EbsPackages (the batch's own
value holds ~150 names; PackageIndex children hold the rest), and `ebs
history` / `/history` map an index child back to its batch. On the dev server:
the time-skipping server has no visibility queries."""

from __future__ import annotations

import uuid
from functools import partial

from temporalio.testing import WorkflowEnvironment

from ebs.api.control import Control
from ebs.bodhi.adapter import BodhiAdapter
from ebs.config.holder import ConfigHolder
from ebs.contracts.batch import BatchRequest
from ebs.contracts.events import TagEvent
from ebs.contracts.search import packages_value
from ebs.devstack.waiting import eventually
from ebs.koji.adapter import KojiAdapter
from ebs.simulator import ListSink, Simulator
from ebs.worker import build_worker
from ebs.workflows.batch import RebuildBatch
from ebs.workflows.index import name_chunks
from tests.helpers.engine import _package_lists, engine_config


def test_name_chunks_cover_every_name_once_within_the_value_limit() -> None:
    names = [f"python-some-long-package-name-{i:04d}" for i in range(2000)]
    chunks = name_chunks(names)
    assert [n for c in chunks for n in c] == names
    assert all(packages_value(c) == c for c in chunks) and len(chunks) > 10


async def test_every_package_of_a_large_batch_is_findable(
    dev_server_env: WorkflowEnvironment,
) -> None:
    sim = Simulator(seed=3, sink=ListSink())
    sim.start("127.0.0.1", 0)
    cfg = engine_config(sim)
    holder = ConfigHolder.fixed(cfg, _package_lists(sim, cfg),
                                trigger_tag=sim.layout.trigger_tag)
    koji = KojiAdapter(cfg.configuration.koji, timeout=30, tag_wait=10)
    queue = f"ebs-find-{uuid.uuid4().hex[:8]}"
    client = dev_server_env.client
    worker = build_worker(client, holder=holder, koji=koji,
                          bodhi=BodhiAdapter(cfg.configuration.bodhi), task_queue=queue)
    tag = uuid.uuid4().hex[:6]
    names = [f"findable-{tag}-component-{i:03d}" for i in range(400)]
    try:
        async with worker:
            batch_id = f"ebs-batch-find-{tag}"
            handle = await client.start_workflow(
                RebuildBatch.run,
                BatchRequest(batch_id, [TagEvent(n, f"{n}-1-1.fc45") for n in names],
                               holder.batch_settings()),
                id=batch_id, task_queue=queue)
            result = await handle.result()
            assert len(result.packages) == 400  # (no such builds: all fail, fast)
            control = Control(client, queue)
            for name in (names[0], names[250], names[-1]):
                runs = await eventually(partial(control.history, name), 30,
                                        f"{name} to be findable", interval=0.5)
                assert [r.batch.batch_id for r in runs] == [batch_id]
                assert runs[0].package is not None and runs[0].package.component == name
    finally:
        koji.close()
        sim.stop()
