"""LowerBatchNormPass: a BN no weight absorbed becomes Mul + Add (with the per-channel Mul/Add
chain after it composed in), and then runs with its Relu as one in-place elementwise task."""

from __future__ import annotations

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.passes import FoldBatchNormPass, LowerBatchNormPass
from openge.graph import DataType, Format
from openge.runtime import Model

from .models import Builder, _bn, _conv, apply_passes, evaluate_graph, op_types


def _check(b, g, before, rtol=1e-5):
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-6)


def _stats(b, c, dtype=np.float32):
    mean = b.const((b.rng.normal(size=c) * 0.5).astype(dtype))
    var = b.const(b.rng.uniform(0.5, 1.5, size=c).astype(dtype))
    return mean, var


def _per_channel(b, c, shape=None):
    return b.const(b.rng.uniform(0.5, 1.5, size=c).astype(np.float32).reshape(shape or (c, 1, 1)))


def _dense_block(b: Builder):
    """Densenet's pre-activation: concat → BN → Mul → Add → Relu → conv."""
    x = b.input((2, 3, 6, 6), fmt=Format.FORMAT_NCHW)
    y = b.op("ConcatV2", x, _conv(b, x, 3, 2), b.const(np.array(1, np.int32)), N=2)
    h = _bn(b, y, 5)
    h = b.op("Add", b.op("Mul", h, _per_channel(b, 5)), _per_channel(b, 5))
    h = b.op("Relu", h)
    return b.done(_conv(b, h, 5, 4), y)


def test_bn_and_its_scale_chain_become_one_mul_and_one_add():
    b = Builder("lower")
    g = _dense_block(b)
    before = g.clone()
    assert apply_passes(g, FoldBatchNormPass(), LowerBatchNormPass())
    types = op_types(g)
    assert "BNInference" not in types
    assert types.count("Mul") == 1 and types.count("Add") == 1
    _check(b, g, before)


def test_in_the_pipeline_bn_and_relu_run_as_one_in_place_task():
    b = Builder("lower_pipeline")
    g = _dense_block(b)
    compiled = compile_graph(g.clone(), {})
    tasks = [t.op_type for t in compiled.tasks]
    assert "BNInference" not in tasks
    fused = [t for t in compiled.tasks if t.op_type == "FusedElementwise"]
    assert len(fused) == 1
    assert '"op":"Relu"' in fused[0].attrs["program"]
    feeds = b.feeds()
    with Model(compiled) as model:
        got = model.execute(feeds)
    for u, v in zip(got, evaluate_graph(g, feeds), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    off = compile_graph(g.clone(), {"ge.disableOptimizations": "LowerBatchNormPass"})
    assert "BNInference" in [t.op_type for t in off.tasks]


def test_caffe_style_batch_norm_and_nhwc_batch_norm():
    b = Builder("lower2")
    x = b.input((2, 4, 3, 3), fmt=Format.FORMAT_NCHW)
    mean, var = _stats(b, 4)
    caffe = b.op("BNInference", x, mean, var, b.const(np.array([0.5], np.float32)), epsilon=1e-3)
    xh = b.input((2, 3, 3, 4), fmt=Format.FORMAT_NHWC)
    m2, v2 = _stats(b, 4)
    nhwc = b.op(
        "BatchNorm",
        xh,
        b.const(np.linspace(0.5, 2, 4).astype(np.float32)),
        b.const(np.linspace(-1, 1, 4).astype(np.float32)),
        m2,
        v2,
        outputs=6,
        is_training=False,
        data_format="NHWC",
    )
    nhwc = b.op("Mul", nhwc, _per_channel(b, 4, (4,)))
    g = b.done(caffe, nhwc)
    before = g.clone()
    assert apply_passes(g, LowerBatchNormPass())
    assert not {"BNInference", "BatchNorm"} & set(op_types(g))
    _check(b, g, before)


def test_left_alone():
    b = Builder("keep")
    x = b.input((2, 4, 3, 3), fmt=Format.FORMAT_NCHW)
    mean, var = _stats(b, 4)
    live = b.op("BNInference", x, mean, b.op("Abs", var), b.const(np.ones(1, np.float32)))
    x16 = b.input((2, 4, 3, 3), DataType.DT_FLOAT16, fmt=Format.FORMAT_NCHW)
    m16, v16 = _stats(b, 4, np.float16)
    half = b.op("BNInference", x16, m16, v16, b.const(np.ones(1, np.float16)))
    m3, v3 = _stats(b, 4)
    stats_read = b.g.add_node(
        "BatchNorm",
        [x, _per_channel(b, 4, (4,)), _per_channel(b, 4, (4,)), m3, v3],
        name="bn_stats",
        attrs={"is_training": False, "data_format": "NCHW"},
        num_outputs=6,
    )
    from openge.ops import infer_node

    stats_read.output_descs = infer_node(stats_read, b.known)[1]
    g = b.done(live, half, stats_read.output(0), stats_read.output(1))
    assert not apply_passes(g, LowerBatchNormPass())  # variance computed / float16 / stats read


def test_chain_stops_at_a_shared_value_or_a_non_channel_constant():
    b = Builder("chain")
    x = b.input((2, 4, 3, 3), fmt=Format.FORMAT_NCHW)
    m = b.op("Mul", _bn(b, x, 4), _per_channel(b, 4))  # absorbed, though a graph output
    spatial = b.op("Add", m, b.const(np.ones((1, 1, 3, 3), np.float32)))  # not per channel
    shared = _bn(b, x, 4)  # read twice: nothing after it is absorbed
    s1 = b.op("Mul", shared, _per_channel(b, 4))
    s2 = b.op("Add", shared, _per_channel(b, 4))
    g = b.done(spatial, m, s1, s2)
    before = g.clone()
    assert apply_passes(g, LowerBatchNormPass())
    types = op_types(g)
    assert "BNInference" not in types
    assert types.count("Mul") == 3 and types.count("Add") == 4
    _check(b, g, before)
