"""openge.kernels.stride2_lanes: one output row of a 3×3 filter at column stride 2 in blocks
of 16 lanes, against the same sums written here in float64 NumPy: rows of exactly one block
and with an overlapping last block, padding rows (adding w · 0), a left padding lane, and
nothing written outside the row."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels

RNG = np.random.default_rng(31)


def _row_caller():
    """A compiled caller of the intrinsic (an intrinsic is called from compiled code only)."""
    kernels.load("depthwise")  # numba imported, the cache folder set
    from numba import njit

    from openge.kernels.stride2_lanes import taps3_s2_row

    @njit(fastmath={"contract"})
    def call(xf, starts, oks, w, yf, at, b, m, pad):
        taps3_s2_row(
            xf, starts[0], starts[1], starts[2], oks[0], oks[1], oks[2],
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8],
            yf, at, b, m, pad,
        )  # fmt: skip

    return call


def _expected(xf, starts, oks, w, b, m, pad):
    out = np.full(m, b, np.float64)
    for r in range(3):
        taps = w[3 * r : 3 * r + 3].astype(np.float64)
        if not oks[r]:
            out = out + taps.sum() * 0.0
            continue
        for j in range(m):
            q = starts[r] + 2 * j
            v = xf[q : q + 3].astype(np.float64)
            if pad and j == 0:
                v[0] = 0.0
            out[j] += taps @ v
    return out


@pytest.mark.parametrize("m", [16, 27, 56])
@pytest.mark.parametrize("oks", [(True, True, True), (False, True, True), (True, True, False)])
@pytest.mark.parametrize("pad", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_matches_the_sums(m, oks, pad, dtype):
    call = _row_caller()
    wd = 2 * m + 8
    xf = RNG.standard_normal(4 * wd).astype(dtype)
    starts = np.array([wd + 1, 2 * wd + 1, 3 * wd - 40], np.int64)
    w = RNG.standard_normal(9).astype(dtype)
    b = dtype(RNG.standard_normal())
    yf = np.full(m + 10, np.nan, dtype)
    call(xf, starts, np.array(oks), w, yf, 5, b, m, pad)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(yf[5 : 5 + m], _expected(xf, starts, oks, w, b, m, pad), tol, tol)
    assert np.isnan(yf[:5]).all() and np.isnan(yf[5 + m :]).all()  # nothing outside the row


def test_padding_rows_and_the_padding_lane_multiply_zeros():
    """An infinite weight on a padding row makes every output NaN; on the first tap of a
    padded left column only the first output (the others are ±inf)."""
    call = _row_caller()
    m = 20
    xf = RNG.standard_normal(200).astype(np.float32)
    starts = np.array([10, 60, 110], np.int64)
    w = RNG.standard_normal(9).astype(np.float32)
    w[1] = np.inf  # the first row's middle tap
    yf = np.zeros(m, np.float32)
    with np.errstate(invalid="ignore"):
        call(xf, starts, np.array([False, True, True]), w, yf, 0, np.float32(0.5), m, False)
    assert np.isnan(yf).all()
    w[1], w[3] = RNG.standard_normal(), np.inf  # the second row's first tap
    call(xf, starts, np.array([True, True, True]), w, yf, 0, np.float32(0.5), m, True)
    assert np.isnan(yf[0]) and np.isinf(yf[1:]).all()


def test_rows_of_another_dtype_do_not_compile():
    """x and y of different float widths (or integers) are refused when the caller compiles,
    not stored with the wrong width."""
    from numba.core.errors import TypingError

    call = _row_caller()
    starts = np.array([0, 40, 80], np.int64)
    oks = np.array([True, True, True])
    w = np.ones(9, np.float32)
    for xf, yf in (
        (np.ones(200, np.float32), np.zeros(16, np.float64)),
        (np.ones(200, np.int32), np.zeros(16, np.int32)),
    ):
        with pytest.raises(TypingError):
            call(xf, starts, oks, w, yf, 0, np.float32(0), 16, False)
