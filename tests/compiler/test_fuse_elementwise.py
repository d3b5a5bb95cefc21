"""FuseElementwisePass: elementwise trees as one FusedElementwise task, bit-exact."""

from __future__ import annotations

import json

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes.fuse_elementwise import FuseElementwisePass
from openge.graph import DataType

from .models import Builder, apply_passes, evaluate_graph, op_types, run


def test_gelu_like_tree_is_one_task():
    b = Builder("gelu")
    x = b.input((4, 6))
    inner = b.op(
        "Add", b.op("Erf", b.op("Mul", x, b.const(np.float32(0.7071)))), b.const(np.float32(1.0))
    )
    y = b.op("Mul", b.op("Mul", x, inner), b.const(np.float32(0.5)))
    side = b.op("Exp", x)  # x has other readers: it stays an operand
    g = b.done(y, side)
    before = g.clone()
    assert apply_passes(g, FuseElementwisePass())
    assert op_types(g).count("FusedElementwise") == 1
    fused = g.outputs[0].node
    assert fused.name == y.node.name
    assert [s["op"] for s in json.loads(fused.attrs["program"])["steps"]] == [
        "Mul",
        "Erf",
        "Add",
        "Mul",
        "Mul",
    ]
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_array_equal(u, v)


def test_mixed_dtypes_and_broadcasting_stay_exact():
    b = Builder("mixed")
    x = b.input((3, 1), dtype=DataType.DT_FLOAT16)
    yv = b.input((1, 5), dtype=DataType.DT_FLOAT16)
    s = b.op("Cast", b.op("Mul", b.op("Add", x, yv), x), dst_type=DataType.DT_FLOAT)
    g = b.done(b.op("Sqrt", b.op("Abs", s)))
    before = g.clone()
    assert apply_passes(g, FuseElementwisePass())
    assert op_types(g).count("FusedElementwise") == 1
    feeds = b.feeds()
    np.testing.assert_array_equal(evaluate_graph(g, feeds)[0], evaluate_graph(before, feeds)[0])


def test_intermediate_outputs_and_non_elementwise_break_groups():
    b = Builder("groups")
    x = b.input((4, 4))
    a = b.op("Relu", b.op("Neg", x))
    s = b.op("SoftmaxV2", a)
    y = b.op("Tanh", b.op("Exp", s))
    g = b.done(y, a)
    assert apply_passes(g, FuseElementwisePass())
    assert op_types(g).count("FusedElementwise") == 2  # Neg+Relu (a is an output), Exp+Tanh
    assert "SoftmaxV2" in op_types(g)


def test_fused_chain_runs_in_place_with_reuse_on_and_off():
    b = Builder("inplace")
    x = b.input((64, 64))
    h = b.op("MatMulV2", x, b.weight(64, 64))
    h = b.op("Tanh", b.op("Mul", b.op("Sigmoid", h), b.const(np.float32(3.0))))
    g = b.done(b.op("MatMulV2", h, b.weight(64, 64)))
    feeds = b.feeds()
    model = compile_graph(g, {"ge.disableOptimizations": "FuseBiasActivationPass"})
    assert "FusedElementwise" in {t.op_type for t in model.tasks}
    assert model.stats["arena_aliases"]  # the fused chain writes over its dying input
    on = run(g, feeds, {"ge.disableOptimizations": "FuseBiasActivationPass"})
    off = run(
        g,
        feeds,
        {"ge.disableOptimizations": "FuseBiasActivationPass", "ge.exec.disableReuseMemory": "1"},
    )
    np.testing.assert_array_equal(on[0], off[0])
