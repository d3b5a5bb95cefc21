"""FoldConstantsPass and FoldLargeConstantsPass: constant subgraphs become Consts."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass
from openge.compiler.passes.fold_constants import FoldConstantsPass
from openge.compiler.passes.fold_large_constants import FoldLargeConstantsPass

from .models import Builder, apply_passes, evaluate_graph, op_types


def _graph():
    b = Builder("fold")
    x = b.input((4, 128))
    # a small constant expression and a big generated weight
    scale = b.op("Mul", b.const(np.float32(2.0)), b.const(np.float32(3.0)))
    w = b.op("Fill", b.const(np.array([64, 128], np.int64)), b.const(np.float32(0.01)))
    wt = b.op("TransposeD", w, perm=[1, 0])
    y = b.op("Mul", b.op("MatMulV2", x, wt), scale)
    return b, b.done(y)


def test_small_constants_fold_big_ones_stay():
    b, g = _graph()
    before = g.clone()
    assert apply_passes(g, FoldConstantsPass(), EliminateDeadCodePass())
    types = op_types(g)
    assert "Fill" in types and types.count("Mul") == 1
    np.testing.assert_array_equal(
        evaluate_graph(g, b.feeds())[0], evaluate_graph(before, b.feeds())[0]
    )


def test_large_constants_fold_without_duplicating_shared_weights():
    b, g = _graph()
    before = g.clone()
    assert apply_passes(g, FoldConstantsPass(), FoldLargeConstantsPass())
    assert "Fill" not in op_types(g) and "TransposeD" not in op_types(g)
    np.testing.assert_array_equal(
        evaluate_graph(g, b.feeds())[0], evaluate_graph(before, b.feeds())[0]
    )
    # a transpose of a big weight that is also read elsewhere is not folded (no second copy)
    b2 = Builder("shared")
    x = b2.input((128, 128))
    w = b2.weight(128, 128)
    t = b2.op("TransposeD", w, perm=[1, 0])
    g2 = b2.done(b2.op("Add", b2.op("MatMulV2", x, t), b2.op("MatMulV2", x, w)))
    assert not apply_passes(g2, FoldLargeConstantsPass())
    assert "TransposeD" in op_types(g2)


def test_constant_folding_option_turns_both_off():
    _, g = _graph()
    on = compile_graph(g, {})
    off = compile_graph(g, {"ge.oo.constantFolding": "0"})
    assert "Fill" in {t.op_type for t in off.tasks}
    assert "Fill" not in {t.op_type for t in on.tasks}
