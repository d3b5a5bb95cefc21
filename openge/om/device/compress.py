"""Undo GE's attribute compression of a device ModelDef (``om_compress_version`` = 1).

Layer: om. GE replaces each op and tensor-desc attr name by ``"\\0"`` followed by base-127
digits (each stored +1, least significant first) that index the model attr
``attr_name_enum``; for names flagged in ``attrs_use_string_value`` the string value (or list
of strings) is replaced by its index (indices) in ``attr_value_enum``. ``decompress`` restores
names and values in place, checking every index.
"""

from __future__ import annotations

from typing import Any

from openge.om.device.binio import invalid
from openge.om.ge_ir_pb2 import AttrDef

_LV = AttrDef.ListValue
MAX_ENUM = 1 << 22
_MAX_DIGITS = 5  # 127**5 > MAX_ENUM


def decode_key(key: str) -> int | None:
    """The name index of a compressed attr key, or None for a plain name."""
    if not key.startswith("\0"):
        return None
    digits = key[1:]
    if not digits or len(digits) > _MAX_DIGITS:
        raise invalid(f"compressed attr name {key!r} has {len(digits)} digits")
    index = 0
    for i, ch in enumerate(digits):
        code = ord(ch)
        if not 1 <= code <= 127:
            raise invalid(f"compressed attr name {key!r} has digit byte {code}")
        index += (code - 1) * 127**i
    return index


def _list_str(md: Any, key: str) -> list[str]:
    if key not in md.attr:
        raise invalid(f"compressed model without the model attr {key!r}")
    values = list(md.attr[key].list.s)
    if len(values) > MAX_ENUM:
        raise invalid(f"model attr {key!r} has {len(values)} entries; at most {MAX_ENUM}")
    return [v.decode("utf-8", errors="replace") for v in values]


def is_compressed(md: Any) -> bool:
    """True when the ModelDef records attribute compression."""
    return "om_compress_version" in md.attr and md.attr["om_compress_version"].i == 1


def decompress(md: Any) -> int:
    """Restore compressed attr names and values in every graph; returns how many were restored.

    A ModelDef without compression is left as it is (0).
    """
    if "om_compress_version" not in md.attr:
        return 0
    version = md.attr["om_compress_version"].i
    if version != 1:
        raise invalid(f"om_compress_version {version}; openge undoes version 1")
    names = _list_str(md, "attr_name_enum")
    values = [v.encode() for v in _list_str(md, "attr_value_enum")]
    if "attrs_use_string_value" not in md.attr:
        raise invalid("compressed model without the model attr 'attrs_use_string_value'")
    use_string = list(md.attr["attrs_use_string_value"].list.b)
    if len(use_string) != len(names):
        raise invalid(
            f"attr_name_enum has {len(names)} names but attrs_use_string_value "
            f"{len(use_string)} flags"
        )
    restored = 0
    for graph in md.graph:
        for op in graph.op:
            where = f"op {op.name!r}"
            restored += _restore(op.attr, names, values, use_string, where)
            for desc in list(op.input_desc) + list(op.output_desc):
                restored += _restore(desc.attr, names, values, use_string, where)
    return restored


def _value_of(values: list[bytes], index: int, where: str) -> bytes:
    if not 0 <= index < len(values):
        raise invalid(f"{where}: value index {index} outside attr_value_enum ({len(values)})")
    return values[index]


def _restore(
    attrs: Any, names: list[str], values: list[bytes], use_string: list[bool], where: str
) -> int:
    count = 0
    for key in [k for k in attrs if k.startswith("\0")]:
        index = decode_key(key)
        assert index is not None
        if index >= len(names):
            raise invalid(f"{where}: attr name index {index} outside attr_name_enum ({len(names)})")
        name = names[index]
        value = AttrDef()
        value.CopyFrom(attrs[key])
        del attrs[key]
        if use_string[index]:
            kind = value.WhichOneof("value")
            if kind == "i":
                value.s = _value_of(values, value.i, f"{where} attr {name!r}")
            elif kind == "list":
                items = [_value_of(values, i, f"{where} attr {name!r}") for i in value.list.i]
                value.list.ClearField("i")
                value.list.s.extend(items)
                value.list.val_type = _LV.VT_LIST_STRING
        attrs[name].CopyFrom(value)
        count += 1
    return count


__all__ = ["decode_key", "decompress", "is_compressed"]
