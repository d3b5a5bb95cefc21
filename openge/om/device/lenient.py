"""Decode a ModelDef whose string fields hold invalid UTF-8 (GE's C++ writer allows it).

Layer: om. Python's protobuf refuses a proto3 ``string`` field that is not UTF-8, while GE's
C++ serializer only logs it, so a device om can carry, e.g., op names in a legacy encoding.
``decode_lenient`` parses the bytes with a copy of openge's ModelDef schema in which every
plain string field is ``bytes``, replaces invalid sequences (U+FFFD), and returns the strict
``ge.proto.ModelDef`` re-parsed from that; map keys stay strings (attr names are ASCII).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from openge.om import ge_ir_pb2 as pb

_PACKAGE = "openge_lenient.ge_ir"


@lru_cache(maxsize=1)
def _lenient_class() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(fdp)
    fdp.name = "openge_lenient_ge_ir.proto"
    fdp.package = _PACKAGE

    def relax(msg: Any) -> None:
        for nested in msg.nested_type:
            if not nested.options.map_entry:
                relax(nested)
            else:
                for f in nested.field:
                    if f.type_name.startswith(".ge.proto."):
                        f.type_name = f.type_name.replace(".ge.proto.", f".{_PACKAGE}.", 1)
        for f in msg.field:
            if f.type == f.TYPE_STRING:
                f.type = f.TYPE_BYTES
            if f.type_name.startswith(".ge.proto."):
                f.type_name = f.type_name.replace(".ge.proto.", f".{_PACKAGE}.", 1)

    for msg in fdp.message_type:
        relax(msg)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ModelDef"))


def _clean(msg: Any) -> None:
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            if fd.message_type.GetOptions().map_entry:
                items = value.values()
                if fd.message_type.fields_by_name["value"].message_type is not None:
                    for v in items:
                        _clean(v)
            elif fd.is_repeated:
                for v in value:
                    _clean(v)
            else:
                _clean(value)
        elif fd.type == fd.TYPE_BYTES and _was_string(fd):
            if fd.is_repeated:
                fixed = [_utf8(v) for v in value]
                del value[:]
                value.extend(fixed)
            else:
                setattr(msg, fd.name, _utf8(value))


@cache
def _string_fields() -> frozenset[tuple[str, str]]:
    out = set()

    def walk(desc: Any) -> None:
        for f in desc.fields:
            if f.type == f.TYPE_STRING:
                out.add((desc.name, f.name))
        for nested in desc.nested_types:
            walk(nested)

    for desc in pb.DESCRIPTOR.message_types_by_name.values():
        walk(desc)
    return frozenset(out)


def _was_string(fd: Any) -> bool:
    return (fd.containing_type.name, fd.name) in _string_fields()


def _utf8(raw: bytes) -> bytes:
    return raw.decode("utf-8", errors="replace").encode("utf-8")


def decode_lenient(data: Any) -> Any:
    """A strict ``ge.proto.ModelDef`` from bytes whose string fields may not be UTF-8."""
    loose = _lenient_class().FromString(data)
    _clean(loose)
    return pb.ModelDef.FromString(loose.SerializeToString())


__all__ = ["decode_lenient"]
