"""The device-om reader on synthetic files of every layout, and on hostile ones."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from openge.errors import GeError
from openge.om import ge_ir_pb2 as pb
from openge.om.device import is_device_om, read_device_om
from openge.om.device.reader import MAX_DEPTH, is_openge_om
from openge.om.device.summary import describe, to_json
from openge.om.device.weights import iter_consts
from tests.om.device import devom_builder as b


def _md_bytes(name="m", n_ops=3) -> bytes:
    return b.simple_model_def(name, n_ops).SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("version", "wide", "form"),
    [(b.V1, False, "tiny"), (b.V2, False, "tiny"), (b.V2, True, "wide")],
)
def test_header_versions_and_table_forms(version, wide, form):
    data = b.device_om([[(0, _md_bytes()), (2, b"\0" * 16)]], version=version, wide=wide)
    om = read_device_om(data)
    assert om.header.version_text == ("1.0" if version == b.V1 else "2.0")
    assert om.table_form == form
    assert om.header.platform_version == "1.11.z.0"
    assert [p.name for p in om.models[0].partitions] == ["MODEL_DEF", "TASK_INFO"]
    assert om.model_def().name == "m"
    assert is_device_om(data) and not is_openge_om(data)


def test_multi_model_blocks():
    blocks = [[(0, _md_bytes(f"m{i}", i + 1)), (2, b"\1" * 8)] for i in range(3)]
    om = read_device_om(b.device_om(blocks))
    assert len(om.models) == 3
    info = describe(om)
    assert [m["name"] for m in info["models"]] == ["m0", "m1", "m2"]
    assert [m["op_types"].get("Relu") for m in info["models"]] == [1, 2, 3]


def test_flow_model_with_nested_oms():
    inner = b.device_om([[(0, _md_bytes("inner", 2))]])
    data = b.flow_om([("sub_a", inner), ("sub_b", inner)])
    om = read_device_om(data)
    assert om.flow_name == "flow"
    assert [n.name for n in om.nested] == ["sub_a", "sub_b"]
    assert all(n.om is not None and n.om.model_def().name == "inner" for n in om.nested)
    assert describe(om)["nested"][0]["om"]["models"][0]["op_types"]["Relu"] == 2


def test_bundle_model():
    inner = b.device_om([[(0, _md_bytes("member"))]])
    parts = [(25, struct.pack("<Q", 4096)), (24, inner), (24, inner)]
    body = bytearray(struct.pack("<I4x", 3))
    offset = 8 + 24 * 3  # GE's bundle writer counts offsets from the table start
    for t, p in parts:
        body += struct.pack("<I4xQQ", t, offset, len(p))
        offset += len(p)
    body += b"".join(p for _, p in parts)
    data = b.header(modeltype=5, model_num=2, model_length=256 + len(body)) + bytes(body)
    om = read_device_om(data)
    assert om.var_size == 4096
    assert [n.om.model_def().name for n in om.nested] == ["member", "member"]


def test_compressed_attrs_are_restored():
    md = b.simple_model_def("c", 1)
    op = md.graph[0].op[1]
    names = ["strides", "mode", "_fusion"] + [f"pad{i}" for i in range(130)]
    values = ["SAME", "VALID"]
    op.attr[b.compressed_key(0)].list.i.extend([1, 2])
    op.attr[b.compressed_key(1)].i = 1  # a string attr: index into attr_value_enum
    op.attr[b.compressed_key(132)].i = 9  # two base-127 digits
    op.output_desc[0].attr[b.compressed_key(1)].i = 0
    md.attr["om_compress_version"].i = 1
    md.attr["attr_name_enum"].list.s.extend(n.encode() for n in names)
    md.attr["attr_value_enum"].list.s.extend(v.encode() for v in values)
    flags = [False, True] + [False] * (len(names) - 2)
    md.attr["attrs_use_string_value"].list.b.extend(flags)
    om = read_device_om(b.device_om([[(0, md.SerializeToString(deterministic=True))]]))
    restored = om.model_def().graph[0].op[1]
    assert list(restored.attr["strides"].list.i) == [1, 2]
    assert restored.attr["mode"].s == b"VALID"
    assert restored.attr["pad129"].i == 9
    assert restored.output_desc[0].attr["mode"].s == b"SAME"
    assert om.restored_attrs() == 4


def test_bad_compressed_index_is_a_ge_error():
    md = b.simple_model_def("c", 1)
    md.graph[0].op[1].attr[b.compressed_key(5)].i = 1
    md.attr["om_compress_version"].i = 1
    md.attr["attr_name_enum"].list.s.append(b"only")
    md.attr["attr_value_enum"].list.s.append(b"v")
    md.attr["attrs_use_string_value"].list.b.append(True)
    om = read_device_om(b.device_om([[(0, md.SerializeToString(deterministic=True))]]))
    with pytest.raises(GeError, match="attr_name_enum"):
        om.model_def()


def test_kernel_stores_are_listed():
    tbe = b.kernel_store([("conv_kernel", b"\x7fELF" + bytes(60)), ("relu", b"xyz")])
    aicpu = b.kernel_store([("custom", bytes(10))])
    om = read_device_om(b.device_om([[(0, _md_bytes()), (3, tbe), (4, aicpu)]]))
    kernels = om.kernels()
    assert [(k.store, k.name, k.size, k.is_elf) for k in kernels] == [
        ("TBE_KERNELS", "conv_kernel", 64, True),
        ("TBE_KERNELS", "relu", 3, False),
        ("CUST_AICPU_KERNELS", "custom", 10, False),
    ]
    assert describe(om)["models"][0]["kernels"] == 3


def test_kernel_store_with_bad_magic_or_length():
    for store in (b.kernel_store([("k", b"1234")], magic=1), b.kernel_store([("k", b"12")])[:-1]):
        om = read_device_om(b.device_om([[(0, _md_bytes()), (3, store)]]))
        with pytest.raises(GeError):
            om.kernels()


def test_model_inout_info():
    inputs = b.io_tensors(
        [("img", 0, 1, [-1, 3, 224, 224], [(1, 8), (3, 3), (224, 224), (224, 224)])]
    )
    outputs = b.io_tensors([("prob", 2, 0, [1, 1000], [])])
    batch = struct.pack("<I3Q", 3, 1, 4, 8)
    hw = struct.pack("<I2I", 2, 2, 2) + struct.pack("<4Q", 224, 224, 448, 448)
    tlv = (
        b.inout_record(0, inputs)
        + b.inout_record(1, outputs)
        + b.inout_record(2, batch)
        + b.inout_record(3, hw)
        + b.inout_record(9, b"later")
    )
    om = read_device_om(b.device_om([[(8, tlv), (0, _md_bytes())]]))
    io = om.io_info()
    assert io.inputs[0].name == "img" and io.inputs[0].dims == (-1, 3, 224, 224)
    assert io.inputs[0].shape_range[0] == (1, 8)
    assert io.outputs[0].dims == (1, 1000)
    assert io.dynamic_batch == [1, 4, 8]
    assert io.dynamic_hw == [[224, 224], [448, 448]]
    assert io.other == {9: 5}
    m = describe(om)["models"][0]
    assert m["inputs"][0]["dtype"] == "DT_FLOAT16" and m["inputs"][0]["format"] == "NCHW"
    assert m["gears"]["dynamic_batch"] == [1, 4, 8]


def test_weights_and_unknown_fields_in_json():
    md = b.simple_model_def("w", 1)
    weights = b.Weights()
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float16)
    b.add_const(
        md.graph[0],
        weights,
        "filt",
        b.to_fractal_z(w, 16),
        pb.DT_FLOAT16,
        "FRACTAL_Z",
        "NCHW",
        list(w.shape),
    )
    md.graph[0].op[1].MergeFromString(b.len_field(35, b"then_branch"))  # OpDef.subgraph_name
    data = b.device_om([[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data))]])
    om = read_device_om(data)
    (const,) = iter_consts(om.model_def(), om.weights())
    np.testing.assert_array_equal(const.array, w)
    doc = to_json(om, shapes=True)
    ops = doc["model_def"][0]["graph"][0]["op"]
    assert ops[1]["subgraph_name"] == ["then_branch"]
    assert "output_desc" in ops[1]
    assert "output_desc" not in to_json(om, shapes=False)["model_def"][0]["graph"][0]["op"][1]


def test_unconvertible_weight_layout():
    md = b.simple_model_def("u", 1)
    weights = b.Weights()
    raw = np.arange(2 * 3 * 16 * 16, dtype=np.float16).reshape(2, 3, 16, 16)
    b.add_const(
        md.graph[0], weights, "w3d", raw, pb.DT_FLOAT16, "FRACTAL_Z_3D", "NCDHW", [16, 16, 1, 1, 6]
    )
    om = read_device_om(
        b.device_om([[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data))]])
    )
    with pytest.raises(GeError, match="FRACTAL_Z_3D"):
        list(iter_consts(om.model_def(), om.weights()))
    (kept,) = iter_consts(om.model_def(), om.weights(), lenient=True)
    np.testing.assert_array_equal(kept.array, raw)
    assert "FRACTAL_Z_3D" in kept.note
    from openge.om.device.to_graph import refusals

    assert [(n, why) for n, _, why in refusals(om)] == [
        ("w3d", "weight in layout FRACTAL_Z_3D, which openge does not convert")
    ]


def test_string_fields_with_invalid_utf8_are_decoded():
    md = b.simple_model_def("utf", 1)
    md.graph[0].op[1].name = "reluX"
    raw = md.SerializeToString(deterministic=True).replace(b"reluX", b"rel\xffX")
    om = read_device_om(b.device_om([[(0, raw)]]))
    op = om.model_def().graph[0].op[1]
    assert op.name == "rel\ufffdX" and op.type == "Relu"
    assert describe(om)["models"][0]["op_types"]["Relu"] == 1


# ----- hostile files -----------------------------------------------------------------------


def _valid() -> bytes:
    tbe = b.kernel_store([("k", bytes(32))])
    return b.device_om([[(0, _md_bytes()), (3, tbe), (2, bytes(16))]])


@pytest.mark.parametrize(
    "data",
    [
        b"this is fake om\n",
        b"",
        _valid()[:300],
        _valid()[:-1],
        _valid() + b"\0",
        b"IMOD" + bytes(300),
    ],
    ids=["text", "empty", "cut-in-table", "cut-by-one", "padded", "zero-header"],
)
def test_truncated_text_and_padded_files(data):
    with pytest.raises(GeError):
        read_device_om(data)


def test_corrupted_offsets_and_counts():
    good = bytearray(_valid())
    for pos, value in ((256 + 4 + 4, 999), (256, 0), (256, 10_000), (256 + 4 + 8, 1 << 30)):
        bad = bytearray(good)
        struct.pack_into("<I", bad, pos, value)
        with pytest.raises(GeError):
            read_device_om(bytes(bad))


def test_deep_recursion_is_refused():
    data = b.device_om([[(0, _md_bytes())]])
    for level in range(MAX_DEPTH + 1):
        data = b.flow_om([(f"level{level}", data)])
    with pytest.raises(GeError, match="nested more than"):
        read_device_om(data)


def test_random_corruption_only_ge_errors():
    good = _valid()
    rng = np.random.default_rng(3)
    for _ in range(300):
        bad = bytearray(good)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 6)):
            bad[pos] = int(rng.integers(0, 256))
        try:
            om = read_device_om(bytes(bad))
            describe(om)
            to_json(om, shapes=True)
        except GeError:
            pass
