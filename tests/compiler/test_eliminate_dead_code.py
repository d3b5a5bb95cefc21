"""EliminateDeadCodePass: nodes no output needs go; state updates and inputs stay."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass

from .models import Builder, apply_passes, evaluate_graph, op_types


def test_removes_unused_branches_keeps_inputs():
    b = Builder("dce")
    x = b.input((3, 4))
    unused = b.input((2,))
    b.op("Exp", b.op("Neg", x))  # dead
    g = b.done(b.op("Relu", x))
    before = g.clone()
    assert apply_passes(g, EliminateDeadCodePass())
    assert op_types(g) == ["Data", "Data", "Relu"]
    assert unused.node.name in {n.name for n in g}
    feeds = b.feeds()
    np.testing.assert_array_equal(evaluate_graph(g, feeds)[0], evaluate_graph(before, feeds)[0])
    assert not EliminateDeadCodePass().run(g, None)


def test_option_turns_it_off():
    b = Builder("dce_off")
    x = b.input((3, 4))
    b.op("Exp", x)
    g = b.done(b.op("Relu", x))
    model = compile_graph(
        g, {"ge.oo.deadCodeElimination": "0", "ge.disableOptimizations": "FuseElementwisePass"}
    )
    assert "Exp" in {t.op_type for t in model.tasks}
