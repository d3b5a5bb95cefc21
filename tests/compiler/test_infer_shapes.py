"""InferShapesPass: every node's descs from its op's inference, with small values propagated."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler.passes import InferShapesPass, PassContext
from openge.errors import GeError
from openge.graph import DataType, Graph, TensorDesc

from .models import Builder


def test_fills_descs_and_propagates_shape_arithmetic():
    b = Builder("shapes")
    x = b.input((2, 3, 4))
    shape = b.op("Shape", x)
    first = b.op("GatherV2", shape, b.const(np.array([0], np.int32)), b.const(np.array(0)))
    dims = b.op("ConcatV2", first, b.const(np.array([-1], np.int32)), b.const(np.array(0)), N=2)
    flat = b.op("Reshape", x, dims)
    g = b.done(b.op("Relu", flat))
    for node in g:
        if node.op_type != "Data":
            node.output_descs = [TensorDesc() for _ in node.output_descs]
    ctx = PassContext()
    assert InferShapesPass().run(g, ctx)
    assert g.outputs[0].desc.shape == (2, 12)
    assert any(v.tolist() == [2, 3, 4] for v in ctx.const_values.values())
    assert not InferShapesPass().run(g, ctx)  # a second run changes nothing


def test_bad_graph_names_the_node():
    g = Graph("bad")
    a = g.add_node(
        "Data", name="a", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (2, 3))]
    )
    c = g.add_node(
        "Data", name="c", attrs={"index": 1}, output_descs=[TensorDesc(DataType.DT_FLOAT, (4, 5))]
    )
    g.add_node("Add", [a.output(0), c.output(0)], name="broken_add")
    with pytest.raises(GeError, match="broken_add"):
        InferShapesPass().run(g, PassContext())
