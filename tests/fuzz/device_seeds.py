"""Seed corpus for the device .om fuzz harness: synthetic device oms, built at run time.

Every file comes from tests/om/device/devom_builder.py (openge's own test writer, independent
of openge.om.device); nothing third-party and no binary is committed. One seed per layout the
builder makes: header 1.0 and 2.0, tiny and wide tables, several model blocks, a flow model
with nested oms, a bundle, compressed attributes, kernel stores, MODEL_INOUT_INFO records,
weights in each device layout, invalid UTF-8 names, and complete graphs openge compiles and runs.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from openge.om import ge_ir_pb2 as pb
from tests.om.device import devom_builder as b


def _md(name: str = "m", n_ops: int = 3) -> bytes:
    return b.simple_model_def(name, n_ops).SerializeToString(deterministic=True)


def _compressed() -> bytes:
    md = b.simple_model_def("c", 1)
    op = md.graph[0].op[1]
    op.attr[b.compressed_key(0)].list.i.extend([1, 2])
    op.attr[b.compressed_key(1)].i = 1
    op.attr[b.compressed_key(130)].i = 9
    op.output_desc[0].attr[b.compressed_key(1)].i = 0
    md.attr["om_compress_version"].i = 1
    names = ["strides", "mode"] + [f"a{i}" for i in range(130)]
    md.attr["attr_name_enum"].list.s.extend(n.encode() for n in names)
    md.attr["attr_value_enum"].list.s.extend([b"SAME", b"VALID"])
    md.attr["attrs_use_string_value"].list.b.extend([False, True] + [False] * 130)
    return md.SerializeToString(deterministic=True)


def _weights_md() -> tuple[bytes, bytes]:
    """A graph with one Const in each device layout the reader converts (and one it keeps)."""
    md = b.simple_model_def("w", 1)
    g, weights = md.graph[0], b.Weights()
    rng = np.random.default_rng(5)
    w4 = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    f16, f32 = pb.DT_FLOAT16, pb.DT_FLOAT
    b.add_const(g, weights, "fz", b.to_fractal_z(w4, 16), f16, "FRACTAL_Z", "NCHW", [4, 3, 3, 3])
    b.add_const(
        g, weights, "c04", b.to_fractal_z_c04(w4, 16), f16, "FRACTAL_Z_C04", "NCHW", [4, 3, 3, 3]
    )
    b.add_const(g, weights, "5hd", b.to_nc1hwc0(w4, 16), f16, "NC1HWC0", "NCHW", [4, 3, 3, 3])
    b.add_const(g, weights, "c1hw", b.to_c1hwncoc0(w4, 16), f16, "C1HWNCoC0", "NCHW", [4, 3, 3, 3])
    m = rng.standard_normal((5, 7)).astype(np.float32)
    b.add_const(g, weights, "nz", b.to_fractal_nz(m, 8), f32, "FRACTAL_NZ", "ND", [5, 7])
    b.add_const(g, weights, "nd", m, f32, "ND", "ND", [5, 7])
    raw = np.zeros((2, 3, 16, 16), np.float16)
    b.add_const(g, weights, "z3d", raw, f16, "FRACTAL_Z_3D", "NCDHW", [16, 16, 1, 1, 6])
    return md.SerializeToString(deterministic=True), bytes(weights.data)


def _inout() -> bytes:
    inputs = b.io_tensors([("x", 2, 0, [-1, 4], [(1, 8), (4, 4)])])
    outputs = b.io_tensors([("out", 2, 0, [1, 4], [])])
    batch = struct.pack("<I3Q", 3, 1, 4, 8)
    hw = struct.pack("<I2I", 2, 2, 2) + struct.pack("<4Q", 224, 224, 448, 448)
    return (
        b.inout_record(0, inputs)
        + b.inout_record(1, outputs)
        + b.inout_record(2, batch)
        + b.inout_record(3, hw)
        + b.inout_record(9, b"later")
    )


def _bundle(inner: bytes) -> bytes:
    parts = [(25, struct.pack("<Q", 4096)), (24, inner), (24, inner)]
    body = bytearray(struct.pack("<I4x", len(parts)))
    offset = 8 + 24 * len(parts)  # GE's bundle writer counts offsets from the table start
    for t, p in parts:
        body += struct.pack("<I4xQQ", t, offset, len(p))
        offset += len(p)
    body += b"".join(p for _, p in parts)
    return b.header(modeltype=5, model_num=2, model_length=256 + len(body)) + bytes(body)


def _bad_utf8() -> bytes:
    md = b.simple_model_def("utf", 1)
    md.graph[0].op[1].name = "reluX"
    return md.SerializeToString(deterministic=True).replace(b"reluX", b"rel\xffX")


def device_seeds() -> dict[str, bytes]:
    """Name → bytes of each seed device om."""
    from tests.om.device.test_device_run import _conv_model

    md = _md()
    wmd, wdata = _weights_md()
    tbe = b.kernel_store([("conv_kernel", b"\x7fELF" + bytes(60)), ("relu", b"xyz")])
    aicpu = b.kernel_store([("custom", bytes(10))])
    custom = b.kernel_store([("op", bytes(12))], magic=0x4B43534B)
    inner = b.device_om([[(0, _md("inner", 2))]])
    seeds = {
        "v1_tiny": b.device_om([[(0, md), (2, bytes(16))]], version=b.V1, wide=False),
        "v2_tiny": b.device_om([[(0, md), (2, bytes(16))]], wide=False),
        "v2_wide": b.device_om([[(0, md), (2, bytes(16))]], wide=True),
        "relu_only": b.device_om([[(0, md)]]),
        "multi_model": b.device_om([[(0, _md(f"m{i}", i + 1)), (2, b"\1" * 8)] for i in range(3)]),
        "flow": b.flow_om([("sub_a", inner), ("sub_b", inner)]),
        "bundle": _bundle(inner),
        "compressed": b.device_om([[(0, _compressed())]]),
        "kernels": b.device_om([[(0, md), (3, tbe), (4, aicpu), (26, custom)]]),
        "inout": b.device_om([[(8, _inout()), (0, md)]]),
        "weights": b.device_om([[(0, wmd), (1, wdata)]]),
        "bad_utf8": b.device_om([[(0, _bad_utf8())]]),
        "conv": _conv_model()[0],
        "conv_fused": _conv_model(fused=True)[0],
    }
    return seeds


def write_device_seed_corpus(folder: str) -> list[str]:
    """Write every seed into ``folder``; the paths written."""
    paths = []
    for name, data in device_seeds().items():
        path = os.path.join(folder, f"{name}.om")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths
