"""openge.kernels.depthwise against a float64 tap-by-tap reference written here (the one of
test_conv.py), with each fused activation written again in NumPy, on shapes with the edges:
one pixel, odd widths, padding larger than the kernel, strides 1-3, dilations, channel
multipliers, many planes (several plane groups) and tall planes (several row blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.ops.compiled import read_only
from tests.kernels.parts import drive_alone, drive_team
from tests.kernels.test_conv import CASES, ref_depthwise

# one xdist worker runs this file, so each kernel signature (20-30 s cold) compiles once;
# spread over both workers with an empty kernel cache (CI), both compiled it at once
pytestmark = pytest.mark.xdist_group("depthwise")
RNG = np.random.default_rng(12)
dw = kernels.load("depthwise")


def ref_multiplier(x, w, b, s, d, pads):
    """Channel multiplier M: output channel o reads input channel o // M."""
    m = w.shape[0] // x.shape[1]
    return ref_depthwise(np.repeat(x, m, axis=1), w, b, s, d, pads)


def ref_act(v, act, lo, hi):
    if act == dw.RELU:
        return np.maximum(v, 0)
    if act == dw.CLIP:
        return np.minimum(np.maximum(v, lo), hi)
    if act == dw.HARD_SWISH:
        return v * np.clip(v + 3, 0, 6) / 6
    if act == dw.HARD_SIGMOID:
        return np.clip(lo * v + hi, 0, 1)
    return v


def run(x, w, b, s, d, pads, act=0, lo=0.0, hi=0.0, oshape=None):
    t = x.dtype.type
    w, b = read_only(w), read_only(b)  # as openge.ops.conv_depthwise passes its constants
    y = np.full(oshape, np.nan, x.dtype)  # an element left unwritten fails
    args = (s[0], s[1], d[0], d[1], pads[0], pads[2], act, t(lo), t(hi))
    dw.depthwise_act(x, w, b, y, *args)
    planes = oshape[0] * oshape[1]
    _same_in_parts(dw.depthwise_act_drive, dw.depthwise_act, (x, w, b), args, y, planes)
    return y


def _same_in_parts(drive, whole, inputs, args, y, total):
    """The drive form, in parts (as openge's threads run it), alone and on a team of two
    threads, writes what the whole kernel wrote."""
    for parts in (min(3, total), total):
        out = np.full(y.shape, np.nan, y.dtype)
        drive_alone(drive, (*inputs, out, *args), total, parts)
        np.testing.assert_array_equal(y, out)
    out = np.full(y.shape, np.nan, y.dtype)
    drive_team(drive, whole, (*inputs, out, *args), total, min(4, total))
    np.testing.assert_array_equal(y, out)


MORE = [
    ((1, 3, 30, 29), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    ((1, 130, 9, 9), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),  # more planes than GROUPS
    ((1, 2, 300, 20), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # rows in several blocks
    ((2, 4, 17, 16), (7, 7), (3, 3), (1, 1), (3, 3, 3, 3)),  # kw not unrolled, stride 3
]


#: Narrow planes, the channels-last kernel's territory.
NARROW = [
    ((1, 1152, 7, 7), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),  # EfficientNet's last stage
    ((2, 70, 7, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # a partial channel block
    ((1, 130, 13, 13), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),  # stride 2, odd size
    ((1, 5, 1, 1), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # one pixel
    ((1, 64, 9, 8), (3, 3), (1, 2), (2, 2), (2, 0, 2, 1)),  # dilation, uneven pads
    ((1, 3, 6, 6), (7, 7), (1, 1), (1, 1), (4, 4, 4, 4)),  # padding beyond the input
    # 8 × 8 transposes in and out and their remainders: 85 = 64 + 16 + 5 channels, 17 = 16 + 1
    # columns, 81 = 80 + 1 outputs, two samples
    ((2, 85, 19, 17), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("kernel", ["rows", "channels_last"])
@pytest.mark.parametrize("case", CASES + MORE + NARROW)
def test_matches_the_reference(case, kernel):
    xs, (kh, kw), s, d, pads = case
    c = xs[1]
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal((c, 1, kh, kw)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    expected = ref_depthwise(x, w, b, s, d, pads)
    runner = run if kernel == "rows" else run_cl
    y = runner(x, w, b, s, d, pads, oshape=expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("act", "lo", "hi"),
    [(1, 0.0, 0.0), (2, 0.0, 6.0), (2, -0.5, 0.25), (3, 0.0, 0.0), (4, 0.2, 0.5)],
)
def test_activations(act, lo, hi):
    x = (3 * RNG.standard_normal((1, 6, 15, 16))).astype(np.float32)
    w = RNG.standard_normal((6, 1, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    pads = (1, 1, 1, 1)
    expected = ref_act(ref_depthwise(x, w, b, (1, 1), (1, 1), pads), act, lo, hi)
    y = run(x, w, b, (1, 1), (1, 1), pads, act, lo, hi, expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_nan_propagates_through_clip():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    w = np.ones((1, 1, 1, 1), np.float32)
    y = run(x, w, np.zeros(1, np.float32), (1, 1), (1, 1), (0, 0, 0, 0), 2, 0.0, 6.0, x.shape)
    assert np.isnan(y[0, 0, 1, 1]) and np.isnan(y).sum() == 1


def test_channel_multiplier_and_float64():
    x = RNG.standard_normal((2, 3, 11, 10))
    w = RNG.standard_normal((6, 1, 3, 3))
    b = RNG.standard_normal(6)
    pads = (1, 1, 1, 1)
    expected = ref_multiplier(x, w, b, (2, 1), (1, 1), pads)
    y = run(x, w, b, (2, 1), (1, 1), pads, oshape=expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


#: Column stride 2 with 3 filter columns: the rows read straight from the input, border
#: columns summed apart. Widths from 1 to wide, odd and even, paddings on each side from 0 to
#: beyond the filter, row strides 1-3, row dilation, channel multipliers.
STRIDE2 = [
    # x shape, strides, dilations, pads (top, bottom, left, right), channel multiplier
    ((1, 6, 112, 112), (2, 2), (1, 1), (1, 1, 1, 1), 1),  # MobileNet's 112² → 56²
    ((1, 4, 111, 111), (2, 2), (1, 1), (1, 1, 1, 1), 1),  # odd: a right border column
    ((2, 3, 9, 20), (2, 2), (1, 1), (0, 1, 0, 1), 1),  # no left border
    ((1, 3, 10, 17), (1, 2), (2, 1), (2, 2, 2, 2), 2),  # row dilation, multiplier
    ((1, 2, 7, 2), (3, 2), (1, 1), (1, 1, 1, 1), 1),  # rows narrower than the filter
    ((1, 2, 5, 1), (2, 2), (1, 1), (1, 1, 1, 1), 1),  # one column
    ((1, 2, 6, 9), (2, 2), (1, 1), (4, 4, 5, 5), 1),  # padding beyond the filter
    ((1, 5, 8, 31), (2, 2), (1, 1), (1, 0, 3, 0), 3),  # wide left padding only
    # 16 output columns or more: blocks of 16 lanes (openge.kernels.stride2_lanes)
    ((1, 4, 20, 40), (2, 2), (1, 1), (1, 1, 1, 1), 1),  # a padding lane, an overlapping block
    ((2, 3, 9, 33), (1, 2), (1, 1), (1, 0, 0, 0), 1),  # exactly one block, no left padding
    ((1, 2, 12, 70), (2, 2), (2, 1), (2, 1, 1, 2), 2),  # dilation, multiplier, right border
    ((1, 3, 5, 64), (2, 2), (1, 1), (1, 2, 1, 1), 1),  # the last rows read near x's end
]


@pytest.mark.parametrize("case", STRIDE2)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stride_2_rows_read_straight_from_the_input(case, dtype):
    xs, s, d, pads, m = case
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal((xs[1] * m, 1, 3, 3)).astype(dtype)
    b = RNG.standard_normal(xs[1] * m).astype(dtype)
    expected = ref_multiplier(x, w, b, s, d, pads)
    y = run(x, w, b, s, d, pads, dw.HARD_SWISH, oshape=expected.shape)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref_act(expected, dw.HARD_SWISH, 0, 0), rtol=tol, atol=tol)


@pytest.mark.parametrize("width", [12, 40])  # the scalar loop, blocks of 16 lanes
def test_stride_2_padding_taps_multiply_zeros(width):
    """An infinite weight on a tap that reads padding gives NaN there (inf · 0), as the
    zero-padded input does; a NaN input reaches exactly the outputs whose windows hold it.
    Two samples: the first plane's first row reads before x and takes the scalar loop, the
    second sample's takes the blocks (a padding row, a padding lane)."""
    x = RNG.standard_normal((2, 2, 9, width)).astype(np.float32)
    x[0, 1, 4, 7] = np.nan
    w = RNG.standard_normal((2, 1, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = np.inf  # reads the top row and the left column of padding
    b = np.zeros(2, np.float32)
    pads = (1, 1, 1, 1)
    with np.errstate(invalid="ignore"):
        expected = ref_depthwise(x, w, b, (2, 2), (1, 1), pads)
    y = run(x, w, b, (2, 2), (1, 1), pads, oshape=expected.shape)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    for i in range(2):
        assert np.isnan(y[i, 0, 0]).all() and np.isnan(y[i, 0, :, 0]).all()
    finite = np.isfinite(expected)
    np.testing.assert_allclose(y[finite], expected[finite], rtol=1e-5, atol=1e-5)


def run_cl(x, w, b, s, d, pads, act=0, lo=0.0, hi=0.0, oshape=None):
    """The channels-last kernel (narrow planes), its filter rearranged (kh, kw, C)."""
    t = x.dtype.type
    c, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    block = dw.CL_BLOCK
    wt = np.zeros((kh, kw, -(-c // block) * block), x.dtype)  # the kernel's padded layout
    wt[:, :, :c] = w[:, 0].transpose(1, 2, 0)
    wt, b = read_only(wt), read_only(b)
    y = np.full(oshape, np.nan, x.dtype)
    args = (s[0], s[1], d[0], d[1], pads[0], pads[2], act, t(lo), t(hi))
    dw.depthwise_cl_act(x, wt, b, y, *args)
    items = x.shape[0] * (wt.shape[2] // block)
    _same_in_parts(dw.depthwise_cl_act_drive, dw.depthwise_cl_act, (x, wt, b), args, y, items)
    return y


@pytest.mark.parametrize(
    ("act", "lo", "hi"),
    [(1, 0.0, 0.0), (2, 0.0, 6.0), (3, 0.0, 0.0), (4, 0.2, 0.5), (5, 0.0, 0.0)],
)
def test_channels_last_activations(act, lo, hi):
    x = (3 * RNG.standard_normal((1, 96, 7, 7))).astype(np.float32)
    w = RNG.standard_normal((96, 1, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(96).astype(np.float32)
    pads = (1, 1, 1, 1)
    v = ref_depthwise(x, w, b, (1, 1), (1, 1), pads)
    expected = v / (1 + np.exp(-v)) if act == dw.SILU else ref_act(v, act, lo, hi)
    y = run_cl(x, w, b, (1, 1), (1, 1), pads, act, lo, hi, expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("xs", "k", "s", "pads"),
    [
        ((2, 75, 7, 7), 3, 1, (1, 1, 1, 1)),  # 7 wide, a partial 8-channel group
        ((1, 130, 14, 14), 3, 2, (1, 1, 1, 1)),  # 14 wide, a partial last block
        ((1, 72, 13, 9), 5, 1, (2, 2, 2, 2)),  # 117 positions: a remainder of 5
        ((1, 70, 3, 5), 3, 1, (1, 1, 1, 1)),  # fewer than 8 positions per row, 15 in all
        ((2, 9, 15, 15), 3, 2, (0, 1, 0, 1)),
        ((1, 64, 1, 1), 3, 1, (1, 1, 1, 1)),  # one position
        ((1, 9, 600, 7), 3, 1, (1, 1, 1, 1)),  # over FLAT_MAX_POSITIONS: rows, no scratch
    ],
)
def test_channels_last_narrow_rows_go_in_as_flat_planes(xs, k, s, pads):
    """Rows under 16 wide that are not a multiple of 8 are transposed as the flattened plane
    (8 positions at a time, across row ends) and copied into the padded buffer row by row."""
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal((xs[1], 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(xs[1]).astype(np.float32)
    expected = ref_depthwise(x, w, b, (s, s), (1, 1), pads)
    y = run_cl(x, w, b, (s, s), (1, 1), pads, oshape=expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_channels_last_float64():
    x = RNG.standard_normal((2, 40, 5, 6))
    w = RNG.standard_normal((40, 1, 3, 3))
    b = RNG.standard_normal(40)
    pads = (1, 1, 1, 1)
    expected = ref_depthwise(x, w, b, (1, 1), (1, 1), pads)
    y = run_cl(x, w, b, (1, 1), (1, 1), pads, oshape=expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def run_flat(x, w, b, d, pads, act=0, lo=0.0, hi=0.0):
    """The flat-plane kernel (stride 1, "same" padding), whole and in parts."""
    t = x.dtype.type
    w, b = read_only(w), read_only(b)
    n, c, h, wd = x.shape
    y = np.full((n, w.shape[0], h, wd), np.nan, x.dtype)
    masks = dw.flat_masks(h, wd, w.shape[3], d[1], pads[2])
    args = (masks, c, h, wd, d[0], d[1], pads[0], pads[2], act, t(lo), t(hi))
    dw.depthwise_flat_act(x.reshape(-1), w, b, y.reshape(-1), *args)
    planes = y.shape[0] * y.shape[1]
    flat = y.reshape(-1)
    _same_in_parts(
        dw.depthwise_flat_act_drive,
        dw.depthwise_flat_act,
        (x.reshape(-1), w, b),
        args,
        flat,
        planes,
    )
    return y


#: Stride 1, output planes the input's size: the flat kernel's territory (3×3 and 5×5 have
#: their own loops, other sizes the generic one).
FLAT = [
    ((1, 8, 7, 7), (3, 3), (1, 1), (1, 1, 1, 1)),
    ((2, 5, 14, 14), (5, 5), (1, 1), (2, 2, 2, 2)),
    ((1, 3, 112, 112), (3, 3), (1, 1), (1, 1, 1, 1)),  # a big plane
    ((1, 4, 9, 13), (3, 3), (2, 2), (2, 2, 2, 2)),  # dilation
    ((1, 4, 11, 6), (5, 5), (1, 2), (2, 2, 4, 4)),  # 5×5 dilated along the width
    ((1, 2, 10, 9), (7, 7), (1, 1), (3, 3, 3, 3)),  # the generic loop
    ((1, 3, 8, 8), (3, 5), (1, 1), (1, 1, 2, 2)),  # rectangular
    ((1, 3, 6, 7), (2, 2), (1, 1), (0, 1, 1, 0)),  # even size, uneven pads
    ((1, 3, 5, 5), (3, 3), (1, 1), (2, 0, 0, 2)),  # all the padding on one side
    ((1, 2, 1, 1), (3, 3), (1, 1), (1, 1, 1, 1)),  # one pixel: every tap but the centre pads
    ((1, 3, 9, 1), (5, 5), (1, 1), (2, 2, 2, 2)),  # one column
]


@pytest.mark.parametrize("case", FLAT)
def test_flat_matches_the_reference(case):
    xs, (kh, kw), d, pads = case
    c = xs[1]
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal((c, 1, kh, kw)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    expected = ref_depthwise(x, w, b, (1, 1), d, pads)
    assert expected.shape == x.shape
    np.testing.assert_allclose(run_flat(x, w, b, d, pads), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("act", "lo", "hi"),
    [(1, 0.0, 0.0), (2, 0.0, 6.0), (2, -0.5, 0.25), (3, 0.0, 0.0), (4, 0.2, 0.5), (5, 0.0, 0.0)],
)
@pytest.mark.parametrize("k", [3, 5, 7])
def test_flat_activations(act, lo, hi, k):
    x = (3 * RNG.standard_normal((1, 6, 15, 14))).astype(np.float32)
    w = RNG.standard_normal((6, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    pads = (k // 2,) * 4
    v = ref_depthwise(x, w, b, (1, 1), (1, 1), pads)
    expected = v / (1 + np.exp(-v)) if act == dw.SILU else ref_act(v, act, lo, hi)
    y = run_flat(x, w, b, (1, 1), pads, act, lo, hi)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_flat_reads_past_a_row_end_count_as_padding(k):
    """Infinities in the first and last columns: a tap that would read them across a row
    boundary (the flat layout's neighbouring row) stands for a padding zero, so outputs out
    of the infinities' reach stay finite (0·inf would make them NaN) and exact."""
    x = RNG.standard_normal((1, 2, 9, 10)).astype(np.float32)
    x[:, :, :, 0] = np.inf
    x[:, :, :, -1] = -np.inf
    w = RNG.standard_normal((2, 1, k, k)).astype(np.float32)
    b = np.zeros(2, np.float32)
    pads = (k // 2,) * 4
    y = run_flat(x, w, b, (1, 1), pads, 2, -1e30, 1e30)  # clip: the main loop's store
    reach = k // 2
    inner = y[:, :, :, reach + 1 : -reach - 1]
    assert np.isfinite(inner).all()
    finite = x.copy()
    finite[:, :, :, 0] = 0
    finite[:, :, :, -1] = 0
    expected = ref_depthwise(finite, w, b, (1, 1), (1, 1), pads)[:, :, :, reach + 1 : -reach - 1]
    np.testing.assert_allclose(inner, expected, rtol=1e-5, atol=1e-5)


def test_flat_nan_propagates_and_float64_with_a_multiplier():
    x = RNG.standard_normal((2, 3, 8, 9))
    w = RNG.standard_normal((6, 1, 3, 3))
    b = RNG.standard_normal(6)
    pads = (1, 1, 1, 1)
    expected = ref_multiplier(x, w, b, (1, 1), (1, 1), pads)
    np.testing.assert_allclose(run_flat(x, w, b, (1, 1), pads), expected, rtol=1e-12, atol=1e-12)
    x32 = np.zeros((1, 1, 5, 5), np.float32)
    x32[0, 0, 2, 2] = np.nan
    w32 = np.ones((1, 1, 3, 3), np.float32)
    y = run_flat(x32, w32, np.zeros(1, np.float32), (1, 1), pads, 2, 0.0, 6.0)
    assert np.isnan(y[0, 0, 1:4, 1:4]).all() and np.isnan(y).sum() == 9
