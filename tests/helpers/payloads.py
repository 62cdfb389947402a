"""A large batch result, and a workflow that returns one (ebs.payload_codec tests)."""

from __future__ import annotations

import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from ebs.contracts.batch import BatchResult, PackageResult


def big_batch_result(n: int = 2000) -> BatchResult:
    """A finished batch of `n` packages, filled as a real one is (distinct
    names, NVRs, commit hashes, task links, update URLs)."""
    koji, bodhi = "https://koji.fedoraproject.org/koji", "https://bodhi.fedoraproject.org"
    packages = []
    for i in range(n):
        name = f"python-package-{i:04d}"
        commit = hashlib.sha1(name.encode()).hexdigest()
        tasks = [130_000_000 + 3 * i, 130_000_001 + 3 * i]
        alias = f"FEDORA-ELN-2026-{hashlib.sha1(str(i // 250).encode()).hexdigest()[:10]}"
        packages.append(PackageResult(
            component=name, rawhide_nvr=f"{name}-1.{i}.0-1.fc45", state="succeeded",
            ordering=1000, attempts=2, task_ids=tasks,
            task_urls=[f"{koji}/taskinfo?taskID={t}" for t in tasks],
            nvr=f"{name}-1.{i}.0-1.eln152",
            scm_url=f"git+https://src.fedoraproject.org/rpms/{name}.git#{commit}",
            build_id=2_600_000 + i, update_alias=alias, update_url=f"{bodhi}/updates/{alias}",
            reason="buildArch failed once: mock exited with status 30" if i % 7 == 0 else "",
            message_nvr=f"{name}-1.{i}.0-1.fc45", message_build_id=2_500_000 + i,
            rawhide_build_id=2_500_000 + i,
        ))
    return BatchResult(
        batch_id="batch-2026-12-02T16:00:00Z-1a2b3c", outcome="succeeded", packages=packages,
        side_tags=["eln-build-side-99001"], errata_tags=["eln-build-side-99002"],
        updates=sorted({p.update_alias for p in packages}),
        started_at="2026-12-02T16:00:00Z", finished_at="2026-12-02T22:41:13Z",
        config_version="git:0123456789ab",
    )


@activity.defn(name="codec_test_big_result")
def big_result_activity(n: int) -> BatchResult:
    return big_batch_result(n)


@workflow.defn(name="CodecTestLargeResult", sandboxed=False)
class LargeResultWorkflow:
    @workflow.run
    async def run(self, n: int) -> BatchResult:
        return await workflow.execute_activity(
            big_result_activity, n, start_to_close_timeout=timedelta(seconds=60))


async def run_large_result(client: Client, packages: int = 2000) -> WorkflowHandle[
        LargeResultWorkflow, BatchResult]:
    """Run LargeResultWorkflow to its end on a worker of `client`; its handle."""
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        async with Worker(client, task_queue=queue, workflows=[LargeResultWorkflow],
                          activities=[big_result_activity], activity_executor=pool):
            handle = await client.start_workflow(
                LargeResultWorkflow.run, packages, id=f"codec-{queue}", task_queue=queue)
            await handle.result()
    return handle
