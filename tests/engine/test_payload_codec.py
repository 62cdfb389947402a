"""ebs.payload_codec: large payloads compressed, small ones untouched, old ones readable."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil
import typing
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, JSONTypeConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from ebs.config.model import TemporalConfig
from ebs.contracts.attempt import AttemptOutcome
from ebs.contracts.batch import BatchResult
from ebs.payload_codec import (
    COMPRESS_ABOVE,
    DATA_CONVERTER,
    ENCODING,
    FlatDataclasses,
    PayloadTooLarge,
    ZlibCodec,
    decode_one,
)
from ebs.temporal_client import connect
from tests.helpers.payloads import LargeResultWorkflow, big_batch_result, run_large_result

ROOT = Path(__file__).resolve().parents[2]
WARN_LIMIT = 512 * 1024  # Temporal's payload size warning


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
    with pytest.raises(ValueError, match="does not hold a Payload"):
        decode_one(Payload(metadata={"encoding": ENCODING}, data=zlib.compress(b"\xff" * 9)))
    with pytest.raises(ValueError, match="truncated"):
        decode_one(Payload(metadata={"encoding": ENCODING},
                           data=zlib.compress(b"x" * 100_000)[:-20]))


# ---- through a Temporal server ----------------------------------------------------


async def test_a_large_result_crosses_the_time_skipping_server_compressed(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    assert client.data_converter is DATA_CONVERTER
    handle = await run_large_result(client)
    assert await handle.result() == big_batch_result(2000)
    history = await handle.fetch_history()
    big = [p for e in history.events
           for p in (list(e.activity_task_completed_event_attributes.result.payloads)
                     + list(e.workflow_execution_completed_event_attributes.result.payloads))]
    assert len(big) == 2
    for payload in big:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.ByteSize() < WARN_LIMIT
    # and a history with compressed payloads replays
    await Replayer(workflows=[LargeResultWorkflow], data_converter=DATA_CONVERTER
                   ).replay_workflow(history)


async def test_ebs_clients_connect_with_the_converter(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    client = await connect(TemporalConfig(address=target))
    assert client.data_converter is DATA_CONVERTER


def _calls_without_converter(path: Path) -> list[str]:
    """Client.connect / WorkflowEnvironment.start_* / Replayer calls in `path`
    that do not pass data_converter=."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = (f"{f.value.id}.{f.attr}" if isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name) else f.id if isinstance(f, ast.Name) else "")
        if name in ("Client.connect", "WorkflowEnvironment.start_local",
                    "WorkflowEnvironment.start_time_skipping", "Replayer"):
            if not any(k.arg == "data_converter" for k in node.keywords):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return found


def test_no_client_environment_or_replayer_without_the_converter() -> None:
    """A client without the codec cannot read a large batch's result: every one
    goes through ebs.temporal_client.connect/connect_to or tests/helpers/temporal."""
    missing = [hit for d in ("ebs", "tests", "bench") for path in sorted((ROOT / d).rglob("*.py"))
               for hit in _calls_without_converter(path)]
    assert not missing, "pass data_converter=DATA_CONVERTER (or use the helpers):\n" + "\n".join(
        missing)


def test_flat_dataclasses_decode_as_the_generic_path_does() -> None:
    """FlatDataclasses (the fast path for TagEvent and the like) gives what the
    SDK's generic decoding gives, and leaves it everything else."""
    from ebs.contracts.batch import PackageResult
    from ebs.contracts.events import TagBatch, TagEvent, TaskStateEvent

    ours, sdk = DATA_CONVERTER.payload_converter, DataConverter.default.payload_converter
    values: list[object] = [
        TagBatch([TagEvent(f"c{i}", f"c{i}-1-1.fc45", i, "f45", event_id=f"m{i}",
                           tagged_at=1000 + i) for i in range(50)]),
        TagEvent("bash", "bash-5.2-1.fc45"),  # defaults, tagged_at None
        TaskStateEvent(7, "CLOSED"),
        BatchResult("b", "succeeded", [PackageResult("a", "a-1", task_ids=[1, 2])]),
    ]
    for value in values:
        payloads = sdk.to_payloads([value])
        assert ours.from_payloads(payloads, [type(value)]) == sdk.from_payloads(
            payloads, [type(value)]) == [value]
    # an int where a float is declared becomes a float, as the SDK makes it
    (event,) = ours.from_payloads(sdk.to_payloads([{"component": "a", "nvr": "a-1",
                                                    "tagged_at": 3}]), [TagEvent])
    assert event.tagged_at == 3.0 and isinstance(event.tagged_at, float)
    # a wrong type is left to the generic path, which refuses it as before
    bad = sdk.to_payloads([{"component": 1, "nvr": "a-1"}])
    with pytest.raises(TypeError):
        sdk.from_payloads(bad, [TagEvent])
    with pytest.raises(TypeError):
        ours.from_payloads(bad, [TagEvent])


def _contract_dataclasses() -> list[type]:
    import ebs.contracts

    found = []
    for info in pkgutil.iter_modules(ebs.contracts.__path__):
        module = importlib.import_module(f"ebs.contracts.{info.name}")
        found += [obj for obj in vars(module).values() if inspect.isclass(obj)
                  and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
    return found


def _mentions_any(kind: object) -> bool:
    """Whether Any is in the type, nested dataclasses too (hypothesis cannot make one)."""
    if kind is typing.Any:
        return True
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return any(_mentions_any(h) for h in typing.get_type_hints(kind).values())
    return any(_mentions_any(arg) for arg in typing.get_args(kind))


@pytest.mark.parametrize("cls", [c for c in _contract_dataclasses() if not _mentions_any(c)],
                         ids=lambda c: c.__name__)
def test_every_contract_decodes_as_the_generic_path_does(cls: type) -> None:
    """Whatever the fast path takes on (flat dataclasses, enums, lists of
    scalars, nested in anything), each contract decodes to what the SDK's
    generic path makes of it (repr: same types too, and NaN equal to NaN)."""
    ours, sdk = DATA_CONVERTER.payload_converter, DataConverter.default.payload_converter

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_type(cls))
    def same(value: object) -> None:
        payloads = sdk.to_payloads([value])
        assert repr(ours.from_payloads(payloads, [cls])) == repr(
            sdk.from_payloads(payloads, [cls]))

    same()


def test_the_fast_path_takes_the_common_contracts() -> None:
    """Not vacuous: the hot contracts are decoded by FlatDataclasses."""
    from ebs.contracts.attempt import AttemptResult, BuildOutcome
    from ebs.contracts.batch import PackageResult
    from ebs.contracts.collector import CollectorState
    from ebs.contracts.events import TagBatch, TagEvent
    from ebs.contracts.koji import TaskStatus
    from ebs.contracts.queue import HeldEvent

    flat = FlatDataclasses()
    for cls in (TagEvent, TagBatch, HeldEvent, BuildOutcome, AttemptResult, PackageResult,
                BatchResult, TaskStatus, CollectorState):
        assert flat._fields(cls) is not None, cls
    assert flat.to_typed_value(BuildOutcome, {"component": "a", "outcome": "failed"}) == \
        BuildOutcome("a", AttemptOutcome.FAILED)
    assert flat.to_typed_value(HeldEvent, {"seq": 3, "event": {"component": "a", "nvr": "a-1"}}
                               ) == HeldEvent(3, TagEvent("a", "a-1"))
    # an unknown enum value, a list of the wrong items, a field missing: left
    # to the SDK, which refuses them
    for cls, value in [
        (BuildOutcome, {"component": "a", "outcome": "gone"}),
        (PackageResult, {"component": "a", "rawhide_nvr": "a-1", "task_ids": ["7"]}),
        (HeldEvent, {"seq": 3, "event": {"component": "a"}}),
    ]:
        assert flat.to_typed_value(cls, value) is JSONTypeConverter.Unhandled
        with pytest.raises(TypeError):
            DATA_CONVERTER.payload_converter.from_payloads(
                DataConverter.default.payload_converter.to_payloads([value]), [cls])
