"""EliminateTransDataPass: TransData pairs cancel, conversions sink through elementwise ops."""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.eliminate_trans_data import EliminateTransDataPass
from openge.graph import Format

from .models import Builder, apply_passes, evaluate_graph, op_types


def _same(b, g, before):
    feeds = b.feeds()
    for u, v in zip(evaluate_graph(g, feeds), evaluate_graph(before, feeds), strict=True):
        np.testing.assert_array_equal(u, v)


def _td(b, x, src, dst):
    return b.op("TransData", x, src_format=src, dst_format=dst)


def test_pairs_cancel_through_elementwise_and_concat():
    b = Builder("td")
    x = b.input((1, 4, 3, 5), fmt=Format.FORMAT_NCHW)
    y = b.input((1, 4, 3, 5), fmt=Format.FORMAT_NCHW)
    xa = _td(b, x, "NCHW", "NHWC")
    ya = _td(b, y, "NCHW", "NHWC")
    s = b.op("Add", b.op("Relu", xa), b.op("Mul", ya, b.const(np.arange(4, dtype=np.float32))))
    # a per-channel constant in NHWC (4 channels); concat along C
    c = b.op("ConcatV2", s, b.op("Neg", ya), b.const(np.array(3, np.int32)), N=2)
    back = _td(b, c, "NHWC", "NCHW")
    g = b.done(b.op("Sigmoid", back))
    before = g.clone()
    assert apply_passes(g, EliminateTransDataPass())
    assert "TransData" not in op_types(g)
    _same(b, g, before)


def test_duplicates_merge_and_blocked_round_trip_cancels():
    b = Builder("td2")
    x = b.input((1, 20, 3, 3), fmt=Format.FORMAT_NCHW)
    a1 = _td(b, x, "NCHW", "NHWC")
    a2 = _td(b, x, "NCHW", "NHWC")
    blocked = _td(b, _td(b, x, "NCHW", "NC1HWC0"), "NC1HWC0", "NCHW")
    g = b.done(b.op("Add", a1, a2), b.op("Relu", blocked))
    before = g.clone()
    assert apply_passes(g, EliminateTransDataPass())
    assert op_types(g).count("TransData") == 1
    _same(b, g, before)


def test_nothing_to_do_without_pairs():
    b = Builder("td3")
    x = b.input((1, 2, 3, 4), fmt=Format.FORMAT_NCHW)
    g = b.done(b.op("Exp", _td(b, x, "NCHW", "NHWC")))
    assert not apply_passes(g, EliminateTransDataPass())
