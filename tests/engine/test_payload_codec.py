"""ebs.payload_codec: large payloads compressed, small ones untouched, old ones readable."""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ebs.contracts.batch import BatchResult, PackageResult
from ebs.payload_codec import (
    COMPRESS_ABOVE,
    DATA_CONVERTER,
    ENCODING,
    PayloadTooLarge,
    ZlibCodec,
    decode_one,
)

WARN_LIMIT = 512 * 1024  # Temporal's payload size warning


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


async def test_small_payload_is_left_byte_for_byte() -> None:
    (plain,) = DataConverter.default.payload_converter.to_payloads(
        [{"components": ["bash", "glibc"]}])
    (encoded,) = await DATA_CONVERTER.encode([{"components": ["bash", "glibc"]}])
    assert encoded.SerializeToString() == plain.SerializeToString()
    assert encoded.metadata["encoding"] == b"json/plain"


async def test_large_payload_is_compressed_marked_and_round_trips() -> None:
    result = big_batch_result()
    (plain,) = DataConverter.default.payload_converter.to_payloads([result])
    assert plain.ByteSize() > 1_000_000  # what crossed 512 KB before the codec
    (encoded,) = await DATA_CONVERTER.encode([result])
    assert encoded.metadata["encoding"] == ENCODING
    assert dict(encoded.metadata) == {"encoding": ENCODING}
    assert encoded.ByteSize() < WARN_LIMIT
    # the original Payload, metadata included, inside
    assert Payload.FromString(zlib.decompress(encoded.data)) == plain
    (back,) = await DATA_CONVERTER.decode([encoded], [BatchResult])
    assert back == result


async def test_threshold_is_on_the_serialized_size() -> None:
    codec = ZlibCodec()
    at = Payload(metadata={"encoding": b"json/plain"}, data=b"")
    at.data = b'"' + b"x" * (COMPRESS_ABOVE - at.ByteSize() - 10) + b'"'
    while at.ByteSize() < COMPRESS_ABOVE:
        at.data = at.data[:-1] + b'x"'
    assert at.ByteSize() == COMPRESS_ABOVE
    over = Payload(metadata=dict(at.metadata), data=at.data[:-1] + b'x"')
    assert (await codec.encode([at]))[0] is at
    (packed,) = await codec.encode([over])
    assert packed.metadata["encoding"] == ENCODING and packed.ByteSize() < 1024


async def test_incompressible_large_payload_stays_readable() -> None:
    noise = Payload(metadata={"encoding": b"binary/plain"},
                    data=b"".join(hashlib.sha512(str(i).encode()).digest()
                                  for i in range(2 * COMPRESS_ABOVE // 64)))
    (out,) = await ZlibCodec().encode([noise])
    assert out is noise


async def test_payloads_of_an_old_history_decode_as_before() -> None:
    """Histories recorded before the codec hold json/plain (and binary/null)
    payloads: decode passes them through."""
    old = [
        Payload(metadata={"encoding": b"json/plain"},
                data=json.dumps({"batch_id": "b1", "outcome": "succeeded"}).encode()),
        Payload(metadata={"encoding": b"binary/null"}),
    ]
    assert await DATA_CONVERTER.payload_codec.decode(old) == old  # type: ignore[union-attr]
    result, none = await DATA_CONVERTER.decode(old, [BatchResult, type(None)])
    assert result == BatchResult(batch_id="b1", outcome="succeeded") and none is None


def test_a_zlib_bomb_is_refused() -> None:
    bomb = Payload(metadata={"encoding": ENCODING},
                   data=zlib.compress(b"\0" * (200 * 1024 * 1024), 9))
    assert bomb.ByteSize() < 1024 * 1024
    with pytest.raises(PayloadTooLarge):
        decode_one(bomb)
    with pytest.raises(ValueError, match="truncated"):
        decode_one(Payload(metadata={"encoding": ENCODING},
                           data=zlib.compress(b"x" * 100_000)[:-20]))


# ---- through a Temporal server ----------------------------------------------------


@activity.defn(name="codec_test_big_result")
def big_result_activity(n: int) -> BatchResult:
    return big_batch_result(n)


@workflow.defn(name="CodecTestLargeResult", sandboxed=False)
class LargeResultWorkflow:
    @workflow.run
    async def run(self, n: int) -> BatchResult:
        return await workflow.execute_activity(
            big_result_activity, n, start_to_close_timeout=timedelta(seconds=60))


async def test_a_large_result_crosses_the_time_skipping_server_compressed(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = time_skipping_env.client
    assert client.data_converter is DATA_CONVERTER
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        async with Worker(client, task_queue=queue, workflows=[LargeResultWorkflow],
                          activities=[big_result_activity], activity_executor=pool):
            handle = await client.start_workflow(
                LargeResultWorkflow.run, 2000, id=f"codec-{queue}", task_queue=queue)
            result = await handle.result()
    assert result == big_batch_result(2000)
    history = await handle.fetch_history()
    big = [p for e in history.events
           for p in (list(e.activity_task_completed_event_attributes.result.payloads)
                     + list(e.workflow_execution_completed_event_attributes.result.payloads))]
    assert len(big) == 2
    for payload in big:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.ByteSize() < WARN_LIMIT
