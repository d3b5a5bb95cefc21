"""The fused op family (openge/ops/fused.py): FusedConv2D, FusedMatMul, FusedElementwise."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.graph import DataType, Graph, TensorDesc
from openge.om.writer import serialize
from openge.ops import evaluate, get_schema, infer_node
from openge.ops.fused import decode_program, encode_program
from openge.runtime import Model

from .models import ALL_MODELS

F32 = DataType.DT_FLOAT


def _step(op, args, shape, attrs=None, dtype=F32):
    return {"op": op, "attrs": attrs or {}, "args": args, "dtype": dtype, "shape": shape}


def _node(op_type, descs, attrs, consts=None):
    g = Graph("f")
    ports = []
    for i, d in enumerate(descs):
        if d is None:
            ports.append(None)
            continue
        n = g.add_node("Data", name=f"in{i}", attrs={"index": i}, output_descs=[d])
        ports.append(n.output(0))
    node = g.add_node(op_type, ports, name="fused", attrs=attrs)
    return node


def test_fused_matmul_matches_the_formula():
    rng = np.random.default_rng(0)
    x, w, b, r = (rng.normal(size=s).astype(np.float32) for s in ((4, 6), (5, 6), (5,), (4, 5)))
    prog = encode_program([_step("Add", [0, 1], (4, 5)), _step("Relu", [-1], (4, 5))])
    attrs = {"transpose_x2": True, "epilogue": prog}
    node = _node("FusedMatMul", [TensorDesc(F32, a.shape) for a in (x, w, b, r)], attrs)
    norm, descs = infer_node(node)
    assert descs[0].shape == (4, 5)
    y = evaluate(get_schema("FusedMatMul"), norm, [x, w, b, r], descs)[0]
    np.testing.assert_allclose(y, np.maximum(x @ w.T + b + r, 0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_matmul_prepared_small_gives_the_kernels_bits(with_bias):
    """Below the compiled-epilogue size, prepare binds the kernel's own steps once: the same
    bits as the kernel, run after run, and the formula's values."""
    rng = np.random.default_rng(2)
    x = np.zeros((1, 8, 16), np.float32)
    w = rng.normal(size=(12, 16)).astype(np.float32)
    b = rng.normal(size=(12,)).astype(np.float32) if with_bias else None
    r = np.zeros((1, 8, 12), np.float32)
    prog = encode_program([_step("Add", [0, 1], (1, 8, 12)), _step("Relu", [-1], (1, 8, 12))])
    attrs = {"transpose_x1": False, "transpose_x2": True, "epilogue": prog}
    schema = get_schema("FusedMatMul")
    y = np.empty((1, 8, 12), np.float32)
    run = schema.prepare([x, w, b, r], [y], [False, True, True, False], **attrs)
    assert run is not None
    for _ in range(2):
        x[...] = rng.normal(size=x.shape)
        r[...] = rng.normal(size=r.shape)
        run()
        want = np.empty_like(y)
        schema.kernel([x, w, b, r], [want], **attrs)
        np.testing.assert_array_equal(y, want)
        ref = x @ w.T + (0 if b is None else b) + r
        np.testing.assert_allclose(y, np.maximum(ref, 0), rtol=1e-5, atol=1e-5)


def test_fused_conv2d_equals_conv_then_epilogue():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 3, 6, 6)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    conv_attrs = {"strides": [1, 1, 1, 1], "pads": [1, 1, 1, 1], "data_format": "NCHW"}
    prog = encode_program([_step("Relu6", [0], (1, 4, 6, 6))])
    node = _node(
        "FusedConv2D",
        [TensorDesc(F32, x.shape), TensorDesc(F32, w.shape)],
        {**conv_attrs, "epilogue": prog},
    )
    norm, descs = infer_node(node)
    fused = evaluate(get_schema("FusedConv2D"), norm, [x, w], descs)[0]
    cnode = _node("Conv2D", [TensorDesc(F32, x.shape), TensorDesc(F32, w.shape)], conv_attrs)
    cn, cd = infer_node(cnode)
    plain = evaluate(get_schema("Conv2D"), cn, [x, w], cd)[0]
    np.testing.assert_array_equal(fused, np.clip(plain, 0, 6))


@pytest.mark.parametrize("alias", [None, 0, 1])
def test_fused_elementwise_in_place_on_any_operand(alias):
    rng = np.random.default_rng(2)
    a, c = rng.normal(size=(2, 8)).astype(np.float32), rng.normal(size=(2, 8)).astype(np.float32)
    # y = tanh((a * c) + a) - c : operands are read after the first step
    prog = decode_program(
        encode_program(
            [
                _step("Mul", [0, 1], (2, 8)),
                _step("Add", [-1, 0], (2, 8)),
                _step("Tanh", [-2], (2, 8)),
                _step("Sub", [-3, 1], (2, 8)),
            ]
        )
    )
    expected = np.tanh(a * c + a) - c
    ops = [a.copy(), c.copy()]
    out = np.empty_like(a) if alias is None else ops[alias]
    prog.run(ops, out)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_a_value_read_twice_is_not_overwritten_in_place():
    # c = a + b is read by two later steps (the LSTM cell state): it must not live in out
    rng = np.random.default_rng(3)
    a, b, g = (rng.normal(size=(2, 3)).astype(np.float32) for _ in range(3))
    prog = decode_program(
        encode_program(
            [
                _step("Add", [0, 1], (2, 3)),
                _step("Mul", [2, -1], (2, 3)),
                _step("Sigmoid", [-2], (2, 3)),
                _step("Tanh", [-1], (2, 3)),
                _step("Mul", [-3, -4], (2, 3)),
            ]
        )
    )
    c = a + b
    expected = (1 / (1 + np.exp(-(g * c)))) * np.tanh(c)
    for alias in (None, 0, 2):
        ops = [a.copy(), b.copy(), g.copy()]
        out = np.empty_like(a) if alias is None else ops[alias]
        prog.run(ops, out)
        np.testing.assert_allclose(out, expected, rtol=1e-5, err_msg=f"alias {alias}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
def test_relu_steps_match_maximum_with_zero(dtype):
    # program Relu steps run as maximum(x, zeros), chunk by chunk; integers and views fall back
    import openge.ops.fused as fused

    n = fused._ZERO_CHUNK + 12345
    x = np.random.default_rng(4).normal(size=n).astype(dtype)
    if dtype != np.int32:
        x[:4] = [np.nan, np.inf, -np.inf, -0.0]
    prog = decode_program(encode_program([_step("Relu", [0], (n,), dtype=_dt(dtype))]))
    expected = np.maximum(x, 0)
    for out in (np.empty_like(x), np.empty((n, 2), dtype)[:, 0]):  # contiguous, strided
        prog.run([x], out)
        np.testing.assert_array_equal(out, expected)
    inplace = x.copy()
    prog.run([inplace], inplace)
    np.testing.assert_array_equal(inplace, expected)


def _dt(dtype):
    return {
        np.float32: F32,
        np.float64: DataType.DT_DOUBLE,
        np.float16: DataType.DT_FLOAT16,
        np.int32: DataType.DT_INT32,
    }[dtype]


def test_program_errors_name_the_node():
    d = TensorDesc(F32, (2, 2))
    bad = {
        "not json": "{",
        "unknown op": encode_program([_step("NoSuchOp", [0], (2, 2))]),
        "later step": encode_program([_step("Relu", [-2], (2, 2)), _step("Relu", [0], (2, 2))]),
        "stale shape": encode_program([_step("Relu", [0], (3, 3))]),
        "missing operand": encode_program([_step("Add", [0, 4], (2, 2))]),
    }
    for what, program in bad.items():
        node = _node("FusedElementwise", [d], {"program": program})
        with pytest.raises(GeError, match="fused"):
            infer_node(node)
        assert what


def test_epilogue_must_keep_the_main_result_type():
    prog = encode_program(
        [_step("Cast", [0], (2, 3), {"dst_type": DataType.DT_INT32}, DataType.DT_INT32)]
    )
    node = _node(
        "FusedMatMul", [TensorDesc(F32, (2, 4)), TensorDesc(F32, (4, 3))], {"epilogue": prog}
    )
    with pytest.raises(GeError, match="epilogue"):
        infer_node(node)


def test_tensor_attrs_cannot_be_encoded():
    with pytest.raises(TypeError):
        encode_program([_step("Relu", [0], (1,), {"x": np.zeros(2)})])


def test_fused_models_round_trip_through_the_om():
    b = ALL_MODELS["cnn"]()
    compiled = compile_graph(b.g, {})
    assert {"FusedConv2D", "FusedMatMul"} & {t.op_type for t in compiled.tasks}
    feeds = b.feeds()
    with Model(compiled) as direct, Model.from_bytes(serialize(compiled, online=False)) as loaded:
        for u, v in zip(direct.execute(feeds), loaded.execute(feeds), strict=True):
            np.testing.assert_array_equal(u, v)
