"""ebs's Temporal data converter: the default one, plus zlib for large payloads
(and a fast decoder for flat dataclasses: FlatDataclasses).

A RebuildBatch of 2,000 packages (``control.max_batch_packages``) returns a
BatchResult of 0.8-1.4 MB of JSON, and its ``get_builds`` activity result is
about 550 KB: over Temporal's 512 KB payload warning and near its 2 MB limit.
That JSON compresses some 20x, so every client, worker and replayer of ebs
uses DATA_CONVERTER, whose codec zlib-compresses a payload larger than
COMPRESS_ABOVE and leaves every other payload byte for byte as the default
converter writes it (the approach of Temporal's samples-go ``remote-codec``).

The Web UI and the ``temporal`` CLI show compressed payloads through the codec
server in the API (``POST /codec/decode``, ebs.api.codec); all other payloads
stay readable without it, and histories recorded before the codec (no
compressed payload) decode as before.

Imports only temporalio (and its protobuf), nothing of ebs: bench/harness.py
loads this file by its path.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    PayloadCodec,
)

# Metadata `encoding` of a compressed payload; its data is the zlib stream of
# the original Payload (metadata and data) serialized as protobuf.
ENCODING = b"binary/zlib"

# Payloads up to 64 KiB (serialized) stay as they are. Ordinary inputs,
# signals and results of ebs are far below it (the collector's status answer:
# 26 KB at most), so the Web UI shows them readable with no codec server, and
# compressing them would save little; what crosses it is the per-package data
# of a large batch (its result and `status` query answer, get_builds, a large
# attempt's input), which
# shrinks 10-20x: a 2,000-package BatchResult of 1.4 MB becomes 60-140 KB, far
# from Temporal's 512 KB warning. Even a payload just under the threshold is 8x
# below that warning.
COMPRESS_ABOVE = 64 * 1024

# zlib's default level: a 1.5 MB 2,000-package result compresses in ~35 ms
# here; level 9 saves ~1% more for twice the CPU.
LEVEL = 6

# A compressed payload may not unpack to more than this: the API's public
# /codec/decode must not be made to allocate gigabytes by a small zlib bomb.
# ~35x the largest payload ebs writes (a 5,000-package batch, ~3.5 MB of JSON).
MAX_DECODED = 128 * 1024 * 1024


class PayloadTooLarge(ValueError):
    """A compressed payload that unpacks to more than MAX_DECODED bytes."""


class ZlibCodec(PayloadCodec):
    """Compresses payloads over `threshold` serialized bytes (when that makes
    them smaller); decodes the ones it marked and passes every other through."""

    def __init__(self, threshold: int = COMPRESS_ABOVE, level: int = LEVEL) -> None:
        self.threshold = threshold
        self.level = level

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        if payload.ByteSize() <= self.threshold:
            return payload
        packed = zlib.compress(payload.SerializeToString(), self.level)
        if len(packed) >= payload.ByteSize():
            return payload  # incompressible: leave it readable
        return Payload(metadata={"encoding": ENCODING}, data=packed)


def decode_one(payload: Payload) -> Payload:
    if payload.metadata.get("encoding") != ENCODING:
        return payload
    inflate = zlib.decompressobj()
    raw = inflate.decompress(payload.data, MAX_DECODED)
    if inflate.unconsumed_tail:
        raise PayloadTooLarge(f"a binary/zlib payload unpacks to more than {MAX_DECODED} bytes")
    if not inflate.eof:
        raise ValueError("a binary/zlib payload is truncated")
    try:
        return Payload.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"a binary/zlib payload does not hold a Payload: {err}") from err


_SCALARS = (str, int, float, bool, type(None))


class _NotFlat(Exception):
    """A value the fast path is not sure of: the SDK's generic path decides."""


def _scalar(kinds: tuple[type, ...], item: Any) -> Any:
    if type(item) in kinds:
        return item
    if type(item) is int and float in kinds:
        return float(item)  # as the SDK makes it
    raise _NotFlat


def _field_decoder(kind: Any) -> Callable[[Any], Any] | None:
    """How to decode one field of type `kind`, or None if the fast path does
    not handle that type: scalars and optional scalars, str/int enums, and
    lists of scalars."""
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    kinds = typing.get_args(kind) if union else (kind,)
    if all(k in _SCALARS for k in kinds):
        return lambda item: _scalar(kinds, item)
    if isinstance(kind, type) and issubclass(kind, enum.Enum) and issubclass(kind, str | int):
        base = str if issubclass(kind, str) else int

        def member(item: Any) -> Any:
            if type(item) is not base:
                raise _NotFlat
            try:
                return kind(item)
            except ValueError:
                raise _NotFlat from None
        return member
    args = typing.get_args(kind)
    if typing.get_origin(kind) is list and len(args) == 1 and args[0] in _SCALARS:

        def scalars(item: Any) -> list[Any]:
            if type(item) is not list:
                raise _NotFlat
            return [_scalar(args, x) for x in item]
        return scalars
    return None


_Fields = dict[str, Callable[[Any], Any]]


class FlatDataclasses(JSONTypeConverter):
    """Decodes a dataclass whose fields are all scalars, optional scalars,
    str/int enums or lists of scalars, such as TagEvent, BuildOutcome or
    PackageResult, by calling the class directly.

    The SDK's generic path calls typing.get_type_hints for every value it
    decodes, which in the workflow sandbox costs some 0.3 ms a value: a
    collector workflow task that received 3,000 tags in a burst spent over
    2 s decoding them and tripped the SDK's deadlock detector. This reads each
    class's fields once. Anything it is not sure of (a nested dataclass, a
    value of another type, an unknown enum value) it leaves to the generic
    path, which also gives the errors; unknown keys are ignored, as the
    generic path does."""

    def __init__(self) -> None:
        self._fields: dict[type, _Fields | None] = {}

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not isinstance(value, dict) or not isinstance(hint, type):
            return JSONTypeConverter.Unhandled
        try:
            fields = self._fields[hint]
        except KeyError:
            fields = self._fields[hint] = _flat_fields(hint)
        if fields is None:
            return JSONTypeConverter.Unhandled
        kwargs = {}
        try:
            for name, item in value.items():
                decode = fields.get(name)
                if decode is not None:
                    kwargs[name] = decode(item)
        except _NotFlat:
            return JSONTypeConverter.Unhandled
        return hint(**kwargs)


def _flat_fields(hint: type) -> _Fields | None:
    if not dataclasses.is_dataclass(hint):
        return None
    hints = typing.get_type_hints(hint)
    fields: _Fields = {}
    for field in dataclasses.fields(hint):
        decode = _field_decoder(hints[field.name]) if field.init else None
        if decode is None:
            return None
        fields[field.name] = decode
    return fields


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default payload converters, its JSON one with FlatDataclasses."""

    def __init__(self) -> None:
        super().__init__(*(
            JSONPlainPayloadConverter(custom_type_converters=[FlatDataclasses()])
            if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ))


CODEC = ZlibCodec()
DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=PayloadConverter, payload_codec=CODEC)
