"""Run-or-refuse: a complete device graph loads with Model.from_file and runs; others refuse."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import UNSUPPORTED, GeError
from openge.graph import DataType
from openge.om import ge_ir_pb2 as pb
from openge.runtime.model import Model
from tests.om.device import devom_builder as b

RNG = np.random.default_rng(11)


def _op(g, name, op_type, inputs, in_descs, out_descs):
    op = g.op.add()
    op.name, op.type = name, op_type
    op.input.extend(inputs)
    for d in in_descs:
        b.tensor_desc(op.input_desc.add(), *d)
    for d in out_descs:
        b.tensor_desc(op.output_desc.add(), *d)
    return op


def _conv_model(
    fused: bool = False, extra: str = "", axes: bool = False
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Data → Cast fp16 → TransData NC1HWC0 → Conv2D (+bias) → Relu → TransData → Cast fp32."""
    md = pb.ModelDef()
    md.name = "conv"
    g = md.graph.add()
    g.name = "conv_0"
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float16)
    bias = RNG.standard_normal(4).astype(np.float16)
    weights = b.Weights()
    f32, f16 = pb.DT_FLOAT, pb.DT_FLOAT16
    x_nchw = (f32, [1, 3, 8, 8], "NCHW", "NCHW", [1, 3, 8, 8])
    x16 = (f16, [1, 3, 8, 8], "NCHW", "NCHW", [1, 3, 8, 8])
    x5 = (f16, [1, 1, 8, 8, 16], "NC1HWC0", "NCHW", [1, 3, 8, 8])
    y5 = (f16, [1, 1, 8, 8, 16], "NC1HWC0", "NCHW", [1, 4, 8, 8])
    y16 = (f16, [1, 4, 8, 8], "NCHW", "NCHW", [1, 4, 8, 8])
    y32 = (f32, [1, 4, 8, 8], "NCHW", "NCHW", [1, 4, 8, 8])
    data = _op(g, "x", "Data", [], [x_nchw], [x_nchw])
    data.attr["index"].i = 0
    cast = _op(g, "trans_Cast_0", "Cast", ["x:0"], [x_nchw], [x16])
    cast.attr["dst_type"].i = int(DataType.DT_FLOAT16)
    _op(g, "trans_TransData_1", "TransData", ["trans_Cast_0:0"], [x16], [x5])
    b.add_const(g, weights, "filter", b.to_fractal_z(w, 16), f16, "FRACTAL_Z", "NCHW", [4, 3, 3, 3])
    b.add_const(g, weights, "bias", bias, f16, "ND", "ND", [4])
    conv = _op(g, "conv", "Conv2D", ["trans_TransData_1:0", "filter:0", "bias:0"], [x5], [y5])
    for key, value in (("strides", [1, 1, 1, 1]), ("pads", [1, 1, 1, 1]), ("dilations", [1] * 4)):
        conv.attr[key].list.i.extend(value)
    conv.attr["data_format"].s = b"NCHW"
    if fused:
        conv.attr["fusion_scope"].i = 1
        conv.attr["_datadump_original_op_names"].list.s.extend([b"conv", b"relu"])
        del conv.attr["strides"]
    _op(g, "relu", "Relu", ["conv:0"], [y5], [y5])
    last = "relu"
    if extra:
        odd = _op(g, "odd", extra, ["relu:0"], [y5], [y5])
        odd.attr["original_type"].s = b"RandomUniform"
        if axes:
            odd.attr["axes"].list.i.append(1)
        last = "odd"
    _op(g, "trans_TransData_2", "TransData", [f"{last}:0"], [y5], [y16])
    cast2 = _op(g, "trans_Cast_3", "Cast", ["trans_TransData_2:0"], [y16], [y32])
    cast2.attr["dst_type"].i = int(DataType.DT_FLOAT)
    _op(g, "send", "Send", [], [], [])
    _op(g, "Node_Output", "NetOutput", ["trans_Cast_3:0", "send:-1"], [y32], [])
    md.attr["soc_version"].s = b"Ascend310"
    data_bytes = b.device_om(
        [[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data))]]
    )
    return data_bytes, w, bias


def _reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv 3x3, pad 1, stride 1 in float64 on the fp16-rounded input, + bias, ReLU."""
    xp = np.pad(x.astype(np.float16).astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((1, 4, 8, 8))
    for i in range(8):
        for j in range(8):
            patch = xp[:, :, i : i + 3, j : j + 3]
            out[:, :, i, j] = np.tensordot(patch, w.astype(np.float64), ([1, 2, 3], [1, 2, 3]))
    return np.maximum(out + bias.astype(np.float64)[None, :, None, None], 0)


def test_complete_device_graph_loads_and_runs(tmp_path):
    data, w, bias = _conv_model()
    path = tmp_path / "conv.om"
    path.write_bytes(data)
    model = Model.from_file(path)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    (y,) = model.execute([x])
    assert y.dtype == np.float32 and y.shape == (1, 4, 8, 8)
    np.testing.assert_allclose(y, _reference(x, w, bias), rtol=2e-2, atol=2e-2)
    model.close()


@pytest.mark.parametrize(
    ("fused", "extra", "expected"),
    [
        (True, "", "fused node (fusion_scope 1) merging conv, relu; missing strides"),
        (False, "FrameworkOp", "AICPU FrameworkOp (RandomUniform)"),
        (False, "MyAscendOnlyOp", "kernel-only op: openge has no kernel for MyAscendOnlyOp"),
    ],
)
def test_incomplete_graph_is_refused_with_every_reason(fused, extra, expected):
    data, _, _ = _conv_model(fused=fused, extra=extra)
    with pytest.raises(GeError) as info:
        Model.from_bytes(data)
    assert info.value.code == UNSUPPORTED
    assert expected in info.value.message


def test_check_compatibility_answers_for_device_oms():
    from openge.runtime.compat import check_compatibility

    good, _, _ = _conv_model()
    answer = check_compatibility(good)
    assert answer.ok and answer.format == "device"
    bad, _, _ = _conv_model(extra="FrameworkOp")
    answer = check_compatibility(bad)
    assert not answer.ok and "odd (FrameworkOp)" in answer.reason


def test_softmax_without_axes_runs_and_with_axes_is_refused():
    data, w, bias = _conv_model(extra="SoftmaxV2")
    model = Model.from_bytes(data)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    (y,) = model.execute([x])
    ref = _reference(x, w, bias)
    ref = np.exp(ref - ref.max(-1, keepdims=True))
    np.testing.assert_allclose(y, ref / ref.sum(-1, keepdims=True), rtol=2e-2, atol=2e-2)
    data, _, _ = _conv_model(extra="SoftmaxV2", axes=True)
    with pytest.raises(GeError, match="layout-dependent attr axes"):
        Model.from_bytes(data)


def test_dangling_input_is_a_ge_error():
    data, _, _ = _conv_model()
    bad = data.replace(b"trans_Cast_0:0", b"trans_Cast_9:0")
    with pytest.raises(GeError, match="not consistent"):
        Model.from_bytes(bad)


def test_every_refused_node_is_listed():
    data, _, _ = _conv_model(fused=True, extra="FrameworkOp")
    with pytest.raises(GeError) as info:
        Model.from_bytes(data)
    assert "2 node(s)" in info.value.message
    assert "conv (Conv2D)" in info.value.message and "odd (FrameworkOp)" in info.value.message


def test_file_constant_without_a_task_list_is_refused(tmp_path):
    """Fuzz finding: an openge .om with external weights whose task list is removed reads as a
    device model; its FileConstant nodes (values outside the file) must be refused, not
    compiled into a dynamic model whose run then failed with a KeyError."""
    from openge.compiler import compile_graph
    from openge.graph import Graph
    from openge.om import container as ct
    from openge.om.writer import serialize
    from tests.conftest import const, data

    g = Graph("ext")
    x = data(g, 0, (2, 3), name="x")
    w = const(g, RNG.standard_normal((3, 3)).astype(np.float32), name="w")
    g.set_outputs([g.add_node("MatMulV2", [x.output(0), w.output(0)]).output(0)])
    options = {"ge.externalWeight": "2", "ge.externalWeightDir": str(tmp_path)}
    om = serialize(compile_graph(g, options), online=False)
    pc = ct.parse_container(om)
    parts = [(p.type, bytes(pc.view(p))) for p in pc.partitions]
    parts = [(t, body) for t, body in parts if t != ct.PartitionType.TASK_INFO]
    foreign = ct.pack_container(pc.header, parts)
    with pytest.raises(GeError) as info:
        Model.from_bytes(foreign).execute([np.zeros((2, 3), np.float32)])
    assert info.value.code == UNSUPPORTED
    assert "w (FileConstant)" in info.value.message
