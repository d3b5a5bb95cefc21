"""openge.kernels.pooling against a per-window float64 reference written here and against the
pooling ops' NumPy kernels (clipped windows, ceil mode, padding, NaN, global pooling)."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.ops import get_schema
from openge.ops.compiled import read_only
from openge.ops.pooling import _compiled_pool
from tests.kernels.parts import drive_alone

# one xdist worker runs this file, so each kernel signature (30-50 s cold) compiles once;
# spread over both workers with an empty kernel cache (CI), both compiled it at once
pytestmark = pytest.mark.xdist_group("pooling")
RNG = np.random.default_rng(5)
pooling = kernels.load("pooling")


def ref_pool(x, k, s, pads, oh, ow, average, include_pad):
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s[0] - top, j * s[1] - left
            win = x[:, :, max(y0, 0) : min(y0 + k[0], h), max(x0, 0) : min(x0 + k[1], w)]
            win = win.astype(np.float64)
            if average:
                if include_pad:
                    # the window's rows and columns inside the padded input
                    hh = min(y0 + k[0], h + bottom) - max(y0, -top)
                    ww = min(x0 + k[1], w + right) - max(x0, -left)
                    count = hh * ww
                else:
                    count = win.shape[2] * win.shape[3]
                y[:, :, i, j] = win.sum(axis=(2, 3)) / count
            else:
                y[:, :, i, j] = win.max(axis=(2, 3))
    return y


CASES = [
    # x shape, kernel, strides, pads (t, b, l, r), ceil_mode
    ((1, 3, 8, 8), (3, 3), (2, 2), (1, 1, 1, 1), False),
    ((2, 4, 7, 9), (3, 2), (2, 3), (0, 1, 1, 0), True),
    ((1, 2, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False),  # one pixel
    ((1, 5, 13, 11), (5, 5), (1, 1), (2, 2, 2, 2), False),  # stride 1: plane groups
    ((2, 150, 9, 11), (3, 2), (1, 1), (2, 0, 1, 1), False),  # many groups, uneven pads
    ((1, 3, 40, 30), (3, 3), (1, 1), (1, 1, 1, 1), False),  # same size: whole-plane passes
    ((1, 4, 10, 12), (3, 4), (1, 1), (0, 2, 2, 1), False),  # same size, uneven pads
    ((1, 2, 1, 5), (1, 3), (1, 1), (0, 0, 1, 1), False),  # same size, one row
    ((1, 3, 40, 30), (3, 3), (1, 1), (0, 0, 0, 0), False),  # stride 1, wide: row by row
    ((1, 3, 40, 30), (2, 3), (2, 2), (0, 1, 1, 1), True),  # stride 2: row by row
    ((1, 37, 7, 7), (7, 7), (1, 1), (0, 0, 0, 0), False),  # one window per plane, 3 lane blocks
    ((2, 5, 4, 6), (5, 7), (2, 2), (0, 1, 0, 1), False),  # one window past the plane's edges
    # the geometries compiled with their loops specialized (3×3 and 2×2 at stride 2, 3×3
    # "same" at stride 1), at their edges
    ((1, 6, 14, 14), (3, 3), (2, 2), (1, 1, 1, 1), False),  # narrow planes
    ((1, 4, 27, 27), (3, 3), (2, 2), (0, 0, 0, 0), True),  # squeezenet's, ceil mode
    ((2, 3, 10, 9), (2, 2), (2, 2), (0, 0, 0, 0), True),  # odd width, ceil mode
    ((1, 2, 5, 6), (2, 2), (2, 2), (1, 0, 1, 0), False),  # padded on one side
    ((1, 3, 2, 3), (3, 3), (1, 1), (1, 1, 1, 1), False),  # "same" on a tiny plane
]


def _attrs(k, s, pads, ceil_mode):
    return {
        "ksize": [1, 1, *k],
        "strides": [1, 1, *s],
        "padding_mode": "CALCULATED",
        "pads": list(pads),
        "data_format": "NCHW",
        "global_pooling": False,
        "ceil_mode": ceil_mode,
    }


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("op", ["MaxPoolV3", "AvgPoolV2"])
def test_prepared_pooling_matches_references(case, op):
    xs, k, s, pads, ceil_mode = case
    x = RNG.standard_normal(xs).astype(np.float32)
    attrs = _attrs(k, s, pads, ceil_mode)
    if op == "AvgPoolV2":
        attrs.update(exclusive=False, divisor_override=0)
    schema = get_schema(op)
    expected = np.empty(0, np.float32)
    # output shape from the NumPy kernel's own geometry
    from openge.ops.pooling import _pool_geometry

    geo = _pool_geometry(
        xs[2], xs[3], attrs["ksize"], attrs["strides"], "CALCULATED", pads, "NCHW", False, ceil_mode
    )
    oh, ow = geo[8], geo[9]
    y = np.full((xs[0], xs[1], oh, ow), np.nan, np.float32)
    from openge.ops.pooling import _compiled_pool

    run = _compiled_pool([x], [y], attrs, average=op == "AvgPoolV2")
    assert run is not None
    run()
    expected = np.empty_like(y)
    schema.kernel([x], [expected], **attrs)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    ref = ref_pool(x, k, s, pads, oh, ow, op == "AvgPoolV2", include_pad=True)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_one_window_over_the_whole_plane_propagates_nan_and_divides_by_its_count():
    """A 1×1 output whose window covers the whole plane (its own path, not the row path):
    NaN in a plane gives NaN in its max and average only; the exclusive average divides by
    the plane's elements, not the window's, whichever lane block a plane falls in."""
    x = RNG.standard_normal((1, 21, 5, 6)).astype(np.float32)
    x[0, 3, 2, 4] = np.nan  # first lane block
    x[0, 18, 0, 0] = np.nan  # second lane block, its plane's first element
    assert not pooling.row_path(5, 6, 1, 1, 6, 6, 1, 1, 0, 0)
    attrs = _attrs((6, 6), (1, 1), (0, 1, 0, 0), False)
    planes = x.reshape(21, 30).astype(np.float64)
    with np.errstate(invalid="ignore"):
        for average, expected in ((False, planes.max(axis=1)), (True, planes.mean(axis=1))):
            if average:
                attrs.update(exclusive=True, divisor_override=0)
            y = np.full((1, 21, 1, 1), -1.0, np.float32)
            run = _compiled_pool([x], [y], attrs, average=average)
            assert run is not None
            run()
            np.testing.assert_allclose(y.reshape(21), expected, rtol=1e-6, atol=1e-6)
            assert set(np.flatnonzero(np.isnan(y.reshape(21)))) == {3, 18}


def test_max_pool_propagates_nan_and_avg_divides_by_the_given_counts():
    x = RNG.standard_normal((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    y = np.empty((1, 1, 2, 2))
    pooling.max_pool_range(x, y, 2, 2, 2, 2, 0, 0, 0, 1)
    assert np.isnan(y[0, 0, 0, 1]) and not np.isnan(y[0, 0, 1, 1])
    assert y[0, 0, 1, 0] == np.max(x[0, 0, 2:, :2])
    y1 = np.empty((1, 1, 3, 3))  # stride 1: the plane-group path
    pooling.max_pool_range(x, y1, 2, 2, 1, 1, 0, 0, 0, 1)
    assert np.isnan(y1[0, 0, :2, 1:]).all() and not np.isnan(y1[0, 0, 2]).any()
    assert not np.isnan(y1[0, 0, :2, 0]).any()
    div = read_only(np.array([[1.0, 2.0], [4.0, 8.0]], np.float32))  # as ops.pooling's counts
    x = np.ones((1, 2, 4, 4), np.float32)
    y = np.full((1, 2, 2, 2), np.nan, np.float32)
    pooling.avg_pool_range(x, y, div, 2, 2, 2, 2, 0, 0, 1, 2)  # plane 1 only
    np.testing.assert_array_equal(y[0, 1], 4.0 / div)
    assert np.isnan(y[0, 0]).all()


@pytest.mark.parametrize("case", CASES)
def test_max_pool_nan_in_some_planes_propagates_as_numpy(case):
    """A max pooling runs plain max loops on planes (or bands of rows) without NaN and
    NaN-propagating ones elsewhere: NaN, inf and -inf put in some planes only, at the
    corners, edges and inside, come out as the NumPy kernel's (np.maximum's) at 1 and 2
    threads, and the planes without NaN beside them are unaffected."""
    xs, k, s, pads, ceil_mode = case
    attrs = _attrs(k, s, pads, ceil_mode)
    from openge.ops.pooling import _pool_geometry

    geo = _pool_geometry(
        xs[2], xs[3], attrs["ksize"], attrs["strides"], "CALCULATED", pads, "NCHW", False, ceil_mode
    )
    x = RNG.standard_normal(xs).astype(np.float32)
    n, c, h, w = xs
    planes = x.reshape(n * c, h, w)
    for plane in range(0, n * c, 2):  # every other plane gets special values
        for value, (r, col) in zip(
            (np.nan, np.inf, -np.inf, np.nan),
            ((0, 0), (h - 1, w - 1), (h // 2, 0), (RNG.integers(h), RNG.integers(w))),
            strict=True,
        ):
            planes[plane, r, col] = value
    y = np.empty((n, c, geo[8], geo[9]), np.float32)
    expected = np.empty_like(y)
    get_schema("MaxPoolV3").kernel([x], [expected], **attrs)
    assert np.isnan(expected).any()
    run = _compiled_pool([x], [y], attrs, average=False)
    assert run is not None
    before = kernels.get_num_threads()
    try:
        for threads in (1, 2):
            kernels.set_num_threads(threads)
            y[...] = 7.0
            run()
            np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
            np.testing.assert_array_equal(y, expected)
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize("op", ["MaxPoolV3", "AvgPoolV2"])
def test_inception_geometries_and_threads(op):
    """Bottom/right padding only, stride 2 and 1, planes shared by 2 threads: as the NumPy
    kernel at 1 and at 2 threads."""
    for xs, k, s, pads in (
        ((1, 64, 112, 112), (3, 3), (2, 2), (0, 1, 0, 1)),
        ((1, 576, 14, 14), (3, 3), (1, 1), (1, 1, 1, 1)),
        ((2, 32, 15, 17), (3, 3), (3, 2), (1, 2, 0, 1)),
    ):
        x = RNG.standard_normal(xs).astype(np.float32)
        attrs = _attrs(k, s, pads, False)
        if op == "AvgPoolV2":
            attrs.update(exclusive=True, divisor_override=0)
        from openge.ops.pooling import _compiled_pool, _pool_geometry

        geo = _pool_geometry(
            xs[2], xs[3], attrs["ksize"], attrs["strides"], "CALCULATED", pads, "NCHW", False, False
        )
        y = np.empty((xs[0], xs[1], geo[8], geo[9]), np.float32)
        expected = np.empty_like(y)
        get_schema(op).kernel([x], [expected], **attrs)
        run = _compiled_pool([x], [y], attrs, average=op == "AvgPoolV2")
        assert run is not None
        before = kernels.get_num_threads()
        try:
            for n in (1, 2):
                kernels.set_num_threads(n)
                y[...] = np.nan
                run()
                np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
        finally:
            kernels.set_num_threads(before)


def test_stride_one_scratch_counts_whole_planes():
    """The guard's scratch estimate covers the stride-1 paths' plane buffers: a 1×1 output
    row of a 3000-tall window still needs its padded planes."""
    row_only = pooling.scratch_bytes(4, 4, 3, 3, 2, 2, 4)
    assert row_only == (3 * 2 + 3) * 4
    tall = pooling.scratch_bytes(1, 1, 3000, 3000, 1, 1, 4)
    assert tall >= 3 * 3000 * 3000 * 4


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_row_bands_of_every_plane_make_the_whole_pooling(average, parts):
    """The drive forms' row-band parts and whole-plane parts (the strided path shared by
    threads), however many, give the plane-range kernel's bits; a stride-1 pooling's parts
    stay ranges of planes."""
    for xs, k, s, pads in (
        ((2, 5, 23, 19), (3, 3), (2, 2), (1, 1, 0, 1)),  # strided: row bands
        ((1, 4, 9, 11), (3, 3), (1, 1), (1, 1, 1, 1)),  # stride 1, same size: planes
    ):
        x = RNG.standard_normal(xs).astype(np.float32)
        from openge.ops.pooling import _pool_geometry

        geo = _pool_geometry(
            xs[2], xs[3], [1, 1, *k], [1, 1, *s], "CALCULATED", pads, "NCHW", False, False
        )
        oh, ow = geo[8], geo[9]
        by_rows = pooling.row_path(xs[2], xs[3], oh, ow, *k, *s, pads[0], pads[2])
        assert by_rows == (s != (1, 1))
        planes = xs[0] * xs[1]
        whole = np.full((xs[0], xs[1], oh, ow), np.nan, np.float32)
        banded = whole.copy()
        geometry = (*k, *s, pads[0], pads[2])
        if average:
            div = read_only((1.0 + RNG.random((oh, ow))).astype(np.float32))
            pooling.avg_pool_range(x, whole, div, *geometry, 0, planes)
            args = (x, banded, div, *geometry)
            drives = pooling.avg_pool_rows_drive, pooling.avg_pool_drive
            by_planes = pooling.avg_pool_rows_planes_drive
        else:
            pooling.max_pool_range(x, whole, *geometry, 0, planes)
            args = (x, banded, *geometry)
            drives = pooling.max_pool_rows_drive, pooling.max_pool_drive
            by_planes = pooling.max_pool_rows_planes_drive
        if by_rows:  # bands of the output rows of every plane; whole planes, every row
            drive_alone(drives[0], (*args, 0, planes), oh, parts)
            shared = np.full_like(banded, np.nan)
            drive_alone(by_planes, (x, shared, *args[2:]), planes, parts)
            np.testing.assert_array_equal(shared, whole)
        else:  # the caller claims every part
            drive_alone(drives[1], args, planes, parts)
        np.testing.assert_array_equal(banded, whole)
        assert not np.isnan(banded).any()


@pytest.mark.parametrize(
    "channels, size, want",
    [
        (64, 111, ("max_pool_rows_3x3s2_planes_drive", 64)),  # whole planes per part
        (12, 151, ("max_pool_rows_3x3s2_drive", 75)),  # few planes: bands of output rows
    ],
)
def test_a_strided_pooling_is_shared_on_the_team(monkeypatch, channels, size, want):
    """At 2 threads a strided pooling above the work threshold runs on the team: by planes
    from PLANES_SHARED planes on (total = planes), else in row bands (total = output rows);
    either gives the 1-thread bits."""
    from openge.kernels import team
    from openge.ops.pooling import PLANES_SHARED, TEAM_WORK, _compiled_pool

    x = RNG.standard_normal((1, channels, size, size)).astype(np.float32)
    attrs = _attrs((3, 3), (2, 2), (0, 0, 0, 0), False)
    out = (size - 3) // 2 + 1
    y1 = np.empty((1, channels, out, out), np.float32)
    y2 = np.empty_like(y1)
    assert y1.size * 9 >= TEAM_WORK
    assert (channels >= PLANES_SHARED) == want[0].endswith("planes_drive")
    calls = []
    real = team.run

    def spy(drive, whole, args, total, parts, threads):
        calls.append((drive.__name__, total))
        real(drive, whole, args, total, parts, threads)

    run1 = _compiled_pool([x], [y1], attrs, average=False)
    run2 = _compiled_pool([x], [y2], attrs, average=False)
    before = kernels.get_num_threads()
    monkeypatch.setattr(team, "run", spy)
    try:
        kernels.set_num_threads(1)
        run1()
        kernels.set_num_threads(2)
        run2()
    finally:
        kernels.set_num_threads(before)
    assert calls == [want]  # the 3×3 stride-2 loops
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("parts", [1, 3])
def test_the_3x3_stride_2_entries_give_the_generic_rows_bits(average, parts):
    """The entries compiled for 3×3 windows at stride 2 (whole, and on the team's drives in row
    bands and by planes) equal the generic row kernel bit for bit, NaN included, and refuse
    other windows."""
    x = RNG.standard_normal((2, 5, 15, 13)).astype(np.float32)
    x[0, 1, 4, 5] = np.nan
    oh, ow = 8, 7  # pads 1 on every side
    geometry = (3, 3, 2, 2, 1, 1)
    planes = 10
    want = np.full((2, 5, oh, ow), np.nan, np.float32)
    got = want.copy()
    banded = want.copy()
    shared = want.copy()
    if average:
        div = read_only((1.0 + RNG.random((oh, ow))).astype(np.float32))
        pooling.avg_pool_rows(x, want, div, *geometry, 0, planes, 0, oh)
        pooling.avg_pool_rows_3x3s2(x, got, div, *geometry, 0, planes, 0, oh)
        drive_alone(
            pooling.avg_pool_rows_3x3s2_drive, (x, banded, div, *geometry, 0, planes), oh, parts
        )
        drive_alone(
            pooling.avg_pool_rows_3x3s2_planes_drive, (x, shared, div, *geometry), planes, parts
        )
        with pytest.raises(ValueError):
            pooling.avg_pool_rows_3x3s2(x, got, div, 2, 2, 2, 2, 1, 1, 0, planes, 0, oh)
    else:
        pooling.max_pool_rows(x, want, *geometry, 0, planes, 0, oh)
        pooling.max_pool_rows_3x3s2(x, got, *geometry, 0, planes, 0, oh)
        drive_alone(pooling.max_pool_rows_3x3s2_drive, (x, banded, *geometry, 0, planes), oh, parts)
        drive_alone(pooling.max_pool_rows_3x3s2_planes_drive, (x, shared, *geometry), planes, parts)
        with pytest.raises(ValueError):
            pooling.max_pool_rows_3x3s2(x, got, 3, 3, 1, 1, 1, 1, 0, planes, 0, oh)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(banded, want)
    np.testing.assert_array_equal(shared, want)
    assert np.isnan(want[0, 1]).any() and not np.isnan(want[1]).any()
    assert pooling.specialized(3, 3, 2, 2) and not pooling.specialized(2, 2, 2, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "h, w, top, left, ceil_mode",
    [
        (111, 111, 0, 0, False),  # squeezenet's first pooling: whole blocks, no overhang
        (112, 112, 1, 1, False),  # resnet's: a left padding lane
        (112, 112, 0, 0, True),  # inception's: the last window past the row's end
        (56, 41, 1, 1, True),  # an overlapping last block, padding on both sides
        (33, 33, 0, 1, False),  # exactly one block
    ],
)
def test_3x3_stride_2_max_rows_in_lanes_match_the_window_maxima(h, w, top, left, ceil_mode, dtype):
    """The 16-lane rows of a 3×3 stride-2 max pooling (openge.kernels.stride2_lanes) give
    each window's max, on the first and last rows of ``x`` too (whose blocks would read
    outside it: the row path), with a NaN in one plane's row (that row made again with NaN
    propagating) and infinities elsewhere; one thread and the team's drives alike."""
    x = RNG.standard_normal((2, 3, h, w)).astype(dtype)
    x[1, 0, 5, 7] = np.nan
    x[0, 2, 9, 3], x[1, 2, 0, w - 1] = np.inf, -np.inf

    def span(n: int, pad: int) -> int:  # outputs along one axis (ceil mode: rounded up)
        return (n + pad - 3 + (1 if ceil_mode else 0)) // 2 + 1

    oh, ow = span(h, top), span(w, left)
    assert ow >= 16
    pads = (top, max(0, (oh - 1) * 2 + 3 - h - top), left, max(0, (ow - 1) * 2 + 3 - w - left))
    want = ref_pool(x, (3, 3), (2, 2), pads, oh, ow, False, False)
    geometry = (3, 3, 2, 2, top, left)
    got = np.full((2, 3, oh, ow), 7.0, dtype)
    pooling.max_pool_rows_3x3s2(x, got, *geometry, 0, 6, 0, oh)
    np.testing.assert_array_equal(got, want.astype(dtype))
    assert np.isnan(want[1, 0]).any() and not np.isnan(want[0]).any()  # NaN in one plane only
    assert np.isinf(want[0, 2]).any()
    for drive, total, rest in (
        (pooling.max_pool_rows_3x3s2_drive, oh, (0, 6)),
        (pooling.max_pool_rows_3x3s2_planes_drive, 6, ()),
    ):
        shared = np.full_like(got, 7.0)
        drive_alone(drive, (x, shared, *geometry, *rest), total, 3)
        np.testing.assert_array_equal(shared, got)
