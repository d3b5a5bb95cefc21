"""FuseBiasActivationPass: bias adds into conv/matmul, elementwise epilogues fused."""

from __future__ import annotations

import json

import numpy as np

from openge.compiler.passes.fuse_bias_activation import FuseBiasActivationPass
from openge.graph import Format

from .models import Builder, _conv, apply_passes, evaluate_graph, op_types


def _same(b, g, before):
    """The fused graph gives the unfused graph's bits on the NumPy kernels (compiled
    epilogues, e.g. a float32 sigmoid, differ from NumPy's in the last bits)."""
    from openge import kernels

    feeds = b.feeds()
    kernels.set_enabled(False)
    try:
        for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
            np.testing.assert_array_equal(u, v)
    finally:
        kernels.set_enabled(True)


def test_conv_bias_relu_and_residual_become_one_task():
    b = Builder("conv")
    x = b.input((2, 4, 8, 8), fmt=Format.FORMAT_NCHW)
    c = _conv(b, x, 4, 4)
    y = b.op("Relu", b.op("Add", b.op("Add", c, b.weight(1, 4, 1, 1)), x))
    g = b.done(y)
    before = g.clone()
    assert apply_passes(g, FuseBiasActivationPass())
    assert op_types(g).count("FusedConv2D") == 1
    assert not {"Add", "Relu", "Conv2D"} & set(op_types(g))
    fused = g.outputs[0].node
    assert fused.name == y.node.name
    steps = json.loads(fused.attrs["epilogue"])["steps"]
    assert [s["op"] for s in steps] == ["Add", "Relu"]
    _same(b, g, before)


def test_matmul_bias_gelu_and_batch_matmul():
    b = Builder("mm")
    x = b.input((4, 16))
    h = b.op("Gelu", b.op("Add", b.weight(8, scale=0.1), b.op("MatMulV2", x, b.weight(16, 8))))
    z = b.input((2, 3, 16))
    k = b.op(
        "Sigmoid", b.op("Add", b.op("BatchMatMulV2", z, b.weight(16, 8)), b.weight(8, scale=0.1))
    )
    g = b.done(h, k)
    before = g.clone()
    assert apply_passes(g, FuseBiasActivationPass())
    assert op_types(g).count("FusedMatMul") == 2
    _same(b, g, before)


def test_no_fusion_when_result_is_shared_or_broadcasts():
    b = Builder("nofuse")
    x = b.input((4, 16))
    m = b.op("MatMulV2", x, b.weight(16, 8))
    r = b.op("Relu", m)
    grown = b.op("Add", b.op("MatMulV2", x, b.weight(16, 1)), b.weight(4, 8))  # (4,1)+(4,8)
    g = b.done(r, m, grown)
    before = g.clone()
    assert not apply_passes(g, FuseBiasActivationPass())
    _same(b, g, before)


def test_at_most_two_extra_operands():
    b = Builder("extras")
    x = b.input((4, 8))
    m = b.op("MatMulV2", x, b.weight(8, 8))
    y = b.op("Add", b.op("Mul", b.op("Sub", m, b.input((4, 8))), b.input((4, 8))), b.input((4, 8)))
    g = b.done(y)
    before = g.clone()
    assert apply_passes(g, FuseBiasActivationPass())
    last = g.outputs[0].node
    assert last.op_type == "Add"  # a third extra operand: not fused
    fused = last.inputs[0].node
    assert fused.op_type == "FusedMatMul"
    assert [s["op"] for s in json.loads(fused.attrs["epilogue"])["steps"]] == ["Sub", "Mul"]
    _same(b, g, before)


def test_silu_reading_the_result_twice_is_one_epilogue():
    """EfficientNet's SiLU, x·Sigmoid(x): the result has two readers, both in the epilogue."""
    b = Builder("silu")
    x = b.input((1, 4, 8, 8), fmt=Format.FORMAT_NCHW)
    c = b.op("Add", _conv(b, x, 4, 8), b.weight(1, 8, 1, 1))
    y = b.op("Mul", c, b.op("Sigmoid", c))
    g = b.done(y)
    before = g.clone()
    assert apply_passes(g, FuseBiasActivationPass())
    assert op_types(g).count("FusedConv2D") == 1
    assert not {"Conv2D", "Sigmoid", "Mul", "Add"} & set(op_types(g))
    fused = g.outputs[0].node
    steps = json.loads(fused.attrs["epilogue"])["steps"]
    assert [(s["op"], s["args"]) for s in steps] == [("Sigmoid", [0]), ("Mul", [0, -1])]
    _same(b, g, before)


def test_diamond_stops_before_a_value_read_outside():
    """x·Sigmoid(x) where Sigmoid(x) is also a graph output, and a conv whose result is also
    read by another conv: only what is closed is fused, the results stay the same."""
    b = Builder("diamond")
    x = b.input((1, 4, 8, 8), fmt=Format.FORMAT_NCHW)
    c = _conv(b, x, 4, 4)
    s = b.op("Sigmoid", c)
    y = b.op("Mul", c, s)
    c2 = _conv(b, y, 4, 4)
    z = b.op("Add", b.op("Relu", c2), _conv(b, c2, 4, 4))
    g = b.done(y, s, z)
    before = g.clone()
    apply_passes(g, FuseBiasActivationPass())
    types = op_types(g)
    # the first conv's result is read by Sigmoid (a graph output) and Mul: Sigmoid alone
    # would leave c read outside, so nothing fuses there; c2 is read by a conv: unfused
    assert types.count("Mul") == 1 and types.count("Sigmoid") == 1
    assert types.count("Relu") == 1
    _same(b, g, before)
