"""Winograd F(4×4, 3×3) convolutions (openge.kernels.winograd4 via Conv2D's prepare) against an
independent float64 direct convolution written here, and the transform matrices against the
convolution they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from openge.ops import conv_winograd
from openge.ops.conv_winograd import prepare_winograd
from tests.kernels.conv_reference import direct_3x3 as _direct

pytest.importorskip("numba")

#: The error bound of F(4×4, 3×3) in float32, as a share of the output's largest magnitude.
#: F(2×2, 3×3) stays within 2e-6; the larger constants of the 6-point transforms (up to 8
#: in Aᵀ, 1/24 in G) cost more: measured 5e-6 to 1.1e-5 on 64-512 channels of ReLU inputs
#: and He-scaled filters (F(2×2, 3×3): 3e-7 to 7e-7). ONNX Runtime's float32 conformance
#: tolerance is 1e-4 relative.
F4_BOUND = 2e-5


@pytest.fixture(autouse=True)
def _f4_everywhere(monkeypatch):
    """4×4 tiles on every plane, Winograd from 8 input channels (small, fast shapes)."""
    monkeypatch.setattr(conv_winograd, "MIN_INPUT_CHANNELS", 8)
    monkeypatch.setattr(conv_winograd, "F4_POSITIONS", 0)


@pytest.mark.parametrize(
    ("n", "c", "cout", "h", "w", "pads", "with_bias"),
    [
        (1, 16, 32, 16, 16, (1, 1, 1, 1), True),  # a multiple of 4
        (1, 32, 16, 15, 17, (1, 1, 1, 1), False),  # edge tiles cut by 1 and 3
        (2, 16, 16, 22, 14, (0, 0, 0, 0), True),  # valid convolution (20 × 12), batch 2
        (1, 24, 20, 18, 19, (2, 0, 1, 2), True),  # asymmetric pads
        (1, 300, 40, 16, 16, (1, 1, 1, 1), True),  # two passes over the channels
        (1, 16, 29, 58, 58, (1, 1, 1, 1), False),  # many panels, odd output-channel count
    ],
)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_f4_matches_float64_direct(n, c, cout, h, w, pads, with_bias, threads, monkeypatch):
    from openge import kernels

    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 0)  # one tile row per chunk: many chunks
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
    assert np.abs(y - ref).max() <= F4_BOUND * np.abs(ref).max()
    x[...] = rng.standard_normal(x.shape)  # the closure reads its input at each run
    run()
    ref = _direct(x, f, bias, pads)
    assert np.abs(y - ref).max() <= F4_BOUND * np.abs(ref).max()


def test_the_route_takes_4x4_tiles_from_f4_positions(monkeypatch):
    """The shipped rule: 4×4 tiles from F4_POSITIONS outputs, 2×2 below; one thread or two
    give the same bits (the same sums in the same order per tile)."""
    from openge import kernels

    monkeypatch.undo()
    assert conv_winograd.tile_size(56, 56, 64, 64) == 4 == conv_winograd.tile_size(112, 112, 64, 64)
    assert conv_winograd.tile_size(28, 28, 64, 64) == 2  # in the models, no faster there
    assert conv_winograd.tile_size(56, 56, 512, 512) == 2  # a 38 MB transformed filter
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(conv_winograd, "SPLIT_FLOPS", 0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 64, 56, 56)).astype(np.float32)
    f = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    outs = []
    for threads in (1, 2):
        kernels.set_num_threads(threads)
        y = np.empty((1, 64, 56, 56), np.float32)
        run = prepare_winograd(x, f, None, y, (1, 1, 1, 1), True)
        assert run is not None
        run()
        outs.append(y)
    assert np.array_equal(outs[0], outs[1])
    ref = _direct(x, f, None, (1, 1, 1, 1))
    assert np.abs(outs[0] - ref).max() <= F4_BOUND * np.abs(ref).max()
    monkeypatch.setattr(conv_winograd, "F4_POSITIONS", 1 << 60)  # 2×2 tiles: other sums
    y2 = np.empty((1, 64, 56, 56), np.float32)
    run = prepare_winograd(x, f, None, y2, (1, 1, 1, 1), True)
    assert run is not None
    run()
    assert np.abs(y2 - ref).max() <= 2e-6 * np.abs(ref).max()
    assert not np.array_equal(outs[0], y2)


def test_transform_matrices_compute_the_convolution():
    """The kernel's one-axis transforms, as matrices, give Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A = the 4×4
    correlation of a 6×6 patch with a 3×3 filter (float64, to rounding)."""
    from openge import kernels

    module = kernels.load("winograd4")
    eye = np.eye(6)
    bt = np.array([module._bt.py_func(*eye[:, j]) for j in range(6)]).T  # column j = Bᵀ e_j
    at = np.array([module._at.py_func(*eye[:, j]) for j in range(6)]).T
    g = module._G
    rng = np.random.default_rng(2)
    d = rng.standard_normal((6, 6))
    w = rng.standard_normal((3, 3))
    got = at @ ((g @ w @ g.T) * (bt @ d @ bt.T)) @ at.T
    want = np.array([[np.sum(d[i : i + 3, j : j + 3] * w) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_filter_transform_is_g_g_gt_rounded_once():
    from openge import kernels

    module = kernels.load("winograd4")
    f = np.random.default_rng(3).standard_normal((24, 17, 3, 3)).astype(np.float32)
    g = np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
    )
    ref = np.einsum("ai,ocij,bj->aboc", g, f.astype(np.float64), g).reshape(36, 24, 17)
    got = module.filter_transform(f, np.float32)
    assert got.dtype == np.float32 and got.shape == (36, 24, 17)
    # float64 sums in another order, then one rounding: at most one float32 ulp apart
    np.testing.assert_array_max_ulp(got, ref.astype(np.float32), maxulp=1)


@pytest.mark.parametrize(
    ("act", "numpy_act"),
    [
        ((1, 0.0, 0.0), lambda v: np.maximum(v, 0)),  # relu
        ((2, 0.0, 6.0), lambda v: np.clip(v, 0, 6)),  # relu6
        ((5, 0.0, 0.0), lambda v: v / (1 + np.exp(-v))),  # silu
    ],
)
def test_f4_epilogue_residual_then_activation(act, numpy_act):
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
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-5)
