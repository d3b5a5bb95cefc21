"""FoldBatchNormPass: BN and per-channel scales folded into conv/matmul weights."""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.fold_batch_norm import FoldBatchNormPass
from openge.graph import Format

from .models import Builder, _bn, _conv, apply_passes, evaluate_graph, op_types


def _check(b, g, before):
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_bn_inference_folds_into_conv():
    b = Builder("bn")
    x = b.input((2, 3, 8, 8), fmt=Format.FORMAT_NCHW)
    y = _bn(b, _conv(b, x, 3, 4), 4)
    y2 = _bn(b, _conv(b, x, 3, 4, bias=True), 4)
    g = b.done(y, y2)
    before = g.clone()
    assert apply_passes(g, FoldBatchNormPass())
    assert "BNInference" not in op_types(g)
    _check(b, g, before)


def test_caffe_style_bn_and_batchnorm_and_scale():
    b = Builder("bn2")
    x = b.input((2, 3, 6, 6), fmt=Format.FORMAT_NCHW)
    c = _conv(b, x, 3, 4)
    mean = b.const(np.arange(4, dtype=np.float32) * 0.1)
    var = b.const(np.linspace(0.5, 2, 4).astype(np.float32))
    caffe = b.op("BNInference", c, mean, var, b.const(np.array([0.5], np.float32)))
    c2 = _conv(b, x, 3, 4, fmt="NHWC") if False else _conv(b, x, 3, 4)
    bn = b.op(
        "BatchNorm",
        c2,
        b.const(np.ones(4, np.float32) * 1.5),
        b.const(np.ones(4, np.float32) * 0.2),
        b.const(np.zeros(4, np.float32)),
        b.const(np.ones(4, np.float32)),
        outputs=6,
        is_training=False,
        data_format="NCHW",
    )
    c3 = _conv(b, x, 3, 4)
    scaled = b.op("Mul", b.const(np.linspace(1, 2, 4).astype(np.float32).reshape(4, 1, 1)), c3)
    mm = b.op(
        "Mul",
        b.op("MatMulV2", b.input((5, 6)), b.weight(4, 6), transpose_x2=True),
        b.const(np.linspace(1, 2, 4).astype(np.float32)),
    )
    g = b.done(caffe, bn, scaled, mm)
    before = g.clone()
    assert apply_passes(g, FoldBatchNormPass())
    assert not {"BNInference", "BatchNorm", "Mul"} & set(op_types(g))
    _check(b, g, before)


def test_does_not_fold_shared_or_wrong_axis():
    b = Builder("nofold")
    x = b.input((2, 3, 6, 6), fmt=Format.FORMAT_NCHW)
    w = b.weight(4, 3, 3, 3)
    c1 = b.op("Conv2D", x, w, strides=[1, 1, 1, 1], pads=[1, 1, 1, 1], data_format="NCHW")
    c2 = b.op("Conv2D", x, w, strides=[1, 1, 1, 1], pads=[0, 0, 0, 0], data_format="NCHW")
    y1 = _bn(b, c1, 4)  # the filter is shared with c2: not folded
    c3 = _conv(b, x, 3, 4)
    y3 = b.op("Mul", c3, b.const(np.ones((1, 1, 1, 6), np.float32)))  # per-column: not a scale
    c4 = _conv(b, x, 3, 4)
    y4 = _bn(b, c4, 4)
    g = b.done(y1, c2, y3, y4, c4)  # c4 is also an output: its BN is not folded
    assert not apply_passes(g, FoldBatchNormPass())


def test_per_channel_add_after_a_biased_conv_joins_the_bias():
    b = Builder("shift")
    x = b.input((2, 3, 6, 6), fmt=Format.FORMAT_NCHW)
    shift = np.linspace(-1, 1, 4).astype(np.float32)
    y = b.op("Add", _bn(b, _conv(b, x, 3, 4), 4), b.const(shift.reshape(4, 1, 1)))
    y2 = b.op("Add", _conv(b, x, 3, 4, bias=True), b.const(np.float32(0.5)))  # scalar shift
    y3 = b.op("Add", _conv(b, x, 3, 4), b.const(shift.reshape(4, 1, 1)))  # no bias: left
    y4 = b.op("Add", _conv(b, x, 3, 4, bias=True), b.const(np.ones((1, 1, 1, 6), np.float32)))
    g = b.done(y, y2, y3, y4)
    before = g.clone()
    assert apply_passes(g, FoldBatchNormPass())
    assert op_types(g).count("Add") == 2  # y3 (for FuseBiasActivationPass) and y4 (per column)
    _check(b, g, before)


def test_batch_norm_whose_statistics_are_graph_outputs_is_kept():
    b = Builder("stats")
    x = b.input((2, 3, 6, 6), fmt=Format.FORMAT_NCHW)
    ones = np.ones(4, np.float32)
    params = [b.const(v) for v in (ones, ones * 0.1, ones * 0.2, ones)]
    node = b.g.add_node(
        "BatchNorm",
        [_conv(b, x, 3, 4), *params],
        name="bn",
        attrs={"is_training": False, "data_format": "NCHW"},
        num_outputs=6,
    )
    from openge.ops import infer_node

    node.output_descs = infer_node(node, b.known)[1]
    g = b.done(node.output(0), node.output(3))
    assert not apply_passes(g, FoldBatchNormPass())
