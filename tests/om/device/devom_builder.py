"""Test-only writer of synthetic device .om files, independent of openge.om.device.

Everything here follows ref/device_om.md directly (header fields at their offsets, tiny and
wide tables, GE's kernel-store items, MODEL_INOUT_INFO records, attribute compression, flow
submodels as hand-encoded protobuf) and the device weight layouts are produced by explicit
index loops, so the reader is checked against an independent writer.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from openge.om import ge_ir_pb2 as pb

V1, V2 = 0x10000000, 0x20000000


# ----- device layouts, written element by element ------------------------------------------


def to_nc1hwc0(x: np.ndarray, c0: int) -> np.ndarray:
    n, c, h, w = x.shape
    c1 = math.ceil(c / c0)
    out = np.zeros((n, c1, h, w, c0), x.dtype)
    for ni in range(n):
        for ci in range(c):
            out[ni, ci // c0, :, :, ci % c0] = x[ni, ci]
    return out


def to_fractal_z(x: np.ndarray, c0: int, n0: int = 16) -> np.ndarray:
    n, c, h, w = x.shape
    c1, n1 = math.ceil(c / c0), math.ceil(n / n0)
    out = np.zeros((c1 * h * w, n1, n0, c0), x.dtype)
    for ni in range(n):
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    row = ((ci // c0) * h + hi) * w + wi
                    out[row, ni // n0, ni % n0, ci % c0] = x[ni, ci, hi, wi]
    return out


def to_fractal_z_c04(x: np.ndarray, c0: int, n0: int = 16) -> np.ndarray:
    n, c, h, w = x.shape
    k = 4 * h * w
    k1, n1 = math.ceil(k / c0), math.ceil(n / n0)
    out = np.zeros((k1, n1, n0, c0), x.dtype)
    for ni in range(n):
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    col = (hi * w + wi) * 4 + ci
                    out[col // c0, ni // n0, ni % n0, col % c0] = x[ni, ci, hi, wi]
    return out


def to_c1hwncoc0(x: np.ndarray, c0: int) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.zeros((math.ceil(c / c0), h, w, n, c0, c0), x.dtype)
    for ni in range(n):
        for ci in range(c):
            out[ci // c0, :, :, ni, ci % c0, ci % c0] = x[ni, ci]
    return out


def to_fractal_nz(x: np.ndarray, w0: int, h0: int = 16) -> np.ndarray:
    mat = x.reshape(1, -1) if x.ndim == 1 else x
    *batch, rows, cols = mat.shape
    h1, w1 = math.ceil(rows / h0), math.ceil(cols / w0)
    out = np.zeros((*batch, w1, h1, h0, w0), x.dtype)
    for idx in np.ndindex(*batch, rows, cols):
        *b, r, cl = idx
        out[(*b, cl // w0, r // h0, r % h0, cl % w0)] = mat[idx]
    return out


# ----- protobuf helpers ----------------------------------------------------------------------


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def len_field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor_desc(td, dtype: int, shape, layout: str, origin_format=None, origin_shape=None):
    td.dtype = dtype
    td.shape.dim.extend(shape)
    td.layout = layout
    if origin_format is not None:
        td.attr["origin_format"].s = origin_format.encode()
    if origin_shape is not None:
        td.attr["origin_shape"].list.i.extend(origin_shape)
        td.attr["origin_shape"].list.val_type = pb.AttrDef.ListValue.VT_LIST_INT
    return td


@dataclass
class Weights:
    """WEIGHTS_DATA being assembled: each array 64-byte aligned."""

    data: bytearray = field(default_factory=bytearray)

    def add(self, array: np.ndarray) -> tuple[int, int]:
        self.data += bytes((-len(self.data)) % 64)
        offset = len(self.data)
        raw = np.ascontiguousarray(array).tobytes()
        self.data += raw
        return offset, len(raw)


def add_const(
    graph, weights: Weights, name, device: np.ndarray, dtype, layout, origin_format, origin_shape
):
    op = graph.op.add()
    op.name, op.type = name, "Const"
    t = op.attr["value"].t
    tensor_desc(t.desc, dtype, device.shape, layout, origin_format, origin_shape)
    t.desc.data_offset, t.desc.weight_size = weights.add(device)
    tensor_desc(op.output_desc.add(), dtype, device.shape, layout, origin_format, origin_shape)
    return op


# ----- container ---------------------------------------------------------------------------


def header(
    *,
    version=V2,
    modeltype=0,
    name="model",
    model_num=1,
    length=0,
    model_length=0,
    platform="1.11.z.0",
    ops=0,
) -> bytes:
    h = bytearray(256)
    struct.pack_into("<III", h, 0, 0x444F4D49, 256, version)
    struct.pack_into("<I", h, 0x4C, length)
    h[0x52] = modeltype
    h[0x54 : 0x54 + len(name)] = name.encode()
    struct.pack_into("<I", h, 0x74, ops)
    struct.pack_into("<I", h, 0x98, 2)
    if version == V2:
        struct.pack_into("<I", h, 0x9C, model_num)
        h[0xA0 : 0xA0 + len(platform)] = platform.encode()
        struct.pack_into("<Q", h, 0xB8, model_length)
    else:
        h[0x9C : 0x9C + len(platform)] = platform.encode()
    return bytes(h)


def table(parts: list[tuple[int, bytes]], wide: bool) -> bytes:
    out = bytearray(struct.pack("<I4x" if wide else "<I", len(parts)))
    offset = 0
    for ptype, payload in parts:
        out += struct.pack("<I4xQQ" if wide else "<III", ptype, offset, len(payload))
        offset += len(payload)
    return bytes(out) + b"".join(p for _, p in parts)


def device_om(
    blocks: list[list[tuple[int, bytes]]], *, version=V2, wide=None, modeltype=0, name="model"
) -> bytes:
    """A whole file: ``blocks`` of (type, payload); ``wide`` defaults to GE's rule."""
    if wide is None:
        wide = modeltype == 3 or (version == V2 and len(blocks) > 1)
    body = b"".join(table(parts, wide) for parts in blocks)
    use_model_length = version == V2 and (wide or len(blocks) > 1)
    h = header(
        version=version,
        modeltype=modeltype,
        name=name,
        model_num=len(blocks) if modeltype not in (3, 5) else 1,
        length=0 if use_model_length else len(body),
        model_length=len(body) if use_model_length else 0,
    )
    return h + body


def kernel_store(items: list[tuple[str, bytes]], magic=0x5D776EFD) -> bytes:
    return b"".join(
        struct.pack("<III", magic, len(n.encode()), len(b)) + n.encode() + b for n, b in items
    )


def inout_record(kind: int, value: bytes) -> bytes:
    return struct.pack("<iI", kind, len(value)) + value


def io_tensors(tensors: list[tuple[str, int, int, list[int], list[tuple[int, int]]]]) -> bytes:
    out = bytearray(struct.pack("<I", len(tensors)))
    for name, fmt, dtype, dims, ranges in tensors:
        flat = [v for r in ranges for v in r]
        out += struct.pack(
            "<QiiIIII",
            4 * max(1, math.prod(dims)),
            fmt,
            dtype,
            len(name),
            8 * len(dims),
            8 * len(dims),
            8 * len(flat),
        )
        out += name.encode() + struct.pack(f"<{len(dims)}q", *dims) * 2
        out += struct.pack(f"<{len(flat)}q", *flat)
    return bytes(out)


def compressed_key(index: int) -> str:
    """GE's compressed attr name: NUL, then base-127 digits (+1), least significant first."""
    digits = ""
    while True:
        digits += chr(index % 127 + 1)
        index //= 127
        if index == 0:
            return "\0" + digits


def simple_model_def(name="model", n_ops=3) -> pb.ModelDef:
    md = pb.ModelDef()
    md.name = name
    g = md.graph.add()
    g.name = f"{name}_0"
    data = g.op.add()
    data.name, data.type = "x", "Data"
    data.attr["index"].i = 0
    tensor_desc(data.output_desc.add(), pb.DT_FLOAT, [1, 4], "ND")
    prev = "x"
    for i in range(n_ops):
        op = g.op.add()
        op.name, op.type = f"relu{i}", "Relu"
        op.input.append(f"{prev}:0")
        tensor_desc(op.input_desc.add(), pb.DT_FLOAT, [1, 4], "ND")
        tensor_desc(op.output_desc.add(), pb.DT_FLOAT, [1, 4], "ND")
        prev = op.name
    out = g.op.add()
    out.name, out.type = "out", "NetOutput"
    out.input.append(f"{prev}:0")
    tensor_desc(out.input_desc.add(), pb.DT_FLOAT, [1, 4], "ND")
    md.attr["atc_version"].s = b"8.0.RC1"
    md.attr["soc_version"].s = b"Ascend310P3"
    md.attr["framework_type"].s = b"5"
    md.attr["memory_size"].i = 4096
    md.attr["weight_size"].i = 0
    return md


def flow_om(submodels: list[tuple[str, bytes]], name="flow") -> bytes:
    """A flow model (modeltype 3) whose FLOW_SUBMODELs carry ``submodels`` as nested oms."""
    flow = len_field(1, name.encode()) + b"".join(len_field(3, n.encode()) for n, _ in submodels)
    subs = [
        (7, len_field(1, n.encode()) + len_field(2, b"NPU") + len_field(3, data))
        for n, data in submodels
    ]
    md = simple_model_def(name, 1).SerializeToString(deterministic=True)
    return device_om([[(0, md), (6, flow), *subs]], modeltype=3, name=name)
