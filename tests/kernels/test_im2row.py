"""openge.kernels.im2row: small-plane convolutions with the positions as rows, against an
independent float64 NumPy convolution written here; the bits do not depend on the thread
count or on how the channel panels are shared."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from openge import kernels
from openge.kernels import depthwise, team
from tests.kernels.parts import drive_alone

RNG = np.random.default_rng(41)
im2row = kernels.load("im2row")
gemm = kernels.load("gemm")
im2col = kernels.load("im2col")


def _reference(x, w, stride, pads):
    """float64 direct convolution of one sample (C, H, W), zero padding (t, b, l, r)."""
    cout, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    oh = (xp.shape[1] - kh) // stride[0] + 1
    ow = (xp.shape[2] - kw) // stride[1] + 1
    out = np.zeros((cout, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            win = xp[:, ky : ky + (oh - 1) * stride[0] + 1 : stride[0]]
            win = win[:, :, kx : kx + (ow - 1) * stride[1] + 1 : stride[1]]
            out += np.einsum("oc,chw->ohw", w[:, :, ky, kx].astype(np.float64), win)
    return out


def _columns(x, kernel, stride, pads, oh, ow):
    """The (K, P) columns through im2col.phases and im2row.columns."""
    c, h, width = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    hp = max((oh - 1) * sh + kh, pads[0] + h)
    wp = max((ow - 1) * sw + kw, pads[2] + width)
    ph, pw = -(-hp // sh), -(-wp // sw)
    xph = np.full((c, sh, sw, ph, pw), np.nan, np.float32)
    im2col.phases(x, xph, pads[0], pads[2])
    taps = im2col.tap_offsets(c, kernel, (1, 1), (sh, sw, ph, pw))
    cols = np.full((c * kh * kw, oh * ow), np.nan, np.float32)
    im2row.columns(xph, taps, cols, ow, pw)
    return cols


def _run(cols, w2, bias, p, residual=None, act=(0, 0.0, 0.0), threads=1, parts=None):
    cout = w2.shape[0]
    wt = im2row.pack_filter(w2)
    yt = np.full((p, cout), np.nan, np.float32)
    y = np.full((cout, p), np.nan, np.float32)
    r = residual if residual is not None else y
    code, lo, hi = act
    args = (cols, wt, yt, y, bias, r, residual is not None, code, np.float32(lo), np.float32(hi))
    if threads == 1:
        im2row.conv(*args)
    else:
        items = im2row.item_count(cout)
        team.run(im2row.conv_drive, im2row.conv, args, items, parts or items, threads)
    return y


@pytest.mark.parametrize(
    ("c", "cout", "hw", "kernel", "stride", "pads"),
    [
        (64, 100, (7, 7), (1, 1), (1, 1), (0, 0, 0, 0)),  # a plain 1x1: x is the columns
        (300, 64, (7, 7), (1, 1), (1, 1), (0, 0, 0, 0)),  # K over two passes
        (24, 96, (7, 7), (3, 3), (1, 1), (1, 1, 1, 1)),
        (16, 50, (14, 14), (3, 3), (2, 2), (1, 1, 1, 1)),  # strided: 7x7 out, odd Cout
        (8, 48, (13, 13), (1, 1), (1, 1), (0, 0, 0, 0)),  # 169 positions: a partial row block
        (5, 40, (6, 5), (2, 3), (2, 1), (0, 1, 1, 0)),  # asymmetric everything
        (12, 80, (7, 7), (3, 3), (1, 1), (1, 1, 1, 1)),  # last panel: 2 vectors (AVX-512)
    ],
)
def test_matches_float64_reference(c, cout, hw, kernel, stride, pads):
    x = RNG.standard_normal((c, *hw)).astype(np.float32)
    w = RNG.standard_normal((cout, c, *kernel)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    want = _reference(x, w, stride, pads)
    oh, ow = want.shape[1:]
    cols = _columns(x, kernel, stride, pads, oh, ow)
    if kernel == (1, 1) and stride == (1, 1):
        np.testing.assert_array_equal(cols, x.reshape(c, -1))
    y = _run(cols, w.reshape(cout, -1), b, oh * ow)
    want = want.reshape(cout, -1) + b[:, None]
    atol = 1e-6 * np.sqrt(c * kernel[0] * kernel[1]) * np.abs(want).max()
    np.testing.assert_allclose(y, want, rtol=0, atol=atol)


@pytest.mark.parametrize("extra", [1, gemm.VW, gemm.VW + 1, 2 * gemm.VW])
def test_a_narrow_last_panel_gives_the_whole_panel_bits(extra):
    """A last panel of one or two vectors' channels runs on a narrower tile: the same sums
    in the same order as a whole panel's (the first channels of a wider filter)."""
    k, p = 40, 49
    x = RNG.standard_normal((k, p)).astype(np.float32)
    w = RNG.standard_normal((2 * im2row.NR_T, k)).astype(np.float32)
    b = RNG.standard_normal(2 * im2row.NR_T).astype(np.float32)
    whole = _run(x, w, b, p)
    cout = im2row.NR_T + extra
    part = _run(x, np.ascontiguousarray(w[:cout]), b[:cout].copy(), p)
    assert np.array_equal(part, whole[:cout])


def test_residual_activation_and_same_bits_on_two_threads():
    x = RNG.standard_normal((96, 49)).astype(np.float32)
    w = RNG.standard_normal((200, 96)).astype(np.float32)
    b = RNG.standard_normal(200).astype(np.float32)
    res = (3 * RNG.standard_normal((200, 49))).astype(np.float32)
    act = (depthwise.CLIP, 0.0, 6.0)
    one = _run(x, w, b, 49, residual=res, act=act)
    want = np.clip(w.astype(np.float64) @ x + b[:, None] + res, 0, 6)
    np.testing.assert_allclose(one, want, rtol=1e-5, atol=1e-4)
    for parts in (2, 3, 5, 7):
        two = _run(x, w, b, 49, residual=res, act=act, threads=2, parts=parts)
        assert np.array_equal(one, two)


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 10])
@pytest.mark.parametrize(("cout", "p"), [(200, 49), (48, 13), (100, 5)])
def test_every_item_once_whatever_the_parts(parts, cout, p):
    """The drive's items (a panel at half of the positions): any cut of them into parts —
    halves of a panel at a part's start or end, a part inside one panel — computes every
    output once, with the serial kernel's bits (each sum in the same order)."""
    k = 70
    x = RNG.standard_normal((k, p)).astype(np.float32)
    w = RNG.standard_normal((cout, k)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    res = RNG.standard_normal((cout, p)).astype(np.float32)
    act = (depthwise.RELU, 0.0, 0.0)
    one = _run(x, w, b, p, residual=res, act=act)
    wt = im2row.pack_filter(w)
    yt = np.full((p, cout), np.nan, np.float32)
    y = np.full((cout, p), np.nan, np.float32)
    args = (x, wt, yt, y, b, res, True, act[0], np.float32(0), np.float32(0))
    items = im2row.item_count(cout)
    assert items == im2row.panel_count(cout) * im2row.SLICES
    drive_alone(im2row.conv_drive, args, items, min(parts, items))
    assert np.array_equal(y, one)
