"""A ModelDef (or any protobuf message) as JSON-ready dicts, the way ``atc --mode=1`` shows it.

Layer: om. Field names are the .proto names; maps are dicts sorted by key; enums are names.
Text bytes show as text; other bytes up to ``BULKY`` long as hex, longer ones (kernel binaries,
the ``tasks`` attr) as ``{"bytes": n, "sha256": …}``. Fields that openge's ge_ir.proto does
not declare are kept by protobuf as unknown fields: they are shown too, under GE's field name
when the number is one of GE's (``subgraph_name``, ``workspace_bytes``, ``list_list_int`` …),
else as ``"#<number>"``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from google.protobuf.unknown_fields import UnknownFieldSet

from openge.om.device import wire

#: Bytes longer than this are summarized by size and SHA-256.
BULKY = 64

# GE ge_ir.proto fields openge's .proto leaves out: (message, number) -> (name, kind).
_GE_FIELDS: dict[tuple[str, int], tuple[str, str]] = {
    ("OpDef", 11): ("attr_groups", "message"),
    ("OpDef", 20): ("has_out_attr", "bool"),
    ("OpDef", 24): ("src_name", "string"),
    ("OpDef", 25): ("src_index", "int"),
    ("OpDef", 26): ("dst_name", "string"),
    ("OpDef", 27): ("dst_index", "int"),
    ("OpDef", 28): ("input_i", "int"),
    ("OpDef", 29): ("output_i", "int"),
    ("OpDef", 30): ("workspace", "int"),
    ("OpDef", 31): ("workspace_bytes", "int"),
    ("OpDef", 32): ("is_input_const", "bool"),
    ("OpDef", 35): ("subgraph_name", "string"),
    ("TensorDescriptor", 6): ("attr_groups", "message"),
    ("TensorDescriptor", 9): ("has_out_attr", "bool"),
    ("TensorDescriptor", 12): ("reuse_input", "bool"),
    ("TensorDescriptor", 13): ("output_tensor", "bool"),
    ("TensorDescriptor", 14): ("device_type", "string"),
    ("TensorDescriptor", 15): ("input_tensor", "bool"),
    ("TensorDescriptor", 16): ("real_dim_cnt", "int"),
    ("TensorDescriptor", 17): ("reuse_input_index", "int"),
    ("TensorDescriptor", 19): ("cmps_size", "int"),
    ("TensorDescriptor", 20): ("cmps_tab", "string"),
    ("TensorDescriptor", 21): ("cmps_tab_offset", "int"),
    ("AttrDef", 14): ("list_list_int", "list_list_int"),
    ("AttrDef", 16): ("list_list_float", "list_list_float"),
    ("AttrDef", 17): ("expression", "string"),
    ("GraphDef", 12): ("attr_groups", "message"),
    ("ModelDef", 12): ("attr_groups", "message"),
}

#: Fields GE declares repeated (an unknown one is always shown as a list).
_REPEATED = {"src_name", "src_index", "dst_name", "dst_index", "input_i", "output_i"}
_REPEATED |= {"workspace", "workspace_bytes", "is_input_const", "subgraph_name"}


def show_bytes(raw: bytes) -> Any:
    """Short text as text, short binary as hex, anything longer than BULKY as a summary."""
    if len(raw) > BULKY:
        return {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": raw.hex()}
    return text if text.isprintable() else {"hex": raw.hex()}


def message_to_dict(msg: Any) -> dict[str, Any]:
    """``msg`` (a protobuf message) as a dict of plain values, unknown fields included."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            out[fd.name] = {k: _value(value_fd, value[k]) for k in sorted(value)}
        elif fd.is_repeated:
            out[fd.name] = [_value(fd, v) for v in value]
        else:
            out[fd.name] = _value(fd, value)
    _add_unknown(msg, out)
    return out


def _value(fd: Any, value: Any) -> Any:
    if fd.message_type is not None:
        return message_to_dict(value)
    if fd.type == fd.TYPE_ENUM:
        item = fd.enum_type.values_by_number.get(value)
        return item.name if item is not None else value
    if fd.type == fd.TYPE_BYTES:
        return show_bytes(bytes(value))
    return value


def _add_unknown(msg: Any, out: dict[str, Any]) -> None:
    mname = msg.DESCRIPTOR.name
    for item in UnknownFieldSet(msg):
        number, wtype, data = item.field_number, item.wire_type, item.data
        name, kind = _GE_FIELDS.get((mname, number), (f"#{number}", "raw"))
        value = _unknown_value(kind, wtype, data, f"{mname} field {number}")
        if isinstance(value, list) and name in out and isinstance(out[name], list):
            out[name].extend(value)  # a repeated field seen in several chunks
        elif name in _REPEATED:
            out.setdefault(name, []).extend(value if isinstance(value, list) else [value])
        else:
            out[name] = value


def _unknown_value(kind: str, wtype: int, data: Any, what: str) -> Any:
    if wtype == wire.VARINT:
        value = wire.signed64(int(data))
        return bool(value) if kind == "bool" else value
    if wtype != wire.LEN:
        return int(data) if isinstance(data, int) else str(data)
    raw = memoryview(bytes(data))
    if kind in ("int", "bool"):
        values = wire.packed_varints(raw, what)
        return [bool(v) for v in values] if kind == "bool" else values
    if kind == "string":
        return wire.text(raw, what)
    if kind == "list_list_int":
        return [
            [v for n, _, sub in wire.fields(inner, what) if n == 1 for v in _ints(sub, what)]
            for n, _, inner in wire.fields(raw, what)
            if n == 1 and not isinstance(inner, int)
        ]
    if kind == "list_list_float":
        return [
            [v for n, _, sub in wire.fields(inner, what) if n == 1 for v in _floats(sub, what)]
            for n, _, inner in wire.fields(raw, what)
            if n == 1 and not isinstance(inner, int)
        ]
    return show_bytes(bytes(raw))


def _ints(value: Any, what: str) -> list[int]:
    return [wire.signed64(value)] if isinstance(value, int) else wire.packed_varints(value, what)


def _floats(value: Any, what: str) -> list[float]:
    if isinstance(value, int):
        import struct

        return [struct.unpack("<f", value.to_bytes(4, "little"))[0]]
    return wire.packed_floats(value, what)


def unknown_fields(msg: Any) -> dict[str, Any]:
    """Only the fields of ``msg`` (not nested) that openge's .proto does not declare."""
    out: dict[str, Any] = {}
    _add_unknown(msg, out)
    return out


__all__ = ["BULKY", "message_to_dict", "show_bytes", "unknown_fields"]
