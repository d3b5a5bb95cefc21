"""SelectLayoutsPass: convs/pools in their preferred layout, TransData at the borders."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes.eliminate_trans_data import EliminateTransDataPass
from openge.compiler.passes.select_layouts import SelectLayoutsPass
from openge.graph import Format

from .models import Builder, _conv, apply_passes, cnn, evaluate_graph, op_types


def _close(b, g, before):
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_nhwc_conv_runs_nchw_between_transdata():
    b = Builder("nhwc")
    x = b.input((2, 8, 8, 3), fmt=Format.FORMAT_NHWC)
    y = b.op(
        "MaxPoolV3",
        _conv(b, x, 3, 4, fmt="NHWC"),
        ksize=[1, 2, 2, 1],
        strides=[1, 2, 2, 1],
        data_format="NHWC",
    )
    g = b.done(y)
    before = g.clone()
    assert apply_passes(g, SelectLayoutsPass())
    formats = {n.attrs.get("data_format") for n in g if n.op_type in ("Conv2D", "MaxPoolV3")}
    assert formats == {"NCHW"}
    assert op_types(g).count("TransData") == 4
    assert g.outputs[0].node.name == y.node.name  # the output keeps its name
    assert g.outputs[0].desc.shape == (2, 4, 4, 4)
    _close(b, g, before)
    # the pairs between the conv and the pool cancel
    assert apply_passes(g, EliminateTransDataPass())
    assert op_types(g).count("TransData") == 2
    _close(b, g, before)


def test_custom_preference_and_shared_filters():
    b = Builder("to_nhwc")
    x = b.input((1, 3, 8, 8), fmt=Format.FORMAT_NCHW)
    w = b.weight(4, 3, 3, 3)
    c1 = b.op("Conv2D", x, w, strides=[1, 1, 1, 1], pads=[1, 1, 1, 1], data_format="NCHW")
    c2 = b.op("Conv2D", x, w, strides=[1, 1, 2, 2], pads=[1, 1, 1, 1], data_format="NCHW")
    g = b.done(b.op("Relu", c1), c2)
    before = g.clone()
    nhwc = SelectLayoutsPass({"Conv2D": lambda node: "NHWC"})
    assert apply_passes(g, nhwc)
    filters = {n.inputs[1].node.name for n in g if n.op_type == "Conv2D"}
    assert len(filters) == 1  # one transposed copy shared by both convs
    assert g.node(next(iter(filters))).output_descs[0].format == Format.FORMAT_HWCN
    _close(b, g, before)


def test_format_mode_keeps_layouts():
    b = cnn("NHWC")
    model = compile_graph(b.g, {"ge.exec.formatMode": "1"})
    assert "TransData" not in {t.op_type for t in model.tasks}
    converted = compile_graph(b.g, {})
    assert sum(t.op_type == "TransData" for t in converted.tasks) == 2
