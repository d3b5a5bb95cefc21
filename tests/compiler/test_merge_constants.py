"""MergeConstantsPass: equal constants (type, shape, format, bytes) become one node."""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.merge_constants import MergeConstantsPass

from .models import Builder, apply_passes, evaluate_graph, op_types


def test_equal_constants_merge_different_ones_stay():
    b = Builder("merge")
    x = b.input((4,))
    one_a = b.const(np.ones(4, np.float32))
    one_b = b.const(np.ones(4, np.float32))
    ones_f64 = b.const(np.ones(4, np.float64))
    neg_zero = b.const(np.array([-0.0] * 4, np.float32))
    zero = b.const(np.zeros(4, np.float32))
    y = b.op("Add", b.op("Add", b.op("Mul", x, one_a), one_b), b.op("Sub", neg_zero, zero))
    g = b.done(y, b.op("Cast", ones_f64, dst_type=0))
    before = g.clone()
    assert apply_passes(g, MergeConstantsPass())
    assert op_types(g).count("Const") == 4  # one_b merged; -0.0 and 0.0 differ in bytes
    feeds = b.feeds()
    for a, c in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_array_equal(a, c)
    assert not MergeConstantsPass().run(g, None)
