"""taskgen's private by-reference mode (used for dynamic-shape plans): the same layout and
tasks as a normal compile, with no weights blob."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.taskgen import WEIGHTS_BY_REFERENCE
from openge.graph import Graph
from tests.conftest import const, data


def _graph() -> Graph:
    g = Graph("byref")
    x = data(g, 0, (2, 8), name="x")
    w = const(g, np.arange(64, dtype=np.float32).reshape(8, 8), name="w")
    b = const(g, np.ones(8, np.float32), name="b")
    m = g.add_node("MatMulV2", [x.output(0), w.output(0)])
    g.set_outputs([g.add_node("Add", [m.output(0), b.output(0)]).output(0)])
    return g


def test_by_reference_lays_out_the_same_offsets_without_a_blob():
    normal = compile_graph(_graph())
    byref = compile_graph(_graph(), {WEIGHTS_BY_REFERENCE: "1"})
    assert len(normal.weights) >= 64 * 4 + 8 * 4
    assert byref.weights == b"" and byref.weight_size == 0
    assert byref.tasks == normal.tasks
    assert byref.stats["const_offsets"] == normal.stats["const_offsets"]
    blob = np.frombuffer(normal.weights, np.uint8)
    for name, (offset, nbytes) in normal.stats["const_offsets"].items():
        value = byref.graph.node(name).attrs["value"].numpy()
        assert blob[offset : offset + nbytes].tobytes() == value.tobytes()
