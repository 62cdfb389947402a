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
_Decode = Callable[[Any], Any]


class _NotFlat(Exception):
    """A value the fast path is not sure of: the SDK's generic path decides."""


def _scalar(kinds: tuple[type, ...], item: Any) -> Any:
    if type(item) in kinds:
        return item
    if type(item) is int and float in kinds:
        return float(item)  # as the SDK makes it
    raise _NotFlat


class FlatDataclasses(JSONTypeConverter):
    """Decodes dataclasses built of scalars, optional values, str/int enums,
    lists, string-keyed dicts and other such dataclasses (TagEvent, HeldEvent,
    PackageResult, CollectorState...) with decoders made once per class.

    The SDK's generic path calls typing.get_type_hints for every value it
    decodes, which in the workflow sandbox costs some 0.3 ms a value: a
    collector workflow task that received 3,000 tags in a burst spent over
    2 s decoding them and tripped the SDK's deadlock detector, and every
    hand-over to the queue holders paid it once per event. Anything this is
    not sure of (a type it does not know, a value of another type, an unknown
    enum value, a missing field) it leaves to the generic path, which also
    gives the errors; unknown keys are ignored, as the generic path does.
    tests/engine/test_payload_codec.py checks every contract against the
    generic path."""

    def __init__(self) -> None:
        self._classes: dict[type, dict[str, _Decode] | None] = {}

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not isinstance(hint, type) or not isinstance(value, dict):
            return JSONTypeConverter.Unhandled
        fields = self._fields(hint)
        if fields is None:
            return JSONTypeConverter.Unhandled
        try:
            return self._build(hint, fields, value)
        except _NotFlat:
            return JSONTypeConverter.Unhandled

    @staticmethod
    def _build(hint: type, fields: dict[str, _Decode], value: Any) -> Any:
        if type(value) is not dict:
            raise _NotFlat
        kwargs = {}
        for name, item in value.items():
            decode = fields.get(name)
            if decode is not None:
                kwargs[name] = decode(item)
        try:
            return hint(**kwargs)
        except TypeError:  # a field missing: the generic path words the error
            raise _NotFlat from None

    def _fields(self, hint: type) -> dict[str, _Decode] | None:
        try:
            return self._classes[hint]
        except KeyError:
            pass
        self._classes[hint] = None  # (a class that contains itself stays generic)
        fields: dict[str, _Decode] | None = None
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            fields = {}
            for field in dataclasses.fields(hint):
                decode = self._decoder(hints[field.name]) if field.init else None
                if decode is None:
                    fields = None
                    break
                fields[field.name] = decode
        self._classes[hint] = fields
        return fields

    def _decoder(self, kind: Any) -> _Decode | None:
        """How to decode a value of type `kind`, or None if not handled here."""
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin in (typing.Union, types.UnionType):
            if all(k in _SCALARS for k in args):
                return lambda item: _scalar(args, item)
            others = [k for k in args if k is not type(None)]
            inner = self._decoder(others[0]) if len(others) == 1 else None
            if inner is None:
                return None
            return lambda item: None if item is None else inner(item)
        if kind in _SCALARS:
            kinds = (kind,)
            return lambda item: _scalar(kinds, item)
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return _enum_decoder(kind)
        if origin is list and len(args) == 1:
            each = self._decoder(args[0])
            return None if each is None else lambda item: [each(x) for x in _a(list, item)]
        if origin is dict and len(args) == 2 and args[0] is str:
            value = self._decoder(args[1])
            return None if value is None else lambda item: {
                _a(str, k): value(v) for k, v in _a(dict, item).items()}
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            fields = self._fields(kind)
            cls = kind
            return None if fields is None else lambda item: self._build(cls, fields, item)
        return None


def _a(kind: type, item: Any) -> Any:
    """`item` if it is exactly of type `kind`."""
    if type(item) is not kind:
        raise _NotFlat
    return item


def _enum_decoder(kind: type[enum.Enum]) -> _Decode | None:
    if issubclass(kind, str):
        base: type = str
    elif issubclass(kind, int):
        base = int
    else:
        return None

    def member(item: Any) -> Any:
        try:
            return kind(_a(base, item))
        except ValueError:
            raise _NotFlat from None
    return member


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
