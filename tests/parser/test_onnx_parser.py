"""parse_onnx: loading, inputs/initializers, input_shape, unsupported-op reporting, opsets,
external data, and opset-dependent mappings checked against onnx.reference."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.graph import DataType
from openge.parser import parse_onnx, supported_ops
from openge.runtime.model import Model

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=18, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def _run(model, feeds, **parse_kwargs):
    graph = parse_onnx(model, **parse_kwargs)
    compiled = compile_graph(graph)
    with Model(compiled) as m:
        names = [d.name for d in m.inputs]
        return m.execute([feeds[n] for n in names])


def _check(model, feeds, rtol=1e-5, atol=1e-6, **parse_kwargs):
    got = _run(model, feeds, **parse_kwargs)
    want = ReferenceEvaluator(model).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _relu_model(shape=(2, 3)):
    return _model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [_vi("x", shape)], [_vi("y", shape)]
    )


# ----- loading --------------------------------------------------------------------------------


def test_accepts_proto_bytes_and_path(tmp_path):
    model = _relu_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    for source in (model, model.SerializeToString(), str(path), path):
        graph = parse_onnx(source)
        assert [n.op_type for n in graph.topological_order()] == ["Data", "Relu"]


def test_bad_sources_raise_geerror(tmp_path):
    with pytest.raises(GeError, match="does not exist"):
        parse_onnx(str(tmp_path / "missing.onnx"))
    with pytest.raises(GeError, match="not an ONNX model"):
        parse_onnx(b"\x01\x02garbage")
    with pytest.raises(GeError, match=r"file path, bytes or an onnx\.ModelProto"):
        parse_onnx(42)


def test_inputs_are_data_nodes_in_order_and_initializers_are_consts():
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    model = _model(
        [helper.make_node("Add", ["a", "w"], ["s"]), helper.make_node("Mul", ["s", "b"], ["y"])],
        # old-style model: the initializer is also listed as an input
        [_vi("a", [2, 3]), _vi("w", [2, 3]), _vi("b", [2, 3])],
        [_vi("y", [2, 3])],
        inits=[w],
    )
    graph = parse_onnx(model)
    data = graph.inputs
    assert [(n.name, n.attrs["index"]) for n in data] == [("a", 0), ("b", 1)]
    consts = [n for n in graph if n.op_type == "Const"]
    assert any(
        np.array_equal(n.attrs["value"].numpy(), w_arr)
        for n in consts
        for w_arr in [numpy_helper.to_array(w)]
    )
    a = np.ones((2, 3), np.float32)
    b = np.full((2, 3), 2, np.float32)
    (y,) = _run(model, {"a": a, "b": b})
    np.testing.assert_array_equal(y, (a + numpy_helper.to_array(w)) * b)


def test_output_names_are_recorded():
    graph = parse_onnx(_relu_model())
    assert graph.attrs["onnx_output_names"] == ["y"]


# ----- input_shape and dynamic dims ---------------------------------------------------------------


def test_dynamic_dims_stay_dynamic_unless_input_shape_fixes_them():
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["batch", 3])], [_vi("y", ["batch", 3])]
    )
    graph = parse_onnx(model)  # symbolic dims stay dynamic (-1): a dynamic-shape graph
    assert graph.inputs[0].output_descs[0].shape == (-1, 3)
    assert [n.op_type for n in graph.nodes if n.op_type != "Data"] == ["FrameworkOp"]
    graph = parse_onnx(model, {"input_shape": "x:4,3"})
    assert graph.inputs[0].output_descs[0].shape == (4, 3)
    (y,) = _run(model, {"x": -np.ones((4, 3), np.float32)}, options={"input_shape": "x:4,3"})
    assert y.shape == (4, 3) and not y.any()


def test_unknown_rank_inputs_are_named():
    model = _model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [_vi("a", None), _vi("b", None)],
        [_vi("y", ["n", 3])],
    )
    with pytest.raises(GeError, match="unknown rank") as err:
        parse_onnx(model)
    assert "a:" in str(err.value) and "b:" in str(err.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("y:1,3", "input_shape names y"),
        ("x:1,3,4", "gives x 3 dims"),
        ("x:2,4", "fixes it to"),
        ("x1,3", "no name:dims"),
        ("x:a,b", "not a number"),
        ("x:3~1,3", "lo ≤ hi"),
    ],
)
def test_bad_input_shape(text, match):
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["n", 3])], [_vi("y", ["n", 3])]
    )
    with pytest.raises(GeError, match=match):
        parse_onnx(model, {"input_shape": text})


def test_option_values_must_be_strings():
    with pytest.raises(GeError, match="strings"):
        parse_onnx(_relu_model(), {"input_shape": 3})


def test_constant_inputs_bind_shape_inputs():
    model = _model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [_vi("x", [2, 6]), _vi("shape", [2], TensorProto.INT64)],
        [_vi("y", [3, 4])],
    )
    # unbound, the Reshape is decided at run time (a FrameworkOp in a dynamic-shape graph)
    assert [n.op_type for n in parse_onnx(model).nodes].count("FrameworkOp") == 1
    graph = parse_onnx(model, constant_inputs={"shape": np.array([3, 4])})
    assert not [n for n in graph.nodes if n.op_type == "FrameworkOp"]
    assert [n.name for n in graph.inputs] == ["x"]
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    (y,) = _run(model, {"x": x}, constant_inputs={"shape": np.array([3, 4])})
    np.testing.assert_array_equal(y, x.reshape(3, 4))
    with pytest.raises(GeError, match="constant_inputs names nope"):
        parse_onnx(model, constant_inputs={"nope": np.array([1])})


# ----- unsupported ops, attributes, opsets ------------------------------------------------------


def test_unsupported_ops_are_listed_together():
    model = _model(
        [
            helper.make_node("StringNormalizer", ["x"], ["a"], name="sn1"),
            helper.make_node("Relu", ["x"], ["b"]),
            helper.make_node("StringNormalizer", ["x"], ["c"], name="sn2"),
            helper.make_node("ImageDecoder", ["x"], ["d"], name="u"),
        ],
        [_vi("x", [3])],
        [_vi("b", [3])],
    )
    with pytest.raises(GeError) as err:
        parse_onnx(model)
    text = str(err.value)
    assert "3 node(s) of 2 op type(s)" in text
    for piece in (
        "StringNormalizer (opset 18; nodes: sn1, sn2)",
        "ImageDecoder (opset 18; nodes: u)",
    ):
        assert piece in text
    assert err.value.name == "ACL_ERROR_FEATURE_UNSUPPORTED"


def test_ops_in_other_domains_are_reported_with_their_domain():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", name="le")
    graph = helper.make_graph([node], "g", [_vi("x", [3])], [_vi("y", [3])])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    with pytest.raises(GeError, match=r"LabelEncoder \(domain ai.onnx.ml v3; nodes: le\)"):
        parse_onnx(model)


def test_unknown_attribute_is_refused_not_ignored():
    node = helper.make_node("Relu", ["x"], ["y"], name="r", future_attr=3)
    model = _model([node], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(GeError, match=r"attribute.*future_attr.*not supported"):
        parse_onnx(model)


def test_opset_too_new_is_refused():
    model = _relu_model()
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(GeError, match="opsets up to"):
        parse_onnx(model)


def test_old_opset_is_upgraded():
    # opset 6 Add with the legacy broadcast attribute, upgraded to opset 7 by onnx's converter
    node = helper.make_node("Add", ["a", "b"], ["y"], broadcast=1)
    model = _model([node], [_vi("a", [2, 3]), _vi("b", [3])], [_vi("y", [2, 3])], opset=6)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, 2, 3], np.float32)
    (y,) = _run(model, {"a": a, "b": b})
    np.testing.assert_array_equal(y, a + b)


def test_mapping_errors_name_the_onnx_node():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="my_reshape")
    s = numpy_helper.from_array(np.array([5, 5], np.int64), "s")
    model = _model([node], [_vi("x", [2, 3])], [_vi("y", [5, 5])], inits=[s])
    with pytest.raises(GeError, match=r"my_reshape.*Reshape"):
        parse_onnx(model)


def test_supported_ops_lists_default_domain_ops():
    ops = supported_ops()
    for op in ("Conv", "Gemm", "Resize", "Attention", "If", "Scan"):
        assert op in ops


# ----- external data ---------------------------------------------------------------------------


def test_external_data_is_memory_mapped(tmp_path):
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [_vi("x", [2, 64])],
        [_vi("y", [2, 32])],
        inits=[numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "big.onnx"
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="big.data",
        size_threshold=0,
    )
    assert os.path.getsize(tmp_path / "big.data") >= w.nbytes
    graph = parse_onnx(str(path))
    const = next(n for n in graph if n.op_type == "Const")
    value = const.attrs["value"].numpy()
    assert not value.flags.owndata and not value.flags.writeable  # a view of the file mapping
    x = np.ones((2, 64), np.float32)
    (y,) = _run(str(path), {"x": x})
    np.testing.assert_allclose(y, x @ w, rtol=1e-5)
    # bytes carry no folder to find the data file in
    with pytest.raises(GeError, match="pass the model as a file path"):
        parse_onnx(onnx.load(str(path), load_external_data=False).SerializeToString())


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    t = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    for key, value in (("location", "../escape.bin"), ("offset", "0"), ("length", "16")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    model = _model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", [4])], [_vi("y", [4])], inits=[t]
    )
    path = tmp_path / "m.onnx"
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    with pytest.raises(GeError, match="relative path inside the model's folder"):
        parse_onnx(str(path))


# ----- opset-dependent mappings against onnx.reference --------------------------------------------

_RNG = np.random.default_rng(7)


def _x(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


def _i64(values, name):
    return numpy_helper.from_array(np.array(values, np.int64), name)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_axes_attribute_or_input(opset):
    if opset < 13:
        node = helper.make_node("Squeeze", ["x"], ["y"], axes=[1, -1])
        inits = []
    else:
        node = helper.make_node("Squeeze", ["x", "axes"], ["y"])
        inits = [_i64([1, -1], "axes")]
    model = _model([node], [_vi("x", [3, 1, 4, 1])], [_vi("y", [3, 4])], inits, opset=opset)
    _check(model, {"x": _x(3, 1, 4, 1)})


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_forms(opset):
    if opset == 11:
        node = helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 4])
        inits = []
    elif opset == 13:
        node = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1)
        inits = [_i64([1, 4], "s")]
    else:
        node = helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2)
        inits = []
    outs = [_vi("a", None), _vi("b", None)]
    model = _model([node], [_vi("x", [2, 5])], outs, inits, opset=opset)
    _check(model, {"x": _x(2, 5)})


@pytest.mark.parametrize(("opset", "keep", "noop"), [(11, 1, 0), (13, 0, 0), (18, 1, 1)])
def test_reduce_axes_forms(opset, keep, noop):
    if opset < 13:
        node = helper.make_node("ReduceSum", ["x"], ["y"], axes=[0, 2], keepdims=keep)
        inits = []
    elif opset == 13:
        node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=keep)
        inits = [_i64([0, 2], "axes")]
    else:  # empty axes with noop_with_empty_axes: identity
        node = helper.make_node(
            "ReduceMean", ["x", "axes"], ["y"], keepdims=keep, noop_with_empty_axes=noop
        )
        inits = [_i64([], "axes")]
    model = _model([node], [_vi("x", [2, 3, 4])], [_vi("y", None)], inits, opset=opset)
    _check(model, {"x": _x(2, 3, 4)})


@pytest.mark.parametrize("opset", [7, 11, 13])
def test_clip_bounds_as_attributes_or_inputs(opset):
    if opset < 11:
        node = helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.25)
        inits = []
    else:
        node = helper.make_node("Clip", ["x", "", "hi"], ["y"])  # no lower bound
        inits = [numpy_helper.from_array(np.array(0.25, np.float32), "hi")]
    model = _model([node], [_vi("x", [4, 5])], [_vi("y", [4, 5])], inits, opset=opset)
    _check(model, {"x": _x(4, 5)})


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_before_13_is_on_the_2d_view(opset):
    # onnx.reference applies the opset-13 rule to every opset, so the formula is written here.
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    model = _model([node], [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 4])], opset=opset)
    x = _x(2, 3, 4)
    view = x.reshape(2, 12) if opset < 13 else x
    e = np.exp(view - view.max(axis=1, keepdims=True))
    want = (e / e.sum(axis=1, keepdims=True)).reshape(2, 3, 4)
    (y,) = _run(model, {"x": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(mode):
    node = helper.make_node("Pad", ["x", "pads", "v"], ["y"], mode=mode)
    inits = [_i64([1, 2, 2, 1], "pads"), numpy_helper.from_array(np.array(1.5, np.float32), "v")]
    model = _model([node], [_vi("x", [3, 4])], [_vi("y", [6, 7])], inits, opset=19)
    _check(model, {"x": _x(3, 4)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(auto_pad):
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2], kernel_shape=[3, 2]
    )
    w = numpy_helper.from_array(_x(4, 2, 3, 2), "w")
    model = _model([node], [_vi("x", [1, 2, 7, 6])], [_vi("y", None)], [w])
    _check(model, {"x": _x(1, 2, 7, 6)}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("act", "attrs"), [("HardSwish", {}), ("HardSigmoid", {"alpha": 0.3})])
def test_hard_activations_after_a_conv_are_its_epilogue(act, attrs):
    """HardSwish is x·HardSigmoid(x, 1/6, 1/2) and HardSigmoid the catalog op: each runs
    inside the convolution's task (one FusedConv2D), with ONNX's values."""
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[1, 1])
    node = helper.make_node(act, ["c"], ["y"], **attrs)
    inits = [numpy_helper.from_array(_x(16, 8, 1, 1), "w"), numpy_helper.from_array(_x(16), "b")]
    model = _model([conv, node], [_vi("x", [1, 8, 6, 6])], [_vi("y", None)], inits)
    compiled = compile_graph(parse_onnx(model))
    assert [t.op_type for t in compiled.tasks] == ["FusedConv2D"]
    x = 4 * _x(1, 8, 6, 6)
    _check(model, {"x": x}, rtol=1e-5, atol=1e-5)


def test_maxpool_with_dilations():
    node = helper.make_node(
        "MaxPool",
        ["x"],
        ["y"],
        kernel_shape=[2, 3],
        dilations=[2, 1],
        pads=[1, 0, 1, 1],
        strides=[1, 2],
    )
    model = _model([node], [_vi("x", [1, 2, 6, 7])], [_vi("y", None)])
    _check(model, {"x": _x(1, 2, 6, 7)})


@pytest.mark.parametrize(("ta", "tb", "alpha", "beta"), [(0, 0, 1.0, 1.0), (1, 1, 0.5, 2.0)])
def test_gemm(ta, tb, alpha, beta):
    node = helper.make_node(
        "Gemm", ["a", "b", "c"], ["y"], transA=ta, transB=tb, alpha=alpha, beta=beta
    )
    a_shape = [4, 3] if ta else [3, 4]
    b_shape = [5, 4] if tb else [4, 5]
    model = _model(
        [node], [_vi("a", a_shape), _vi("b", b_shape), _vi("c", [5])], [_vi("y", [3, 5])]
    )
    _check(model, {"a": _x(*a_shape), "b": _x(*b_shape), "c": _x(5)}, rtol=1e-5)


@pytest.mark.parametrize("fmod", [0, 1])
def test_integer_mod_and_div_follow_onnx(fmod):
    nodes = [
        helper.make_node("Mod", ["a", "b"], ["m"], fmod=fmod),
        helper.make_node("Div", ["a", "b"], ["d"]),
    ]
    i32 = TensorProto.INT32
    model = _model(
        nodes, [_vi("a", [6], i32), _vi("b", [6], i32)], [_vi("m", [6], i32), _vi("d", [6], i32)]
    )
    a = np.array([7, -7, 7, -7, 9, -1], np.int32)
    b = np.array([3, 3, -3, -3, 4, 5], np.int32)
    _check(model, {"a": a, "b": b})


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_modes(mode):
    node = helper.make_node(
        "Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode="half_pixel"
    )
    scales = numpy_helper.from_array(np.array([1, 1, 1.5, 0.75], np.float32), "scales")
    model = _model([node], [_vi("x", [1, 2, 4, 4])], [_vi("y", None)], [scales])
    _check(model, {"x": _x(1, 2, 4, 4)}, rtol=1e-5, atol=1e-5)


def test_if_with_constant_condition_inlines_the_branch():
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["t"])], "then", [], [_vi("t", [3])])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["e"])], "else", [], [_vi("e", [3])])
    cond = numpy_helper.from_array(np.array(False), "c")
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    model = _model([node], [_vi("x", [3])], [_vi("y", [3])], [cond])
    x = np.array([-1, 2, -3], np.float32)
    (y,) = _run(model, {"x": x})
    np.testing.assert_array_equal(y, np.abs(x))


def test_cast_keeps_the_requested_type():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT32)
    model = _model([node], [_vi("x", [4])], [_vi("y", [4], TensorProto.INT32)])
    graph = parse_onnx(model)
    assert graph.outputs[0].desc.dtype == DataType.DT_INT32
    _check(model, {"x": np.array([1.7, -1.7, 0.2, 3.0], np.float32)})


def test_every_mapping_names_existing_catalog_ops_and_is_documented():
    from openge.ops import has_op
    from openge.parser.mappings import registered

    for (domain, op_type), entry in registered().items():
        for since, _until, fn, needs, _shape, _attrs, _inputs in entry.versions:
            missing = [n for n in needs if not has_op(n)]
            assert not missing, f"{domain or 'ai.onnx'}.{op_type} (from {since}) needs {missing}"
            assert fn.__doc__, f"mapping of {op_type} has no docstring"


def test_input_format_option_sets_the_data_layout():
    from openge.graph import Format

    model = _relu_model((1, 3, 4, 4))
    graph = parse_onnx(model, {"input_format": "NCHW"})
    assert graph.inputs[0].output_descs[0].format == Format.FORMAT_NCHW
    with pytest.raises(GeError, match="unknown format"):
        parse_onnx(model, {"input_format": "NCWH"})
