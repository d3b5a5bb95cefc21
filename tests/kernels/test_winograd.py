"""Winograd F(2×2, 3×3) convolutions (openge.kernels.winograd via Conv2D's prepare) against an
independent float64 direct convolution written here."""

from __future__ import annotations

import numpy as np
import pytest

from openge.ops import conv_winograd
from openge.ops.conv_winograd import prepare_winograd
from tests.kernels.conv_reference import direct_3x3 as _direct

pytest.importorskip("numba")

#: The shipped input-channel rule (the fixture below lowers it).
SHIPPED_MIN_INPUT_CHANNELS = conv_winograd.MIN_INPUT_CHANNELS


@pytest.fixture(autouse=True)
def _small_channels(monkeypatch):
    """The kernel on small, fast shapes: Winograd from 8 input channels (the route rule,
    MIN_INPUT_CHANNELS, has its own test), 2×2 tiles on every plane (F(4×4, 3×3) has its
    own tests: tests/kernels/test_winograd4.py)."""
    monkeypatch.setattr(conv_winograd, "MIN_INPUT_CHANNELS", 8)
    monkeypatch.setattr(conv_winograd, "F4_POSITIONS", 1 << 60)


@pytest.mark.parametrize(
    ("n", "c", "cout", "h", "w", "pads", "with_bias"),
    [
        (1, 16, 32, 16, 16, (1, 1, 1, 1), True),  # even output
        (1, 32, 16, 15, 17, (1, 1, 1, 1), False),  # odd output: edge tiles cut
        (2, 16, 16, 20, 14, (0, 0, 0, 0), True),  # valid convolution, batch 2
        (1, 24, 20, 18, 18, (2, 0, 1, 2), True),  # asymmetric pads
        (1, 300, 40, 16, 16, (1, 1, 1, 1), True),  # two passes over the channels
        (1, 16, 29, 90, 90, (1, 1, 1, 1), False),  # many panels, odd output-channel count
    ],
)
@pytest.mark.parametrize(
    ("route", "threads"), [("chunks", 1), ("chunks", 2), ("planes", 1), ("planes", 2)]
)
def test_winograd_matches_float64_direct(
    n, c, cout, h, w, pads, with_bias, route, threads, monkeypatch
):
    from openge import kernels
    from openge.ops import conv_winograd

    # chunks: small filters always, large ones when shared; planes: large filters on 1 thread
    monkeypatch.setattr(conv_winograd, "CHUNK_FILTER_BYTES", 1 << 60 if route == "chunks" else 0)
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 0)  # one panel per chunk: many chunks
    monkeypatch.setattr(conv_winograd, "SPLIT_FLOPS", 0)
    monkeypatch.setattr(kernels, "_state", {**kernels._state})  # restored after the test
    kernels.set_num_threads(threads)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    f = (rng.standard_normal((cout, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32) if with_bias else None
    ref = _direct(x, f, bias, pads)
    y = np.full(ref.shape, np.nan, dtype=np.float32)
    run = prepare_winograd(x, f, bias, y, pads, True)
    assert run is not None
    run()
    scale = np.abs(ref).max()
    assert np.abs(y - ref).max() <= 2e-6 * scale  # a few float32 ulps of the sums
    x[...] = rng.standard_normal(x.shape)  # the closure reads its input at each run
    run()
    ref = _direct(x, f, bias, pads)
    assert np.abs(y - ref).max() <= 2e-6 * np.abs(ref).max()


def test_chunks_and_planes_give_the_same_bits(monkeypatch):
    from openge import kernels
    from openge.ops import conv_winograd

    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(conv_winograd, "SPLIT_FLOPS", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 40, 30, 30)).astype(np.float32)
    f = rng.standard_normal((24, 40, 3, 3)).astype(np.float32)
    outs = []
    for limit, threads in [(1 << 60, 1), (1 << 60, 2), (0, 1)]:
        monkeypatch.setattr(conv_winograd, "CHUNK_FILTER_BYTES", limit)
        kernels.set_num_threads(threads)
        y = np.empty((1, 24, 30, 30), np.float32)
        run = prepare_winograd(x, f, None, y, (1, 1, 1, 1), True)
        assert run is not None
        run()
        outs.append(y)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_winograd_declines_where_it_does_not_pay(monkeypatch):
    x = np.zeros((1, 4, 32, 32), np.float32)
    f = np.zeros((16, 4, 3, 3), np.float32)
    y = np.zeros((1, 16, 32, 32), np.float32)
    assert prepare_winograd(x, f, None, y, (1, 1, 1, 1), True) is None  # few input channels
    # the shipped rule: squeezenet's 16 → 64 stays on im2col panels
    monkeypatch.setattr(conv_winograd, "MIN_INPUT_CHANNELS", SHIPPED_MIN_INPUT_CHANNELS)
    x = np.zeros((1, 16, 55, 55), np.float32)
    f = np.zeros((64, 16, 3, 3), np.float32)
    y = np.zeros((1, 64, 55, 55), np.float32)
    assert not conv_winograd.suitable(x, f, y, (1, 1, 1, 1), True)
    x = np.zeros((1, 128, 28, 28), np.float32)
    f = np.zeros((32, 128, 3, 3), np.float32)  # densenet's 128 → 32 keeps Winograd
    y = np.zeros((1, 32, 28, 28), np.float32)
    assert conv_winograd.suitable(x, f, y, (1, 1, 1, 1), True)
    x = np.zeros((1, 64, 7, 7), np.float32)
    f = np.zeros((64, 64, 3, 3), np.float32)
    y = np.zeros((1, 64, 7, 7), np.float32)
    assert prepare_winograd(x, f, None, y, (1, 1, 1, 1), True) is None  # few positions
    x = np.zeros((1, 64, 32, 32), np.float32)
    y = np.zeros((1, 64, 32, 32), np.float32)
    assert prepare_winograd(x, f, None, y, (1, 1, 1, 1), False) is None  # filter not constant
    assert (
        prepare_winograd(
            x.astype(np.float64),
            f.astype(np.float64),
            None,
            y.astype(np.float64),
            (1, 1, 1, 1),
            True,
        )
        is None
    )


def test_filter_transform_is_g_g_gt_rounded_once():
    from openge import kernels

    module = kernels.load("winograd")
    f = np.random.default_rng(3).standard_normal((24, 17, 3, 3)).astype(np.float32)
    g = np.array([[1.0, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1.0]])
    ref = np.einsum("ai,ocij,bj->aboc", g, f.astype(np.float64), g).reshape(16, 24, 17)
    np.testing.assert_array_equal(module.filter_transform(f, np.float32), ref.astype(np.float32))


def test_winograd_on_three_threads_matches_direct(monkeypatch):
    """Three threads share the chunks (odd output height: the last tile row is cut)."""
    from openge import kernels
    from openge.ops import conv_winograd

    monkeypatch.setattr(conv_winograd, "SPLIT_FLOPS", 0)
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 0)
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    kernels.set_num_threads(3)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 16, 5, 60)).astype(np.float32)
    f = (rng.standard_normal((24, 16, 3, 3)) / 12).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)
    ref = _direct(x, f, bias, (1, 1, 1, 1))
    y = np.full(ref.shape, np.nan, dtype=np.float32)
    run = prepare_winograd(x, f, bias, y, (1, 1, 1, 1), True)
    assert run is not None
    run()
    assert np.abs(y - ref).max() <= 2e-6 * np.abs(ref).max()


@pytest.mark.parametrize(
    ("act", "numpy_act"),
    [
        ((1, 0.0, 0.0), lambda v: np.maximum(v, 0)),  # relu
        ((2, 0.0, 6.0), lambda v: np.clip(v, 0, 6)),  # relu6
        ((5, 0.0, 0.0), lambda v: v / (1 + np.exp(-v))),  # silu
    ],
)
@pytest.mark.parametrize("route", ["chunks", "planes"])
def test_epilogue_residual_then_activation_in_the_output_transform(
    act, numpy_act, route, monkeypatch
):
    from openge.kernels import depthwise
    from openge.ops import conv_winograd

    assert (depthwise.RELU, depthwise.CLIP, depthwise.SILU) == (1, 2, 5)
    monkeypatch.setattr(conv_winograd, "CHUNK_FILTER_BYTES", 1 << 60 if route == "chunks" else 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 20, 17, 18)).astype(np.float32)
    f = (rng.standard_normal((24, 20, 3, 3)) / 13).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)
    res = rng.standard_normal((2, 24, 17, 18)).astype(np.float32)
    y = np.full(res.shape, np.nan, np.float32)
    run = prepare_winograd(x, f, bias, y, (1, 1, 1, 1), True, res, act)
    assert run is not None
    run()
    want = numpy_act(_direct(x, f, bias, (1, 1, 1, 1)) + res)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
