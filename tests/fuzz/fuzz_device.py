"""atheris harness for untrusted device .om files (made by Ascend ATC): every public reader.

Run (Linux; atheris is in the ``test`` extra)::

    python tests/fuzz/fuzz_device.py [libFuzzer flags, e.g. -max_total_time=600] [corpus dirs]

The target calls, on the same bytes, every public entry point that reads a device om:
``is_device_om`` / ``is_openge_om``, ``read_device_om`` and, on every model block of it and of
each nested om, ``model_def``, ``restored_attrs``, ``weights``, ``kernels``, ``io_info``,
``iter_consts`` (strict and lenient, as ``openge om weights`` does), ``refusals`` and
``to_graph``; ``describe`` / ``describe_text`` / ``to_json`` (``atc --mode=6`` and ``--mode=1``,
through the CLI's ``info_text`` / ``json_doc`` and ``json.dumps``); ``check_compatibility`` and
``query_size``; and ``Model.from_bytes``, which rebuilds and compiles a complete graph: a model
that loads is executed once on zeros (under the small arena limit the harness sets).

The only exception allowed out is ``GeError``: anything else, a hang (``-timeout``) or one
input raising the peak RSS by more than 512 MB is a finding; each one became a test.

Seeds are synthetic device oms built at start by tests/om/device/devom_builder.py
(tests/fuzz/device_seeds.py), one per layout it makes. The mutator is structure-aware: it
splits the file into header and [partition table + payloads] blocks, changes one header field,
one partition (a ModelDef op, attribute, tensor desc or model attribute; one MODEL_INOUT_INFO
record; a nested flow or bundle om, recursively) or the table itself, and re-packs the file
with consistent offsets, sizes and header lengths, so mutations reach the decoders behind the
table checks; about 10% are raw byte mutations of the whole file.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import struct
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repo root: openge, tests

import atheris  # noqa: E402

with atheris.instrument_imports(include=["openge"]):
    import numpy as np

    from openge.cli.device_om import info_text, json_doc
    from openge.errors import GeError
    from openge.om import ge_ir_pb2 as pb
    from openge.om.device import wire
    from openge.om.device.header import HEADER_SIZE, ModelType, parse_header
    from openge.om.device.partitions import read_tables
    from openge.om.device.reader import is_device_om, is_openge_om, read_device_om
    from openge.om.device.summary import describe, describe_text, to_json
    from openge.om.device.to_graph import refusals, to_graph
    from openge.om.device.weights import iter_consts
    from openge.runtime import Model, check_compatibility, query_size

from tests.fuzz.run_once import ARENA_LIMIT, execute_on_zeros, rss_bounded  # noqa: E402

_EXTREME_INTS = (0, -1, 1, 2, 3, 16, -(1 << 63), (1 << 63) - 1, 1 << 31, 1 << 40, 1000003)
_EXTREME_FLOATS = (0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, -1.0)
_U32 = (0, 1, 2, 3, 5, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 16, 0x10000000, 0x20000000, 0x30000000)
_LAYOUTS = ("ND", "NCHW", "NHWC", "NC1HWC0", "FRACTAL_Z", "FRACTAL_NZ", "FRACTAL_Z_C04",
            "C1HWNCoC0", "FRACTAL_Z_3D", "NDC1HWC0", "", "RESERVED", "\xff")  # fmt: skip
_OP_TYPES = ("Relu", "Conv2D", "Const", "Data", "NetOutput", "TransData", "Cast", "MatMul",
             "Add", "Softmax", "Reshape", "PartitionedCall", "If", "Unknown", "")  # fmt: skip
#: Header fields the mutator changes: (offset, struct format).
_HEADER_FIELDS = ((4, "<I"), (8, "<I"), (0x50, "B"), (0x51, "B"), (0x52, "B"), (0x53, "B"),
                  (0x74, "<I"), (0x98, "<I"), (0x9C, "<I"), (0xB4, "B"), (0xC0, "B"))  # fmt: skip


# ----- split and re-pack -------------------------------------------------------------------


def _split(data: bytes):
    """(header bytes, wide, bundle base, blocks of [type, payload]) of a readable file."""
    view = memoryview(data)
    header = parse_header(view)
    form, blocks = read_tables(view, header)
    parts = [[[p.type, bytes(view[p.offset : p.end])] for p in block] for block in blocks]
    return bytearray(data[:HEADER_SIZE]), form == "wide", header, parts


def _table(parts, wide: bool, from_start: bool) -> bytes:
    head, entry = ("<I4x", "<I4xQQ") if wide else ("<I", "<III")
    out = bytearray(struct.pack(head, len(parts)))
    offset = struct.calcsize(head) + struct.calcsize(entry) * len(parts) if from_start else 0
    for ptype, payload in parts:
        out += struct.pack(entry, ptype, offset, len(payload))
        offset += len(payload)
    return bytes(out) + b"".join(p for _, p in parts)


def _pack(head: bytearray, wide: bool, header, blocks) -> bytes:
    bundle = header.modeltype == ModelType.BUNDLE
    body = b"".join(_table(parts, wide, bundle) for parts in blocks)
    if header.model_length:  # 2.0: u64 model_length (a bundle counts the header too)
        whole = bundle and header.model_length == header.model_size and _whole(header)
        struct.pack_into("<Q", head, 0xB8, len(body) + (HEADER_SIZE if whole else 0))
    else:
        struct.pack_into("<I", head, 0x4C, len(body))
    return bytes(head) + body


def _whole(header) -> bool:
    return header.model_length > 0 and header.modeltype == ModelType.BUNDLE


# ----- payload mutations -------------------------------------------------------------------


def _set_value(attr, rng: random.Random) -> None:
    choice = rng.randrange(7)
    if choice == 0:
        attr.i = rng.choice(_EXTREME_INTS)
    elif choice == 1:
        attr.f = rng.choice(_EXTREME_FLOATS)
    elif choice == 2:
        attr.s = rng.choice([b"", b"x", b"NCHW", b"SAME", b"\xff\xfe", b"[" * 3000])
    elif choice == 3:
        attr.list.Clear()
        attr.list.i.extend(rng.choice(_EXTREME_INTS) for _ in range(rng.randrange(0, 6)))
        attr.list.val_type = rng.choice([0, 2, 3, 7])
    elif choice == 4:
        attr.b = bool(rng.randrange(2))
    elif choice == 5:
        attr.list.Clear()
        attr.list.s.extend(rng.choice([b"", b"a", b"\xff"]) for _ in range(rng.randrange(0, 4)))
    else:
        attr.dt = rng.randrange(-2, 50)


def _mutate_desc(td, rng: random.Random) -> None:
    field = rng.randrange(7)
    if field == 0:
        td.dtype = rng.randrange(-1, 50)
    elif field == 1 and len(td.shape.dim):
        td.shape.dim[rng.randrange(len(td.shape.dim))] = rng.choice(_EXTREME_INTS)
    elif field == 1 or field == 2:
        if rng.random() < 0.5 and len(td.shape.dim):
            del td.shape.dim[-1]
        else:
            td.shape.dim.append(rng.choice(_EXTREME_INTS))
    elif field == 3:
        td.layout = rng.choice(_LAYOUTS)
    elif field == 4:
        td.data_offset = rng.choice([0, 1, 63, 64, 1 << 20, (1 << 63) - 1, -1])
    elif field == 5:
        td.weight_size = rng.choice([0, 1, 2, 64, 1 << 30, -1])
    else:
        key = rng.choice(["origin_format", "origin_shape", "format", "\0\1"])
        _set_value(td.attr[key], rng)


def _mutate_model_def(payload: bytes, rng: random.Random) -> bytes:
    md = pb.ModelDef.FromString(payload)
    ops = [op for g in md.graph for op in g.op]
    what = rng.randrange(9) if ops else 8
    op = rng.choice(ops) if ops else None
    if what == 0:
        keys = list(op.attr)
        key = rng.choice(keys) if keys and rng.random() < 0.7 else rng.choice(
            ["strides", "pads", "dilations", "groups", "axes", "dst_type", "index", "value",
             "data_format", "src_format", "dst_format", "_datadump_original_op_names"]
        )  # fmt: skip
        _set_value(op.attr[key], rng)
    elif what == 1:
        descs = [*op.input_desc, *op.output_desc]
        if "value" in op.attr and op.attr["value"].HasField("t"):
            descs.append(op.attr["value"].t.desc)
        if descs:
            _mutate_desc(rng.choice(descs), rng)
    elif what == 2:
        op.type = rng.choice(_OP_TYPES)
    elif what == 3 and len(op.input):
        i = rng.randrange(len(op.input))
        op.input[i] = rng.choice(
            [f"{rng.choice(ops).name}:{rng.choice([0, 1, -1, 7])}", "nowhere:0", "", ":", "x:abc"]
        )
    elif what == 3:
        op.input.append(f"{rng.choice(ops).name}:0")
    elif what == 4:
        g = rng.choice([g for g in md.graph if len(g.op)])
        del g.op[rng.randrange(len(g.op))]
    elif what == 5:
        g = rng.choice(md.graph)
        g.op.add().CopyFrom(op)
    elif what == 6:
        op.name = rng.choice(["", "x", ops[0].name, "a\0b", "../../etc/passwd"])
    elif what == 7 and "value" in op.attr and op.attr["value"].HasField("t"):
        t = op.attr["value"].t
        t.data = rng.choice([b"", b"\0" * 7, bytes(range(64))])
    else:
        key = rng.choice(
            ["memory_size", "weight_size", "om_compress_version", "attr_name_enum",
             "attr_value_enum", "attrs_use_string_value", "soc_version", "atc_version"]
        )  # fmt: skip
        _set_value(md.attr[key], rng)
    return md.SerializeToString()


def _mutate_inout(payload: bytes, rng: random.Random) -> bytes:
    records, pos = [], 0
    while pos + 8 <= len(payload):
        kind, length = struct.unpack_from("<iI", payload, pos)
        records.append([kind, payload[pos + 8 : pos + 8 + length]])
        pos += 8 + length
    if not records:
        return atheris.Mutate(payload, len(payload) * 2 + 64)
    rec = rng.choice(records)
    choice = rng.randrange(4)
    if choice == 0:
        rec[0] = rng.choice([-1, 0, 1, 2, 3, 4, 5, 9, 1 << 30])
    elif choice == 1 and len(rec[1]) >= 4:  # one aligned integer field to an extreme
        at = rng.randrange(0, len(rec[1]) - 3) & ~3
        fmt = "<Q" if at + 8 <= len(rec[1]) and rng.random() < 0.5 else "<I"
        value = rng.choice(_U32) if fmt == "<I" else rng.choice([0, 1 << 62, (1 << 64) - 1])
        rec[1] = rec[1][:at] + struct.pack(fmt, value) + rec[1][at + struct.calcsize(fmt) :]
    elif choice == 2:
        rec[1] = atheris.Mutate(rec[1], len(rec[1]) * 2 + 32)
    else:
        records.append(list(rng.choice(records)))
    return b"".join(struct.pack("<iI", k, len(v)) + v for k, v in records)


def _mutate_flow_submodel(payload: bytes, rng: random.Random) -> bytes:
    out = bytearray()
    for number, wtype, value in wire.fields(memoryview(payload), "flow submodel"):
        if number == 3 and not isinstance(value, int):
            value = _mutate_file(bytes(value), rng, raw=0.2)
        if isinstance(value, int):  # varint fields are kept as they were written
            out += _varint(number << 3 | wtype) + _varint(value)
        else:
            out += _varint(number << 3 | 2) + _varint(len(value)) + bytes(value)
    return bytes(out)


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _mutate_payload(ptype: int, payload: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.25:
        return atheris.Mutate(payload, len(payload) * 2 + 64)
    if ptype == 0:
        return _mutate_model_def(payload, rng)
    if ptype == 8:
        return _mutate_inout(payload, rng)
    if ptype == 7:
        return _mutate_flow_submodel(payload, rng)
    if ptype == 24:
        return _mutate_file(payload, rng, raw=0.2)
    if ptype == 1 and payload:  # weights: overwrite a few bytes, keep the size mostly
        data = bytearray(payload)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    return atheris.Mutate(payload, len(payload) * 2 + 64)


def _mutate_file(data: bytes, rng: random.Random, raw: float = 0.1) -> bytes:
    if rng.random() < raw:
        return atheris.Mutate(data, len(data) * 2 + 64)
    try:
        head, wide, header, blocks = _split(data)
    except GeError:
        return atheris.Mutate(data, len(data) * 2 + 64)
    choice = rng.random()
    try:
        if choice < 0.12:  # one header field
            at, fmt = rng.choice(_HEADER_FIELDS)
            value = rng.choice(_U32) & (0xFF if fmt == "B" else 0xFFFFFFFF)
            struct.pack_into(fmt, head, at, value)
        elif choice < 0.22:  # the table: drop, duplicate or retype a partition
            parts = rng.choice(blocks)
            i = rng.randrange(len(parts))
            what = rng.randrange(3)
            if what == 0 and len(parts) > 1:
                del parts[i]
            elif what == 1:
                parts.insert(i, list(parts[i]))
            else:
                parts[i][0] = rng.choice([0, 1, 2, 3, 4, 6, 7, 8, 9, 24, 25, 26, 99])
        else:  # one partition's payload
            parts = rng.choice(blocks)
            part = rng.choice(parts)
            part[1] = _mutate_payload(part[0], part[1], rng)
    except Exception:  # a payload the structured mutation cannot decode: mutate raw bytes
        return atheris.Mutate(data, len(data) * 2 + 64)
    return _pack(head, wide, header, blocks)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    out = _mutate_file(data, random.Random(seed))
    return out if len(out) <= max_size else data


# ----- the target --------------------------------------------------------------------------


def _each_om(om):
    yield om
    for n in om.nested:
        if n.om is not None:
            yield from _each_om(n.om)


def _read_all(om) -> None:
    for sub in _each_om(om):
        for i in range(len(sub.models)):
            for fn in (sub.model_def, sub.restored_attrs, sub.weights, sub.kernels, sub.io_info):
                with contextlib.suppress(GeError):
                    fn(i)
            if sub.has_model_def(i):
                for lenient in (False, True):
                    with contextlib.suppress(GeError):
                        for const in iter_consts(sub.model_def(i), sub.weights(i), lenient=lenient):
                            assert isinstance(const.array, np.ndarray)
            for fn in (refusals, to_graph):
                with contextlib.suppress(GeError):
                    fn(sub, i)
    with contextlib.suppress(GeError):
        describe_text(describe(om))
    for shapes in (False, True):
        with contextlib.suppress(GeError):
            json.dumps(to_json(om, shapes))


def _execute(model: Model) -> None:
    execute_on_zeros(model)


def target(data: bytes) -> None:
    is_device_om(data)
    is_openge_om(data)
    try:
        om = read_device_om(data)
    except GeError:
        return
    try:
        _read_all(om)
    finally:
        om.release()
    view = memoryview(data)
    with contextlib.suppress(GeError):
        info_text(view)
    with contextlib.suppress(GeError):
        json.dumps(json_doc(view, shapes=True), indent=2)
    for fn in (check_compatibility, query_size):
        with contextlib.suppress(GeError):
            fn(data)
    try:
        model = Model.from_bytes(data)
    except GeError:
        return
    with model:
        _execute(model)


#: Every reading entry point with the per-input peak-RSS check.
bounded = rss_bounded(target)


def main(argv: list[str]) -> None:
    os.environ.setdefault("OPENGE_MAX_ARENA_BYTES", str(ARENA_LIMIT))
    rest = argv[1:]
    if not any(not a.startswith("-") for a in rest):  # no corpus given: generate the seeds
        from tests.fuzz.device_seeds import write_device_seed_corpus

        corpus = tempfile.mkdtemp(prefix="openge_fuzz_device_corpus_")
        write_device_seed_corpus(corpus)
        rest = [*rest, corpus]
    atheris.Setup([argv[0], *rest], bounded, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
