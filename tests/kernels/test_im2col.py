"""openge.kernels.im2col: convolutions as im2col panels on openge's GEMM micro-kernel, compared
with a float64 NumPy convolution written here (window by window), across kernel sizes,
strides, dilations, paddings, planes narrower and wider than a panel, several blocks, and both
thread counts (which must give the same bits)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from openge import kernels
from openge.kernels import team
from tests.kernels.parts import drive_alone, drive_team

RNG = np.random.default_rng(7)
im2col = kernels.load("im2col")
depthwise = kernels.load("depthwise")


GEOMETRY = ("c", "cout", "hw", "kernel", "stride", "dilation", "pads")
GEOMETRIES = [
    (3, 64, (40, 44), (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),  # a stem, rows wider than a panel
    (3, 20, (33, 33), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    (16, 13, (15, 17), (3, 3), (1, 1), (2, 2), (2, 2, 2, 2)),  # dilated, odd Cout
    (8, 24, (21, 20), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
    (10, 12, (19, 23), (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),  # a strided 1x1
    (5, 30, (16, 31), (3, 2), (3, 2), (1, 1), (0, 2, 1, 0)),  # asymmetric everything
    (300, 40, (9, 9), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # K over two passes of KC
    (4, 8, (3, 70), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # rows longer than two panels
]


def _reference(x, w, stride, dilation, pads):
    """float64 convolution of one sample (C, H, W) with w (Cout, C, kh, kw)."""
    c, h, width = x.shape
    cout, _, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    top, bottom, left, right = pads
    xp = np.zeros((c, h + top + bottom, width + left + right))
    xp[:, top : top + h, left : left + width] = x
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (width + left + right - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((cout, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky * dh, ky * dh + (oh - 1) * sh + 1, sh)
            cols = slice(kx * dw, kx * dw + (ow - 1) * sw + 1, sw)
            win = xp[:, rows, cols]
            y += np.tensordot(w[:, :, ky, kx].astype(np.float64), win, axes=(1, 0))
    return y


def _plane(c, h, w, kernel, stride, dilation, pads):
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, bottom, left, right = pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, top + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, left + w)
    return oh, ow, -(-hp // sh), -(-wp // sw)


def _run(
    x,
    w,
    bias,
    stride,
    dilation,
    pads,
    block,
    rows,
    residual=None,
    act=(0, 0, 0),
    threads=1,
    packed=False,
    direct=False,
):
    """One sample through the packed panels (``conv``) or, with ``direct``, the windows read
    in place (``conv_direct``: the phases flattened with NR zeros after them, the filter
    packed, ``block`` counted in grid positions)."""
    c, h, width = x.shape
    cout, _, kh, kw = w.shape
    oh, ow, ph, pw = _plane(c, h, width, (kh, kw), stride, dilation, pads)
    plane = c * stride[0] * stride[1] * ph * pw
    flat = np.full(plane + im2col.NR, np.nan, np.float32)  # every float must be written
    xph = flat[:plane].reshape(c, *stride, ph, pw)
    im2col.phases(x, xph, pads[0], pads[2])
    flat[plane:] = 0.0
    taps = im2col.tap_offsets(c, (kh, kw), dilation, (*stride, ph, pw))
    y = np.full((cout, oh * ow), np.nan, np.float32)
    r = residual.reshape(cout, -1) if residual is not None else y
    code, lo, hi = act
    flags = (residual is not None, code, np.float32(lo), np.float32(hi))
    if packed or direct:  # blocks of MR rows (gemm.pack_rows): item rows a multiple of MR
        rows = -(-rows // im2col.MR) * im2col.MR
        filt, layout = im2col.pack_rows(w.reshape(cout, -1)), (1, im2col.MR)
    else:
        filt, layout = w.reshape(-1), (c * kh * kw, 1)
    if direct:  # a scratch of NaN: every output must come from a tile
        scratch = np.full(im2col.direct_scratch_floats(rows, block), np.nan, np.float32)
        items = im2col.direct_item_count(cout, oh, ow, pw, block, rows)
        whole, drive, source = im2col.conv_direct, im2col.conv_direct_drive, flat
    else:  # subnormals: idle panel lanes must not make the products slow or wrong
        scratch = np.full(im2col.scratch_floats(c * kh * kw, block), 1e-40, np.float32)
        items = im2col.item_count(cout, oh * ow, block, rows)
        whole, drive, source = im2col.conv, im2col.conv_drive, xph
    args = (filt, source, taps, y, bias, r, *flags, (ow, pw, block, rows, *layout), scratch)
    if threads == 1:
        whole(*args)
    else:
        team.run(drive, whole, args, items, min(items, threads), threads)
    return y.reshape(cout, oh, ow)


@pytest.mark.parametrize(GEOMETRY, GEOMETRIES)
@pytest.mark.parametrize("block", [32, 48, 4096])
@pytest.mark.parametrize("packed", [False, True])
def test_conv_matches_float64_reference(c, cout, hw, kernel, stride, dilation, pads, block, packed):
    x = RNG.standard_normal((c, *hw)).astype(np.float32)
    w = RNG.standard_normal((cout, c, *kernel)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    y = _run(x, w, b, stride, dilation, pads, block, cout, packed=packed)
    want = _reference(x, w, stride, dilation, pads) + b[:, None, None]
    # float32 sums of K terms: a few ulps of sqrt(K) times the largest output
    atol = 1e-6 * np.sqrt(c * kernel[0] * kernel[1]) * np.abs(want).max()
    np.testing.assert_allclose(y, want, rtol=0, atol=atol)


@pytest.mark.parametrize(GEOMETRY, GEOMETRIES)
@pytest.mark.parametrize("block", [32, 100, 4096])
def test_direct_path_gives_the_packed_panels_bits(
    c, cout, hw, kernel, stride, dilation, pads, block
):
    """Same sums in the same order as the packed panels, whatever the grid block; the
    grid's dropped columns (windows across a row's end) never reach an output."""
    x = RNG.standard_normal((c, *hw)).astype(np.float32)
    w = RNG.standard_normal((cout, c, *kernel)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    direct = _run(x, w, b, stride, dilation, pads, block, cout, direct=True)
    packed = _run(x, w, b, stride, dilation, pads, 64, cout, packed=True)
    assert not np.isnan(direct).any()
    assert np.array_equal(direct, packed)
    want = _reference(x, w, stride, dilation, pads) + b[:, None, None]
    atol = 1e-6 * np.sqrt(c * kernel[0] * kernel[1]) * np.abs(want).max()
    np.testing.assert_allclose(direct, want, rtol=0, atol=atol)


@pytest.mark.parametrize("threads", [1, 2])
def test_direct_path_residual_activation_and_threads(threads):
    x = RNG.standard_normal((6, 23, 23)).astype(np.float32)
    w = RNG.standard_normal((40, 6, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32)
    res = (3 * RNG.standard_normal((40, 23, 23))).astype(np.float32)
    act = (depthwise.CLIP, 0.0, 6.0)
    pads = (1, 1, 1, 1)
    y = _run(x, w, b, (1, 1), (1, 1), pads, 64, 12, res, act, threads=threads, direct=True)
    one = _run(x, w, b, (1, 1), (1, 1), pads, 4096, 40, res, act, direct=True)
    assert np.array_equal(y, one)
    want = np.clip(_reference(x, w, (1, 1), (1, 1), (1, 1, 1, 1)) + b[:, None, None] + res, 0, 6)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("rows", [16, 48])
def test_same_bits_on_one_or_two_threads_and_any_row_split(rows):
    x = RNG.standard_normal((24, 30, 30)).astype(np.float32)
    w = RNG.standard_normal((96, 24, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(96).astype(np.float32)
    one = _run(x, w, b, (2, 2), (1, 1), (1, 1, 1, 1), 64, 96)
    two = _run(x, w, b, (2, 2), (1, 1), (1, 1, 1, 1), 64, rows, threads=2)
    assert np.array_equal(one, two)
    # the filter packed in blocks of MR rows: the same products in the same order
    packed = _run(x, w, b, (2, 2), (1, 1), (1, 1, 1, 1), 64, rows, threads=2, packed=True)
    assert np.array_equal(one, packed)


@pytest.mark.parametrize(
    ("act", "numpy_act"),
    [
        ((depthwise.NONE, 0.0, 0.0), lambda v: v),
        ((depthwise.RELU, 0.0, 0.0), lambda v: np.maximum(v, 0)),
        ((depthwise.CLIP, 0.0, 6.0), lambda v: np.clip(v, 0, 6)),
    ],
)
def test_epilogue_adds_residual_then_activation(act, numpy_act):
    x = RNG.standard_normal((6, 18, 18)).astype(np.float32)
    w = RNG.standard_normal((20, 6, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(20).astype(np.float32)
    res = (3 * RNG.standard_normal((20, 9, 9))).astype(np.float32)
    y = _run(x, w, b, (2, 2), (1, 1), (1, 1, 1, 1), 32, 20, residual=res, act=act)
    want = numpy_act(_reference(x, w, (2, 2), (1, 1), (1, 1, 1, 1)) + b[:, None, None] + res)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


def test_phases_pad_and_split_every_float():
    x = RNG.standard_normal((3, 11, 14)).astype(np.float32)
    pads = (2, 1, 3, 0)
    for stride in [(1, 1), (2, 2), (3, 2)]:
        _, _, ph, pw = _plane(3, 11, 14, (3, 3), stride, (1, 1), pads)
        xph = np.full((3, *stride, ph, pw), np.nan, np.float32)
        im2col.phases(x, xph, pads[0], pads[2])
        padded = np.zeros((3, ph * stride[0], pw * stride[1]), np.float32)
        padded[:, 2 : 2 + 11, 3 : 3 + 14] = x
        for ry in range(stride[0]):
            for rx in range(stride[1]):
                assert np.array_equal(xph[:, ry, rx], padded[:, ry :: stride[0], rx :: stride[1]])


@pytest.mark.parametrize(
    ("w", "pads"),
    [
        (im2col.PAIR_MIN_WIDTH, (1, 1, 1, 1)),  # an even row, a 3×3 stem's padding
        (im2col.PAIR_MIN_WIDTH + 3, (3, 3, 3, 3)),  # odd, a 7×7 stem's padding
        (im2col.PAIR_MIN_WIDTH + 1, (0, 2, 0, 4)),  # no padding before, more after
        (im2col.PAIR_MIN_WIDTH + 2, (2, 0, 5, 0)),  # odd padding before, none after
    ],
)
def test_phases_of_wide_stride_2_rows_split_both_columns_at_once(w, pads):
    """Rows of PAIR_MIN_WIDTH and more at column stride 2 take the paired split: every float
    written (NaN-filled before), equal to the zero-padded plane's slices."""
    x = RNG.standard_normal((3, 9, w)).astype(np.float32)
    for kernel in [(3, 3), (7, 7)]:
        _, _, ph, pw = _plane(3, 9, w, kernel, (2, 2), (1, 1), pads)
        xph = np.full((3, 2, 2, ph, pw), np.nan, np.float32)
        im2col.phases(x, xph, pads[0], pads[2])
        padded = np.zeros((3, ph * 2, pw * 2), np.float32)
        padded[:, pads[0] : pads[0] + 9, pads[2] : pads[2] + w] = x
        for ry in range(2):
            for rx in range(2):
                assert np.array_equal(xph[:, ry, rx], padded[:, ry::2, rx::2])


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize(
    ("w", "stride"), [(14, (2, 2)), (im2col.PAIR_MIN_WIDTH, (2, 2)), (9, (1, 1))]
)
def test_phase_rows_in_parts_write_the_whole_phases(parts, w, stride):
    """The drive form's parts of phase rows (the team builds a convolution's phases, each
    thread the rows it reads first), however many, give :func:`phases`' floats: every one
    written (NaN-filled before), the paired and the strided splits alike; on a team of two
    threads too."""
    x = RNG.standard_normal((3, 10, w)).astype(np.float32)
    pads = (1, 2, 1, 0)
    _, _, ph, pw = _plane(3, 10, w, (3, 3), stride, (1, 1), pads)
    want = np.full((3, *stride, ph, pw), np.nan, np.float32)
    im2col.phases(x, want, pads[0], pads[2])
    assert not np.isnan(want).any()
    got = np.full_like(want, np.nan)
    drive_alone(im2col.phases_drive, (x, got, pads[0], pads[2]), ph, parts)
    np.testing.assert_array_equal(got, want)
    shared = np.full_like(want, np.nan)
    drive_team(im2col.phases_drive, im2col.phases, (x, shared, pads[0], pads[2]), ph, parts)
    np.testing.assert_array_equal(shared, want)
