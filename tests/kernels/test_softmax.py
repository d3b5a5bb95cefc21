"""openge.kernels.softmax: compiled softmax / log-softmax against a float64 NumPy formula
written here, NaN and infinities as NumPy gives them."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from tests.kernels.parts import drive_alone, drive_team

pytest.importorskip("numba")
RNG = np.random.default_rng(11)


def reference(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=axis, keepdims=True)
    total = np.exp(shifted).sum(axis=axis, keepdims=True)
    return shifted - np.log(total) if log else np.exp(shifted) / total


@pytest.mark.parametrize("parts", [1, 4, 37])
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_drive_in_parts_and_on_the_team_matches_whole(parts, columns):
    """The team's forms: any cut into parts, alone or on two threads, gives the serial
    kernel's bits."""
    module = kernels.load("softmax")
    shape = (37, 20, 6) if columns else (37, 128)
    x = (RNG.standard_normal(shape) * 12).astype(np.float32)
    fn = module.softmax_columns if columns else module.softmax_rows
    drive = module.softmax_columns_drive if columns else module.softmax_rows_drive
    want = np.empty_like(x)
    fn(x, want, True, 0, 37)
    alone, shared = np.full_like(x, np.nan), np.full_like(x, np.nan)
    drive_alone(drive, (x, alone, True), 37, parts)

    def whole(x, y, log):
        fn(x, y, log, 0, 37)

    drive_team(drive, whole, (x, shared, True), 37, parts)
    np.testing.assert_array_equal(alone, want)
    np.testing.assert_array_equal(shared, want)


@pytest.mark.parametrize("shape", [(1, 1000), (37, 128), (5, 7), (3, 1), (2, 100003)])
@pytest.mark.parametrize("log", [False, True])
def test_rows_against_float64(shape, log):
    module = kernels.load("softmax")
    x = (RNG.standard_normal(shape) * 12).astype(np.float32)
    y = np.full_like(x, np.nan)
    module.softmax_rows(x, y, log, 0, shape[0])
    np.testing.assert_allclose(y, reference(x, 1, log), rtol=2e-6, atol=1e-5 if log else 1e-9)


@pytest.mark.parametrize("log", [False, True])
def test_columns_and_row_ranges(log):
    """A channel softmax over axis 1 of (outer, n, inner); only outer indices [1, 3) are
    written."""
    module = kernels.load("softmax")
    x = (RNG.standard_normal((4, 21, 67)) * 6).astype(np.float32)
    y = np.full_like(x, -7.0)
    module.softmax_columns(x, y, log, 1, 3)
    np.testing.assert_allclose(
        y[1:3], reference(x[1:3], 1, log), rtol=2e-6, atol=1e-5 if log else 1e-9
    )
    assert (y[0] == -7.0).all() and (y[3] == -7.0).all()


def test_nan_and_infinities_as_numpy():
    module = kernels.load("softmax")
    x = RNG.standard_normal((5, 40)).astype(np.float32)
    x[0, 0] = np.nan  # the max may skip it: the sum must not
    x[1, 39] = np.nan
    x[2, 3] = np.inf
    x[3, :] = -np.inf
    x[4, 7] = -np.inf  # one -inf entry: exp gives 0 there
    with np.errstate(invalid="ignore"):
        want = reference(x, 1, False)
    for log in (False, True):
        y = np.empty_like(x)
        module.softmax_rows(x, y, log, 0, 5)
        assert np.isnan(y[:4]).all()
        assert not np.isnan(y[4]).any()
    y = np.empty_like(x)
    module.softmax_rows(x, y, False, 0, 5)
    assert y[4, 7] == 0.0
    np.testing.assert_allclose(y[4], want[4], rtol=2e-6, atol=1e-9)


def test_large_gaps_do_not_overflow_or_go_subnormal():
    """Differences beyond float32's exp range: the far entries are (nearly) 0, never NaN."""
    module = kernels.load("softmax")
    x = np.array([[0.0, -200.0, -90.0, 80.0, 3e38, -3e38]], np.float32)
    y = np.empty_like(x)
    module.softmax_rows(x, y, False, 0, 1)
    assert y[0, 4] == 1.0 and np.all(y[0, [0, 1, 2, 3, 5]] == 0.0)
    x = np.array([[0.0, -86.0, -88.0]], np.float32)
    module.softmax_rows(x, y[:, :3], False, 0, 1)
    assert y[0, 1] == pytest.approx(np.exp(-86.0), rel=1e-5) and y[0, 2] == 0.0
