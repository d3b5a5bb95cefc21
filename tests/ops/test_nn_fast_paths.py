"""The NCHW fast paths of the Conv2D and pooling kernels (openge.ops.conv, ops.pooling) — flat
shifted taps,
row-chunked im2col, one GEMM per tap, channels-last and phase-grid depthwise, flat pooling —
against plain per-pixel references written here. Every output starts as NaN, so an element a
path forgets to write fails the comparison."""

from __future__ import annotations

import numpy as np
import pytest

import openge.ops.conv as nn
from openge.ops import get_schema

RNG = np.random.default_rng(7)


# ----- references ------------------------------------------------------------------------------


def ref_conv(x, w, b, strides, pads, dil, groups):
    """NCHW convolution summed tap by tap over the zero-padded input (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = strides, dil, pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    y = np.zeros((n, co, oh, ow))
    cog = co // groups
    for i in range(kh):
        for j in range(kw):
            win = xp[
                :,
                :,
                i * dh : i * dh + (oh - 1) * sh + 1 : sh,
                j * dw : j * dw + (ow - 1) * sw + 1 : sw,
            ]
            for g in range(groups):
                y[:, g * cog : (g + 1) * cog] += np.einsum(
                    "nchw,oc->nohw",
                    win[:, g * cg : (g + 1) * cg],
                    w[g * cog : (g + 1) * cog, :, i, j],
                )
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def ref_pool(x, kind, k, s, pads, ceil_mode=False, exclusive=True):
    """NCHW pooling window by window over the unpadded input (float64)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = k, s, pads

    def out_len(size, kk, ss, p0, p1):
        span = size + p0 + p1 - kk
        if not ceil_mode:
            return span // ss + 1
        o = -(-span // ss) + 1
        return o - 1 if (o - 1) * ss >= size + p0 else o

    oh, ow = out_len(h, kh, sh, pt, pb), out_len(w, kw, sw, pl, pr)
    y = np.zeros((n, c, oh, ow))
    xd = x.astype(np.float64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            win = xd[:, :, max(r0, 0) : min(r0 + kh, h), max(c0, 0) : min(c0 + kw, w)]
            if kind == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                cnt = (
                    win.shape[2] * win.shape[3]
                    if exclusive
                    else (min(r0 + kh, h + pb) - r0) * (min(c0 + kw, w + pr) - c0)
                )
                y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


# ----- harness ---------------------------------------------------------------------------------


def conv(x, w, b, strides, pads, dil, groups):
    """Run the Conv2D kernel (NCHW) into a NaN-filled output, on read-only inputs."""
    (sh, sw), (dh, dw) = strides, dil
    n, _, h, wd = x.shape
    co, _, kh, kw = w.shape
    oh = (h + pads[0] + pads[1] - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pads[2] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.full((n, co, oh, ow), np.nan, dtype=x.dtype)
    ins = [a if a is None else a.view() for a in (x, w, b)]
    for a in ins:
        if a is not None:
            a.setflags(write=False)
    get_schema("Conv2D").kernel(
        ins,
        [y],
        strides=[1, 1, sh, sw],
        pads=list(pads),
        dilations=[1, 1, dh, dw],
        groups=groups,
        data_format="NCHW",
    )
    return y


def check_conv(xs, ws, strides, pads, dil, groups, bias=True, dtype=np.float32):
    x = RNG.standard_normal(xs).astype(dtype)
    w = RNG.standard_normal(ws).astype(dtype)
    b = RNG.standard_normal(ws[0]).astype(dtype) if bias else None
    got = conv(x, w, b, strides, pads, dil, groups)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(
        got, ref_conv(x, w, b, strides, pads, dil, groups), rtol=tol, atol=tol
    )


# ----- convolutions ----------------------------------------------------------------------------

# (x NCHW, filter (Co, Cg, kh, kw), dilations, pads [top, bottom, left, right], groups): stride
# 1 with pl + pr = dw·(kw - 1), so the output rows are as wide as the input's.
SAME_WIDTH = [
    ((2, 8, 5, 6), (12, 8, 3, 3), (1, 1), (1, 1, 1, 1), 1),
    ((2, 8, 5, 6), (3, 8, 3, 3), (1, 1), (1, 1, 1, 1), 1),  # few outputs: per-tap GEMMs
    ((1, 8, 7, 5), (3, 8, 5, 3), (2, 1), (3, 0, 2, 0), 1),  # asymmetric pads, dilated rows
    ((1, 6, 4, 7), (4, 6, 2, 3), (1, 2), (0, 2, 1, 3), 1),  # rows read past the input
    ((2, 6, 5, 5), (6, 3, 3, 3), (1, 1), (2, 0, 1, 1), 2),  # grouped
    ((1, 4, 3, 2), (5, 4, 3, 5), (1, 1), (1, 1, 2, 2), 1),  # taps wider than the image
    ((1, 4, 6, 1), (2, 4, 3, 1), (1, 1), (1, 1, 0, 0), 1),  # one column
    ((2, 8, 6, 6), (4, 8, 1, 1), (1, 1), (0, 0, 0, 0), 1),  # 1x1: one GEMM
]


@pytest.mark.parametrize("case", SAME_WIDTH)
@pytest.mark.parametrize("chunk", [None, 64])
def test_same_width_stride_1(case, chunk, monkeypatch):
    if chunk is not None:  # one output row per im2col chunk; per-tap GEMMs whenever allowed
        monkeypatch.setattr(nn, "_COLS_BYTES", chunk)
    xs, ws, dil, pads, groups = case
    check_conv(xs, ws, (1, 1), pads, dil, groups)


@pytest.mark.parametrize(
    "xs,ws,strides,pads,dil,groups",
    [
        ((2, 3, 9, 9), (8, 3, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
        ((1, 4, 11, 10), (6, 4, 7, 5), (2, 3), (3, 2, 1, 2), (1, 1), 1),
        ((1, 6, 8, 8), (6, 3, 3, 3), (1, 1), (0, 0, 0, 0), (2, 2), 2),  # narrower output
        ((2, 4, 7, 7), (4, 4, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # strided 1x1
    ],
)
@pytest.mark.parametrize("chunk", [None, 64])
def test_strided_and_narrow_convolutions(xs, ws, strides, pads, dil, groups, chunk, monkeypatch):
    if chunk is not None:
        monkeypatch.setattr(nn, "_COLS_BYTES", chunk)
    check_conv(xs, ws, strides, pads, dil, groups)


@pytest.mark.parametrize("channels", [3, 24])  # phase grid (NCHW) / channels-last
@pytest.mark.parametrize(
    "hw,k,strides,pads,dil",
    [
        ((5, 6), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
        ((7, 5), (3, 5), (1, 1), (0, 3, 2, 2), (1, 1)),
        ((6, 6), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
        ((9, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
        ((8, 9), (2, 3), (3, 2), (0, 1, 2, 0), (2, 1)),
        ((4, 4), (5, 5), (1, 1), (2, 2, 1, 3), (1, 1)),  # width changes
    ],
)
def test_depthwise(channels, hw, k, strides, pads, dil):
    check_conv((2, channels, *hw), (channels, 1, *k), strides, pads, dil, channels)


def test_depthwise_channel_multiplier_and_no_bias():
    check_conv((2, 6, 5, 5), (12, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, bias=False)
    check_conv((1, 20, 4, 4), (20, 1, 3, 3), (2, 1), (1, 0, 1, 1), (1, 1), 20, bias=False)


def test_float64_paths():
    check_conv((1, 8, 5, 5), (3, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, dtype=np.float64)
    check_conv((1, 16, 4, 4), (16, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 16, dtype=np.float64)


def test_channels_last_threshold_is_respected(monkeypatch):
    """Both depthwise layouts give the reference result for the same convolution."""
    for threshold in (0, 10**6):
        monkeypatch.setattr(nn, "_DW_CL", threshold)
        check_conv((1, 5, 6, 7), (5, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5)
        check_conv((1, 5, 6, 7), (5, 1, 3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 5)


def test_non_contiguous_input_and_output_fall_back():
    base = RNG.standard_normal((1, 6, 5, 8)).astype(np.float32)
    x = base.transpose(0, 3, 1, 2)  # an NCHW view of NHWC storage
    w = RNG.standard_normal((4, 8, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(
        conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1),
        ref_conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1),
        rtol=1e-4,
        atol=1e-4,
    )
    y = np.full((1, 4, 6, 5, 2), np.nan, np.float32)[..., 0]  # strided output
    get_schema("Conv2D").kernel(
        [np.ascontiguousarray(x), w, None],
        [y],
        strides=[1, 1, 1, 1],
        pads=[1, 1, 1, 1],
        dilations=[1, 1, 1, 1],
        groups=1,
        data_format="NCHW",
    )
    np.testing.assert_allclose(
        y, ref_conv(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1), rtol=1e-4, atol=1e-4
    )


# ----- pooling ---------------------------------------------------------------------------------

POOLS = [
    # (x NCHW, k, strides, pads, ceil_mode)
    ((2, 3, 9, 9), (3, 3), (2, 2), (0, 0, 0, 0), False),
    ((1, 4, 8, 8), (3, 3), (2, 2), (0, 0, 0, 0), True),  # windows run past the input
    ((1, 5, 7, 6), (3, 3), (1, 1), (1, 1, 1, 1), False),
    ((2, 2, 6, 7), (2, 3), (2, 1), (1, 0, 2, 1), False),
    ((1, 3, 5, 5), (5, 5), (1, 1), (0, 0, 0, 0), False),  # one window
    ((1, 2, 6, 6), (1, 1), (2, 2), (0, 0, 0, 0), False),
]

_POOL_ATTRS = {"padding_mode": "CALCULATED", "data_format": "NCHW", "global_pooling": False}


def _pool(kind, x, k, s, pads, ceil_mode, **extra):
    ref = ref_pool(x.astype(np.float64), kind, k, s, pads, ceil_mode, extra.get("exclusive", True))
    y = np.full(ref.shape, np.nan if x.dtype.kind == "f" else 0, dtype=x.dtype)
    kernel = get_schema("MaxPoolV3" if kind == "max" else "AvgPoolV2").kernel
    kernel(
        [x],
        [y],
        ksize=[1, 1, *k],
        strides=[1, 1, *s],
        pads=list(pads),
        ceil_mode=ceil_mode,
        **_POOL_ATTRS,
        **extra,
    )
    return y, ref


@pytest.mark.parametrize("case", POOLS)
def test_max_pool(case):
    xs, k, s, pads, ceil_mode = case
    y, ref = _pool("max", RNG.standard_normal(xs).astype(np.float32), k, s, pads, ceil_mode)
    np.testing.assert_array_equal(y, ref.astype(np.float32))


@pytest.mark.parametrize("case", POOLS)
@pytest.mark.parametrize("exclusive", [True, False])
def test_avg_pool(case, exclusive):
    xs, k, s, pads, ceil_mode = case
    x = RNG.standard_normal(xs).astype(np.float32)
    y, ref = _pool("avg", x, k, s, pads, ceil_mode, exclusive=exclusive, divisor_override=0)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_pool_dtypes_nan_and_divisor():
    x = RNG.integers(-128, 128, (1, 3, 7, 7)).astype(np.int8)
    y, ref = _pool("max", x, (3, 3), (2, 2), (1, 1, 1, 1), False)
    np.testing.assert_array_equal(y, ref.astype(np.int8))  # padding never wins, even at -128
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 2, 3] = np.nan
    y, _ = _pool("max", x, (3, 3), (1, 1), (1, 1, 1, 1), False)
    assert np.isnan(y[0, 0, 1:4, 2:5]).all() and not np.isnan(y[0, 1]).any()
    x16 = RNG.standard_normal((1, 3, 6, 6)).astype(np.float16)
    y, ref = _pool(
        "avg", x16, (3, 3), (2, 2), (1, 1, 1, 1), False, exclusive=True, divisor_override=0
    )
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=2e-3, atol=2e-3)
    y, ref = _pool(
        "avg", x, (3, 3), (2, 2), (0, 0, 0, 0), False, exclusive=True, divisor_override=4
    )
    np.testing.assert_allclose(y, ref * 9 / 4, rtol=1e-5, atol=1e-6)


# ----- prepared closures (OpSchema.prepare) ----------------------------------------------------

PREPARED = [
    # (x NCHW, filter, strides, pads, dilations, groups, prepared?)
    ((1, 24, 7, 7), (24, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 24, True),  # channels-last
    ((2, 16, 9, 8), (16, 1, 3, 5), (2, 2), (1, 0, 2, 1), (1, 2), 16, True),  # … strided, 2 samples
    ((1, 8, 6, 6), (12, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, True),  # 1x1 GEMM
    ((2, 8, 5, 5), (8, 2, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4, True),  # grouped 1x1
    ((1, 3, 9, 9), (3, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, False),  # phase grid
    ((1, 4, 7, 7), (4, 4, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1, False),  # strided 1x1
    ((1, 4, 6, 6), (5, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, False),  # im2col
]


def _conv_attrs(strides, pads, dil, groups):
    return {
        "strides": [1, 1, *strides],
        "pads": list(pads),
        "dilations": [1, 1, *dil],
        "groups": groups,
        "data_format": "NCHW",
    }


@pytest.fixture
def numpy_kernels():
    """Compiled kernels off (openge.kernels.set_enabled): the NumPy prepared paths, whose
    results must equal the generic kernels' bit for bit."""
    import openge.kernels

    openge.kernels.set_enabled(False)
    yield
    openge.kernels.set_enabled(True)


@pytest.mark.parametrize("case", PREPARED)
@pytest.mark.parametrize("constant_filter", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_prepared_conv2d_gives_the_kernels_bits(case, constant_filter, bias, numpy_kernels):
    """The closure made at load computes what the kernel computes on the same arrays, bit for
    bit, run after run as their contents change (a filter that is not constant too)."""
    xs, ws, strides, pads, dil, groups, prepared = case
    x = np.zeros(xs, np.float32)
    w = RNG.standard_normal(ws).astype(np.float32)  # a constant filter has its values at load
    b = np.zeros(ws[0], np.float32) if bias else None
    out_hw = ref_conv(x, w, b, strides, pads, dil, groups).shape[2:]
    y = np.full((xs[0], ws[0], *out_hw), np.nan, np.float32)
    attrs = _conv_attrs(strides, pads, dil, groups)
    schema = get_schema("Conv2D")
    run = schema.prepare([x, w, b], [y], [False, constant_filter, True], **attrs)
    assert (run is not None) == prepared
    if run is None:
        return
    for _ in range(3):
        x[...] = RNG.standard_normal(xs)
        if not constant_filter:
            w[...] = RNG.standard_normal(ws)
        if b is not None:
            b[...] = RNG.standard_normal(ws[0])
        y[...] = np.nan
        run()
        expected = np.full_like(y, np.nan)
        schema.kernel([x, w, b], [expected], **attrs)
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_allclose(
            y, ref_conv(x, w, b, strides, pads, dil, groups), rtol=1e-4, atol=1e-4
        )


def test_prepared_fused_conv2d_runs_its_epilogue(numpy_kernels):
    from openge.graph import DataType
    from openge.ops.fused import encode_program

    shape = (1, 24, 7, 7)
    program = encode_program(
        [
            {"op": "Add", "attrs": {}, "args": [0, 1], "dtype": DataType.DT_FLOAT, "shape": shape},
            {"op": "Relu", "attrs": {}, "args": [-1], "dtype": DataType.DT_FLOAT, "shape": shape},
        ]
    )
    x = RNG.standard_normal(shape).astype(np.float32)
    w = RNG.standard_normal((24, 1, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(24).astype(np.float32)
    r = RNG.standard_normal(shape).astype(np.float32)
    attrs = {**_conv_attrs((1, 1), (1, 1, 1, 1), (1, 1), 24), "epilogue": program}
    schema = get_schema("FusedConv2D")
    y = np.empty(shape, np.float32)
    run = schema.prepare([x, w, b, r], [y], [False, True, True, False], **attrs)
    assert run is not None
    run()
    expected = np.empty_like(y)
    schema.kernel([x, w, b, r], [expected], **attrs)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_allclose(
        y,
        np.maximum(ref_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 24) + r, 0),
        rtol=1e-4,
        atol=1e-4,
    )


def test_prepare_declines_what_it_does_not_speed_up():
    x = RNG.standard_normal((1, 24, 7, 7)).astype(np.float32)
    w = RNG.standard_normal((24, 1, 3, 3)).astype(np.float32)
    attrs = _conv_attrs((1, 1), (1, 1, 1, 1), (1, 1), 24)
    prepare = get_schema("Conv2D").prepare
    y = np.zeros((1, 24, 7, 7), np.float32)
    assert prepare([x, w], [y], [False, True], **attrs) is not None
    assert prepare([x, w], [np.empty((1, 24, 7, 7), np.float64)], [False, True], **attrs) is None
    assert (
        prepare(
            [x.astype(np.float16), w.astype(np.float16)],
            [y.astype(np.float16)],
            [False, True],
            **attrs,
        )
        is None
    )
    nhwc = {**attrs, "data_format": "NHWC"}
    assert prepare([x, w], [y], [False, True], **nhwc) is None
