"""VariableFormatPass: a variable read only through Cast/TransData is stored converted."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes import PassContext
from openge.compiler.passes.variable_format import VariableFormatPass
from openge.graph import DataType, Tensor
from openge.ops import infer_node

from .models import Builder, apply_passes, evaluate_graph, op_types


def _graph():
    b = Builder("var")
    x = b.input((2, 3), dtype=DataType.DT_FLOAT16)
    init = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    v = b.g.add_node("Variable", name="v", attrs={"value": Tensor(init)})
    v.output_descs = infer_node(v)[1]
    y = b.op("Mul", b.op("Cast", v.output(0), dst_type=DataType.DT_FLOAT16), x)
    return b, b.done(y)


def test_variable_is_stored_in_the_type_its_reader_casts_to():
    b, g = _graph()
    before = g.clone()
    ctx = PassContext()
    apply_passes(g, options={})
    assert VariableFormatPass().run(g, ctx)
    assert "Cast" not in op_types(g)
    assert g.node("v").output_descs[0].dtype == DataType.DT_FLOAT16
    assert ctx.changed_variables == {"v"}
    feeds = b.feeds()
    np.testing.assert_array_equal(evaluate_graph(g, feeds)[0], evaluate_graph(before, feeds)[0])


def test_variable_acc_false_keeps_the_cast():
    _, g = _graph()
    model = compile_graph(
        g, {"ge.exec.variable_acc": "False", "ge.disableOptimizations": "FuseElementwisePass"}
    )
    assert "Cast" in {t.op_type for t in model.tasks}
