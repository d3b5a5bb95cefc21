"""A bounded protobuf wire-format reader, for fields openge's .proto does not declare.

Layer: om. Device oms carry GE fields that openge's ``ge_ir.proto`` leaves out (protobuf keeps
them as unknown fields) and messages openge has no module for (FlowModelDef, SubmodelDef).
``fields`` splits a message into ``(number, wire_type, value)`` without copying: varints and
fixed values as ints, length-delimited values as memoryviews. Every length is checked.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from openge.om.device.binio import invalid

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
#: Most fields read from one message (a guard against pathological inputs).
MAX_FIELDS = 1 << 22


def _varint(data: memoryview, pos: int, what: str) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise invalid(f"{what}: a varint runs past the end of the message")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & ((1 << 64) - 1), pos
    raise invalid(f"{what}: a varint longer than 10 bytes")


def fields(data: memoryview, what: str) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a serialized message."""
    pos, count = 0, 0
    while pos < len(data):
        count += 1
        if count > MAX_FIELDS:
            raise invalid(f"{what}: more than {MAX_FIELDS} fields")
        key, pos = _varint(data, pos, what)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise invalid(f"{what}: field number 0")
        value: int | memoryview
        if wtype == VARINT:
            value, pos = _varint(data, pos, what)
        elif wtype in (FIXED64, FIXED32):
            width = 8 if wtype == FIXED64 else 4
            if pos + width > len(data):
                raise invalid(f"{what}: a fixed field runs past the end of the message")
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        elif wtype == LEN:
            length, pos = _varint(data, pos, what)
            if length > len(data) - pos:
                raise invalid(f"{what}: field {number} of {length} bytes runs past the end")
            value = data[pos : pos + length]
            pos += length
        else:
            raise invalid(f"{what}: wire type {wtype} (groups are not used by GE)")
        yield number, wtype, value


def signed64(value: int) -> int:
    """A varint read as int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(data: memoryview, what: str) -> list[int]:
    """A packed repeated int64/bool field."""
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos, what)
        out.append(signed64(value))
    return out


def packed_floats(data: memoryview, what: str) -> list[float]:
    """A packed repeated float field."""
    if len(data) % 4:
        raise invalid(f"{what}: packed floats of {len(data)} bytes")
    return [float(v) for v in struct.unpack(f"<{len(data) // 4}f", data)]


def text(value: int | memoryview, what: str) -> str:
    """A string field (invalid UTF-8 replaced)."""
    if isinstance(value, int):
        raise invalid(f"{what}: expected a string, got a number")
    return bytes(value).decode("utf-8", errors="replace")


__all__ = [
    "FIXED32",
    "FIXED64",
    "LEN",
    "VARINT",
    "fields",
    "packed_floats",
    "packed_varints",
    "signed64",
    "text",
]
