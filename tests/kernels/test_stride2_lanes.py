"""openge.kernels.stride2_lanes: one output row of a 3×3 filter, and of a 3×3 max pooling, at
column stride 2 in blocks of 16 lanes, against the same sums and maxima written here in NumPy:
rows of exactly one block and with an overlapping last block, padding rows (adding w · 0),
a left padding lane, columns past the row's end, NaN reported, and nothing written outside
the row; the routing rule's Python form."""

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


def _max_caller():
    kernels.load("pooling")
    from numba import njit

    from openge.kernels.stride2_lanes import max3_s2_row

    @njit
    def call(xf, starts, rows, yf, at, m, pad, valid):
        return max3_s2_row(xf, starts[0], starts[1], starts[2], rows, yf, at, m, pad, valid)

    return call


def _expected_max(xf, starts, rows, m, pad, valid):
    out = np.full(m, -np.inf)
    for j in range(m):
        for c in range(3):
            col = 2 * j + c
            if (pad and col == 0) or col >= valid:
                continue
            for r in range(rows):
                out[j] = max(out[j], xf[starts[r] + col])
    return out


@pytest.mark.parametrize("m", [16, 27, 56])
@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("pad", [False, True])
@pytest.mark.parametrize("past_end", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_row_matches_the_window_maxima(m, rows, pad, past_end, dtype):
    """Each output is its window's max over the rows given, a left padding column and the
    ``past_end`` columns past the row's end left out; True (no NaN read); nothing written
    outside the row."""
    call = _max_caller()
    wd = 2 * m + 8
    xf = RNG.standard_normal(4 * wd).astype(dtype)
    xf[::7] = -np.inf  # an infinity is no NaN
    starts = np.array([wd + 1, 2 * wd + 1, 3 * wd - 40], np.int64)
    valid = 2 * m + 1 - past_end  # the last window's columns from ``valid`` on are padding
    yf = np.full(m + 10, np.nan, dtype)
    assert call(xf, starts, rows, yf, 5, m, pad, valid)
    np.testing.assert_array_equal(yf[5 : 5 + m], _expected_max(xf, starts, rows, m, pad, valid))
    assert np.isnan(yf[:5]).all() and np.isnan(yf[5 + m :]).all()


def test_max_row_reports_a_nan_in_any_row():
    """A NaN in any window row (in a column some output reads) makes the call return False;
    in a row not asked for it does not."""
    call = _max_caller()
    m, wd = 20, 60
    starts = np.array([0, wd, 2 * wd], np.int64)
    for r in range(3):
        xf = RNG.standard_normal(3 * wd + 50).astype(np.float32)
        xf[starts[r] + 17] = np.nan
        yf = np.zeros(m, np.float32)
        assert not call(xf, starts, 3, yf, 0, m, False, 2 * m + 1)
        assert call(xf, starts, r, yf, 0, m, False, 2 * m + 1) == (r > 0)


def test_the_routing_rule_has_one_python_form():
    """The ops layer calls the kernel's rule in its Python form: 3 filter rows, a left
    padding of 0 or 1, at least 16 interior columns (from a row of 2·16 + 1 inputs)."""
    from openge.kernels.stride2_lanes import LANES, interior_columns, row_fits

    fits, interior = row_fits.py_func, interior_columns.py_func
    assert interior(2 * LANES + 1, 0, 100) == LANES and interior(2 * LANES, 0, 100) == LANES - 1
    assert interior(2 * LANES, 1, 100) == LANES and interior(200, 1, 20) == 20
    assert fits(3, 0, LANES) and fits(3, 1, LANES)
    assert not fits(5, 0, LANES) and not fits(3, 2, LANES) and not fits(3, 0, LANES - 1)
