"""EliminateCommonSubexpressionsPass: equal computations on equal inputs happen once."""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.eliminate_common_subexpressions import (
    EliminateCommonSubexpressionsPass,
)
from openge.compiler.passes.merge_constants import MergeConstantsPass

from .models import Builder, apply_passes, evaluate_graph, op_types


def test_duplicates_merge_after_constant_merging():
    b = Builder("cse")
    x = b.input((3, 4))
    a = b.op("Mul", b.op("Exp", x), b.const(np.float32(2)))
    c = b.op("Mul", b.op("Exp", x), b.const(np.float32(2)))
    d = b.op("Transpose", x, b.const(np.array([1, 0])))
    e = b.op("TransposeD", x, perm=[1, 0])  # another op type: not merged
    s1 = b.op("SoftmaxV2", x, axes=[0])
    s2 = b.op("SoftmaxV2", x, axes=[1])  # other attrs: not merged
    g = b.done(b.op("Add", a, c), d, e, s1, s2)
    before = g.clone()
    assert apply_passes(g, MergeConstantsPass(), EliminateCommonSubexpressionsPass())
    types = op_types(g)
    assert types.count("Exp") == 1 and types.count("Mul") == 1
    assert types.count("SoftmaxV2") == 2 and "TransposeD" in types and "Transpose" in types
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_array_equal(u, v)


def test_stateful_and_output_nodes_are_kept():
    b = Builder("cse_state")
    x = b.input((2,))
    y1 = b.op("Relu", x)
    y2 = b.op("Relu", x)  # both are graph outputs: names stay
    g = b.done(y1, y2)
    assert not apply_passes(g, EliminateCommonSubexpressionsPass())
