"""openge.ops.conv_pointwise: 1×1 convolutions run as GEMMs in column blocks with the
epilogue (bias, residual Add, activation) compiled per block. Each prepared closure is compared
with the Conv2D NumPy kernel followed by the epilogue written here in NumPy, run after run as
the inputs change."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from openge.graph import DataType
from openge.ops import conv_pointwise, get_schema
from openge.ops.fused import encode_program

RNG = np.random.default_rng(22)
F32 = DataType.DT_FLOAT
ATTRS = {"strides": [1, 1, 1, 1], "pads": [0, 0, 0, 0], "data_format": "NCHW"}


def _step(op, args, shape, attrs=None):
    return {"op": op, "attrs": attrs or {}, "args": args, "dtype": F32, "shape": shape}


def _numpy_conv(x, w, b, shape):
    y = np.empty(shape, x.dtype)
    get_schema("Conv2D").kernel([x, w, b], [y], dilations=[1, 1, 1, 1], groups=1, **ATTRS)
    return y


def _uses_blocks(run) -> bool:
    """Whether ``run`` is this module's path: the compiled loop over blocks calling numpy's
    OpenBLAS (``conv1x1``), or the NumPy-driven blocks with the compiled epilogue."""
    cells = [repr(c.cell_contents) for c in run.__closure__ or ()]
    return any("conv1x1" in c or "block_epilogue" in c for c in cells)


def _cells(run) -> list[str]:
    return [repr(c.cell_contents) for c in run.__closure__ or ()]


def _native(run) -> bool:
    """The compiled loop calling numpy's OpenBLAS (not openge's own micro-kernel)."""
    return any("conv1x1" in c and "conv1x1_tiles" not in c for c in _cells(run))


def _tiles(run) -> bool:
    """openge's own micro-kernel (openge.kernels.pointwise.conv1x1_tiles)."""
    return any("conv1x1_tiles" in c for c in _cells(run))


LO, HI = np.array(0.0, np.float32), np.array(6.0, np.float32)


@pytest.mark.parametrize(
    ("name", "steps", "numpy_epilogue"),
    [
        ("relu6", [("Maximum", [0, 1]), ("Minimum", [-1, 2])], lambda v, r: np.clip(v, 0, 6)),
        ("residual", [("Add", [3, 0])], lambda v, r: v + r),
        ("residual_relu", [("Add", [0, 3]), ("Relu", [-1])], lambda v, r: np.maximum(v + r, 0)),
        ("hard_swish", [("HardSwish", [0])], lambda v, r: v * np.clip(v + 3, 0, 6) / 6),
        ("silu", [("Sigmoid", [0]), ("Mul", [-1, 0])], lambda v, r: v / (1 + np.exp(-v))),
        ("sigmoid", [("Sigmoid", [0])], lambda v, r: 1 / (1 + np.exp(-v))),
        (
            "onnx_hard_swish",  # x·HardSigmoid(x, 1/6, 1/2), as the ONNX parser writes it
            [("HardSigmoid", [0], {"alpha": 1 / 6, "beta": 0.5}), ("Mul", [-1, 0])],
            lambda v, r: v * np.clip(v / 6 + 0.5, 0, 1),
        ),
    ],
)
@pytest.mark.parametrize(("n", "cout", "side"), [(1, 8, 5), (2, 40, 90)])  # 1 and 2+ blocks
def test_fused_conv2d_blocks(name, steps, numpy_epilogue, n, cout, side):
    c = 7
    x = np.zeros((n, c, side, side), np.float32)
    w = RNG.standard_normal((cout, c, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = (n, cout, side, side)
    r = np.zeros(shape, np.float32)
    y = np.empty(shape, np.float32)
    prog = encode_program([_step(step[0], step[1], shape, *step[2:]) for step in steps])
    # operands: 1, 2 = the clip bounds, 3 = the residual (FusedConv2D inputs 3, 4, 5)
    run = get_schema("FusedConv2D").prepare(
        [x, w, b, LO, HI, r],
        [y],
        [False, True, True, True, True, False],
        dilations=[1, 1, 1, 1],
        groups=1,
        **ATTRS,
        epilogue=prog,
    )
    assert run is not None and _uses_blocks(run)
    for _ in range(2):
        x[...] = RNG.standard_normal(x.shape)
        r[...] = RNG.standard_normal(r.shape)
        run()
        expected = numpy_epilogue(_numpy_conv(x, w, b, shape), r)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_conv2d_bias_only_and_no_bias():
    x = RNG.standard_normal((1, 9, 40, 40))
    w = RNG.standard_normal((300, 9, 1, 1))
    for b in (RNG.standard_normal(300), None):
        y = np.empty((1, 300, 40, 40))
        run = get_schema("Conv2D").prepare(
            [x, w, b], [y], [False, True, True], dilations=[1, 1, 1, 1], groups=1, **ATTRS
        )
        assert run is not None and _uses_blocks(run)
        run()
        np.testing.assert_allclose(y, _numpy_conv(x, w, b, y.shape), rtol=1e-12, atol=1e-12)


def test_epilogue_parsing():
    y = np.zeros((1, 2, 3, 3), np.float32)
    r = np.zeros_like(y)
    const = [False, False]
    assert conv_pointwise.epilogue([("Add", [1, 0], {})], [y, r], const)[0] is r
    # a residual that broadcasts, or a step reading the result again, is not this path
    assert conv_pointwise.epilogue([("Add", [0, 1], {})], [y, r[:, :1]], const) is None
    twice = [("Add", [0, 1], {}), ("Mul", [-1, 0], {})]
    assert conv_pointwise.epilogue(twice, [y, r], const) is None
    assert conv_pointwise.epilogue([("Exp", [0], {})], [y], [False]) is None
    # a sigmoid is an activation in float32 (mathf32's exp), not in float64
    assert conv_pointwise.epilogue([("Sigmoid", [0], {})], [y], [False]) == (None, (7, 0.0, 0.0))
    y64 = y.astype(np.float64)
    assert conv_pointwise.epilogue([("Sigmoid", [0], {})], [y64], [False]) is None


def test_aliasing_output_is_refused():
    x = np.zeros((1, 4, 3, 3), np.float32)
    w = np.zeros((4, 4, 1, 1), np.float32)
    assert conv_pointwise.prepare(x, w, None, x) is None
    y = np.zeros_like(x)
    assert conv_pointwise.prepare(x, w, None, y, residual=y) is None


def test_numpy_openblas_gemm_is_called_from_compiled_code():
    """Where numpy's OpenBLAS exposes its CBLAS GEMM (numpy's wheels), the compiled loop is
    the path; without it, the NumPy-driven blocks."""
    from openge.kernels import blas

    x = RNG.standard_normal((1, 5, 9, 9)).astype(np.float32)
    w = RNG.standard_normal((6, 5, 1, 1)).astype(np.float32)
    y = np.empty((1, 6, 9, 9), np.float32)
    run = conv_pointwise.prepare(x, w, None, y)
    assert run is not None and _native(run) == (blas.gemm_entry(np.float32) is not None)
    run()
    np.testing.assert_allclose(y, _numpy_conv(x, w, None, y.shape), rtol=1e-5, atol=1e-5)


def test_shared_items_cut_narrow_outputs_by_columns_and_wide_ones_by_channels():
    """Two threads each calling OpenBLAS on half the columns of a short-K product with many
    output channels ran slower than one thread: from ROW_SPLIT_CHANNELS channels the parts
    are ranges of output channels, below it (on a wide plane) ranges of columns."""
    wide = conv_pointwise.ROW_SPLIT_CHANNELS
    rows, cols = conv_pointwise.shared_item(1, wide, 55 * 55, 1024, 2)
    assert (rows, cols) == (wide // 2, 1024)
    rows, cols = conv_pointwise.shared_item(1, 16, 55 * 55, 4096, 2)
    assert rows == 16 and 55 * 55 / 2 <= cols < 55 * 55
    rows, cols = conv_pointwise.shared_item(1, 16, 100, 1024, 2)  # a narrow plane: channels
    assert (rows, cols) == (conv_pointwise.MIN_ROWS, 1024)


@pytest.mark.parametrize(
    ("p", "block", "threads"),
    [(112 * 112, 4096, 2), (56 * 56, 896, 2), (3000, 512, 3), (28 * 28, 4096, 4)],
)
def test_column_ranges_come_in_equal_pieces_a_whole_number_per_thread(p, block, threads):
    """Pieces of at most ``block`` columns, as many per thread: the busiest thread does at most
    one piece's rounding (16 columns) more than its share, where pieces of ``block`` left the
    last one short (112² in blocks of 4096: 8192 columns for one thread, 4352 for the other)."""
    rows, cols = conv_pointwise.shared_item(1, 16, p, block, threads)
    assert rows == 16 and cols <= block and cols % 16 == 0
    pieces = -(-p // cols)
    assert pieces % threads == 0
    widths = [min(cols, p - k * cols) for k in range(pieces)]
    loads = [
        sum(widths[pieces * t // threads : pieces * (t + 1) // threads]) for t in range(threads)
    ]
    assert sum(loads) == p and max(loads) <= -(-p // threads) + 16 * (pieces // threads)


def test_micro_kernel_products_split_by_columns_at_any_channel_count():
    """Openge's micro-kernel cuts rows in whole MR tiles (64 channels as 36 + 28), so its shared
    products take column ranges wherever the plane is wide; BLAS keeps row ranges."""
    wide = conv_pointwise.ROW_SPLIT_CHANNELS
    assert conv_pointwise.shared_item(1, wide, 112 * 112, 1024, 2, tiles=True)[0] == wide
    assert conv_pointwise.shared_item(1, wide, 112 * 112, 1024, 2)[0] < wide
    narrow = conv_pointwise.shared_item(1, 96, 100, 1024, 2, tiles=True)  # too few columns
    assert narrow == (48, 1024)


@pytest.mark.parametrize(
    ("n", "c", "cout", "side"),
    # column ranges; row ranges of a narrow plane; of a wide one; samples
    [(2, 7, 40, 90), (1, 96, 576, 7), (1, 16, 64, 55), (3, 16, 24, 14)],
)
def test_blocks_shared_by_two_threads_match_one(n, c, cout, side):
    """At 2 openge threads the work is shared by the threads (column ranges of wide planes,
    output-channel ranges of narrow ones; each GEMM on one BLAS thread, its epilogue right
    after): the same values as the 1-thread loop and the NumPy kernel, run after run."""
    from threadpoolctl import threadpool_limits

    from openge import kernels
    from openge.kernels import blas

    x = np.zeros((n, c, side, side), np.float32)
    w = RNG.standard_normal((cout, c, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = (n, cout, side, side)
    y = np.empty(shape, np.float32)
    prog = encode_program([_step("Sigmoid", [0], shape), _step("Mul", [-1, 0], shape)])
    # the filter not marked constant: a 7x7 plane would go to openge.ops.conv_im2row
    run = get_schema("FusedConv2D").prepare(
        [x, w, b],
        [y],
        [False, False, True],
        dilations=[1, 1, 1, 1],
        groups=1,
        **ATTRS,
        epilogue=prog,
    )
    assert run is not None and _uses_blocks(run)
    before = kernels.get_num_threads()
    try:
        with threadpool_limits(2, user_api="blas"):
            for threads in (2, 1, 2):
                kernels.set_num_threads(threads)
                if threads == 2:
                    assert blas.split_threads() == 2
                x[...] = RNG.standard_normal(x.shape)
                run()
                v = _numpy_conv(x, w, b, shape)
                np.testing.assert_allclose(y, v / (1 + np.exp(-v)), rtol=1e-5, atol=1e-5)
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize(
    ("n", "c", "cout", "hw", "stride"),
    [
        (1, 16, 40, (28, 28), (2, 2)),  # a ResNet shortcut
        (2, 8, 24, (7, 9), (2, 3)),  # odd sides and unequal strides, batch 2
        (1, 5, 12, (10, 10), (3, 3)),
    ],
)
def test_strided_1x1_gathers_then_multiplies(n, c, cout, hw, stride):
    """prepare_strided: the strided input copied out at each run, then the 1×1 product with
    bias, residual and activation, as Conv2D's NumPy kernel then the epilogue."""
    from tests.ops.test_conv_im2col import numpy_conv

    x = np.zeros((n, c, *hw), np.float32)
    w = RNG.standard_normal((cout, c, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = numpy_conv(x, w, b, stride, (0, 0, 0, 0)).shape
    r = RNG.standard_normal(shape).astype(np.float32)
    y = np.empty(shape, np.float32)
    run = conv_pointwise.prepare_strided(x, w, b, y, stride, r, (1, 0.0, 0.0))  # ReLU
    assert run is not None
    for _ in range(2):  # reads x as it is at each run
        x[...] = RNG.standard_normal(x.shape)
        run()
        want = np.maximum(numpy_conv(x, w, b, stride, (0, 0, 0, 0)) + r, 0)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_strided_1x1_declines_what_it_does_not_cover():
    x = np.zeros((1, 4, 8, 8), np.float32)
    y = np.zeros((1, 6, 4, 4), np.float32)
    w = np.zeros((6, 4, 1, 1), np.float32)
    assert conv_pointwise.prepare_strided(x, w, None, y, (1, 1)) is None  # not strided
    w3 = np.zeros((6, 4, 3, 3), np.float32)
    assert conv_pointwise.prepare_strided(x, w3, None, y, (2, 2)) is None  # not 1x1
    y_wrong = np.zeros((1, 6, 3, 3), np.float32)
    assert conv_pointwise.prepare_strided(x, w, None, y_wrong, (2, 2)) is None  # padded


def test_conv2d_prepare_takes_the_strided_path():
    x = RNG.standard_normal((1, 32, 14, 14)).astype(np.float32)
    w = RNG.standard_normal((64, 32, 1, 1)).astype(np.float32)
    y = np.empty((1, 64, 7, 7), np.float32)
    attrs = dict(strides=[1, 1, 2, 2], pads=[0, 0, 0, 0], dilations=[1, 1, 1, 1], groups=1)
    run = get_schema("Conv2D").prepare(
        [x, w, None], [y], [False, True, False], **attrs, data_format="NCHW"
    )
    assert run is not None and run.__qualname__.startswith("prepare_strided")
    run()
    want = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x[:, :, ::2, ::2])
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def _residual_relu_conv(x, w, b, r, y, *, strides=(1, 1, 1, 1), groups=1):
    """FusedConv2D's prepared closure for ``relu(conv(x, w) + b + r)`` into ``y`` (NCHW, no
    padding; ``w`` and ``b`` constant)."""
    prog = encode_program([_step("Add", [0, 1], y.shape), _step("Relu", [-1], y.shape)])
    return get_schema("FusedConv2D").prepare(
        [x, w, b, r],
        [y],
        [False, True, True, False],
        strides=list(strides),
        pads=[0, 0, 0, 0],
        dilations=[1, 1, 1, 1],
        groups=groups,
        data_format="NCHW",
        epilogue=prog,
    )


def test_fused_conv2d_strided_1x1_with_residual():
    """FusedConv2D: a strided 1×1 with a residual Add and ReLU runs prepare_strided."""
    x = RNG.standard_normal((1, 16, 14, 14)).astype(np.float32)
    w = RNG.standard_normal((48, 16, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(48).astype(np.float32)
    shape = (1, 48, 7, 7)
    r = RNG.standard_normal(shape).astype(np.float32)
    y = np.empty(shape, np.float32)
    run = _residual_relu_conv(x, w, b, r, y, strides=[1, 1, 2, 2])
    assert run is not None and run.__qualname__.startswith("prepare_strided")
    run()
    conv = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x[:, :, ::2, ::2]) + b[:, None, None]
    np.testing.assert_allclose(y, np.maximum(conv + r, 0), rtol=1e-4, atol=1e-4)


def _grouped_reference(x, w, b, groups):
    """A grouped 1×1 convolution in NumPy, group by group (float64)."""
    n, c, h, wd = x.shape
    cout = w.shape[0]
    cg, coutg = c // groups, cout // groups
    y = np.empty((n, cout, h, wd))
    for g in range(groups):
        wg = w[g * coutg : (g + 1) * coutg, :, 0, 0].astype(np.float64)
        xg = x[:, g * cg : (g + 1) * cg].astype(np.float64)
        y[:, g * coutg : (g + 1) * coutg] = np.einsum("oc,nchw->nohw", wg, xg)
    return y + b.reshape(1, cout, 1, 1)


@pytest.mark.parametrize(
    ("n", "groups", "c", "cout", "side"), [(1, 3, 60, 240, 28), (2, 4, 16, 8, 5)]
)
def test_grouped_1x1_takes_each_groups_weights_on_one_and_two_threads(n, groups, c, cout, side):
    """A grouped 1×1 with a residual Add and ReLU (shufflenet's unit) runs as the compiled
    column blocks (openge's micro-kernel with enough channels per group, else numpy's BLAS),
    each group's sample on its own weights and bias, with the same values at 1 and 2
    threads as a NumPy group-by-group reference."""
    from threadpoolctl import threadpool_limits

    from openge import kernels
    from openge.kernels import blas

    x = np.zeros((n, c, side, side), np.float32)
    w = RNG.standard_normal((cout, c // groups, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = (n, cout, side, side)
    r = np.zeros(shape, np.float32)
    y = np.empty(shape, np.float32)
    run = _residual_relu_conv(x, w, b, r, y, groups=groups)
    if cout // groups >= conv_pointwise.TILES_MIN_ROWS:  # openge's micro-kernel, any BLAS
        assert run is not None and _tiles(run)
    elif blas.gemm_entry(np.float32) is None:
        assert run is None or not _native(run)
        return
    else:
        assert run is not None and _native(run)
    before = kernels.get_num_threads()
    try:
        with threadpool_limits(2, user_api="blas"):
            for threads in (1, 2):
                kernels.set_num_threads(threads)
                x[...] = RNG.standard_normal(x.shape)
                r[...] = RNG.standard_normal(r.shape)
                run()
                expected = np.maximum(_grouped_reference(x, w, b, groups) + r, 0)
                np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    finally:
        kernels.set_num_threads(before)


def test_conv2d_grouped_1x1_bias_only_matches_the_numpy_kernel():
    """Conv2D's prepare takes a grouped 1×1 to the compiled blocks too (bias only), with the
    NumPy Conv2D kernel's values."""
    from openge.kernels import blas

    x = RNG.standard_normal((1, 12, 9, 9)).astype(np.float32)
    w = RNG.standard_normal((18, 4, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(18).astype(np.float32)
    y = np.empty((1, 18, 9, 9), np.float32)
    run = get_schema("Conv2D").prepare(
        [x, w, b], [y], [False, True, True], dilations=[1, 1, 1, 1], groups=3, **ATTRS
    )
    assert run is not None
    assert _native(run) == (blas.gemm_entry(np.float32) is not None)
    run()
    np.testing.assert_allclose(y, _grouped_reference(x, w, b, 3), rtol=1e-5, atol=1e-5)


def test_grouped_1x1_declines_shapes_that_do_not_divide():
    """Filter channels × groups must be the input's channels, and Cout a multiple of groups."""
    x = np.zeros((1, 12, 3, 3), np.float32)
    y = np.zeros((1, 9, 3, 3), np.float32)
    assert conv_pointwise.prepare(x, np.zeros((9, 5, 1, 1), np.float32), None, y, groups=3) is None
    y8 = np.zeros((1, 8, 3, 3), np.float32)
    assert conv_pointwise.prepare(x, np.zeros((8, 4, 1, 1), np.float32), None, y8, groups=3) is None
    assert conv_pointwise.prepare(x, np.zeros((9, 4, 1, 1), np.float32), None, y, groups=0) is None


def _tile_reference(x, w, b, groups=1):
    return _grouped_reference(x, w, b, groups)


@pytest.mark.parametrize(
    ("n", "groups", "c", "cout", "side"),
    [
        (1, 1, 16, 96, 23),  # 529 positions: a strip past the last whole NR columns
        (3, 1, 24, 40, 7),  # samples of 49 positions, Cout not a multiple of MR
        (2, 2, 48, 64, 6),  # 36 positions per sample (at least NR on any CPU), groups
        (1, 1, 7, 16, 90),  # several column blocks, the fewest rows
        (2, 1, 384, 20, 13),  # the most input channels
        (1, 1, 256, 256, 9),  # the largest filter (256 KiB)
    ],
)
@pytest.mark.parametrize("act", [(0, 0.0, 0.0), (2, 0.0, 6.0), (5, 0.0, 0.0)])  # -, clip, SiLU
def test_tiles_match_numpy_with_residual_on_one_and_two_threads(n, groups, c, cout, side, act):
    """Few input channels, float32: openge's own micro-kernel (filter packed, x read in place,
    the plane's last strip from its last NR columns) with bias, residual and activation, as a
    NumPy reference at 1 and 2 threads, run after run."""
    from openge import kernels

    x = np.zeros((n, c, side, side), np.float32)
    w = RNG.standard_normal((cout, c // groups, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = (n, cout, side, side)
    y = np.empty(shape, np.float32)
    before = kernels.get_num_threads()
    try:
        for residual in (None, np.zeros(shape, np.float32)):
            run = conv_pointwise.prepare(
                x, w, b, y, residual, act, groups=groups, constant_filter=True
            )
            assert run is not None and _tiles(run)
            for threads in (1, 2, 1):
                kernels.set_num_threads(threads)
                x[...] = RNG.standard_normal(x.shape)
                if residual is not None:
                    residual[...] = RNG.standard_normal(shape)
                y[...] = np.nan
                run()
                v = _tile_reference(x, w, b, groups) + (0 if residual is None else residual)
                code, lo, hi = act
                want = {0: v, 2: np.clip(v, lo, hi), 5: v / (1 + np.exp(-v))}[code]
                np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize("wide", [False, True], ids=["narrow", "wide"])
def test_tiles_are_for_few_input_channels_in_float32_only(monkeypatch, wide):
    """More than tile_limits()'s input channels or (above TILES_ANY_FILTER_CHANNELS) filter
    bytes, float64, fewer than TILES_MIN_ROWS output channels, a plane narrower than the
    micro-kernel's NR columns or a filter that is not constant: not the tiles. Both limit
    sets are checked on every CPU (the host's vector width picks one)."""
    from openge.kernels import gemm

    wide_limits = (
        conv_pointwise.TILES_MAX_CHANNELS_WIDE,
        conv_pointwise.TILES_MAX_FILTER_BYTES_WIDE,
    )
    narrow_limits = (conv_pointwise.TILES_MAX_CHANNELS, conv_pointwise.TILES_MAX_FILTER_BYTES)
    assert conv_pointwise.tile_limits() == (wide_limits if gemm.VW >= 16 else narrow_limits)
    top, most_bytes = wide_limits if wide else narrow_limits
    # the limit set under test in both places: routing constants only, no kernel changes
    for name, value in zip(("TILES_MAX_CHANNELS", "TILES_MAX_FILTER_BYTES"), (top, most_bytes)):
        monkeypatch.setattr(conv_pointwise, name, value)
        monkeypatch.setattr(conv_pointwise, f"{name}_WIDE", value)
    rows = conv_pointwise.TILES_MIN_ROWS

    def path(c, cout, side, dtype=np.float32):
        x = np.zeros((1, c, side, side), dtype)
        w = np.zeros((cout, c, 1, 1), dtype)
        y = np.zeros((1, cout, side, side), dtype)
        run = conv_pointwise.prepare(x, w, None, y, constant_filter=True)
        return run is not None and _tiles(run)

    assert path(top, rows, 8)
    x, w = np.zeros((1, 16, 8, 8), np.float32), np.zeros((16, 16, 1, 1), np.float32)
    y = np.zeros((1, 16, 8, 8), np.float32)
    loose = conv_pointwise.prepare(x, w, None, y)  # a filter that may change: not packed
    assert loose is not None and not _tiles(loose)
    assert not path(top + 1, rows, 8)
    most = most_bytes // 4  # filter floats
    assert path(256, most // 256, 8)
    assert not path(256, most // 256 + 1, 8)  # a larger filter
    few = conv_pointwise.TILES_ANY_FILTER_CHANNELS
    assert path(few, most // few + 8, 8)  # few input channels: any filter
    assert not path(top, rows, 8, np.float64)
    assert not path(top, rows - 1, 8)
    small = int(np.sqrt(gemm.NR - 1))  # a plane of fewer than NR positions
    assert not path(16, rows, small)


@pytest.mark.skipif(sys.platform == "win32", reason="mprotect is POSIX")
def test_tiles_never_read_past_the_input():
    """x ends on a page boundary followed by a page that may not be read: the plane's last
    strip (not a whole NR columns past the previous one) must not touch it — a read there
    would end the process."""
    import ctypes
    import mmap

    from openge.kernels import gemm

    page = mmap.PAGESIZE
    c, side = 16, 11  # 121 positions: 7 whole strips of 16 and a last one of 9 (AVX2)
    nbytes = c * side * side * 4
    pages = -(-nbytes // page)
    area = mmap.mmap(-1, (pages + 1) * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(area))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    guard = base + pages * page
    assert libc.mprotect(guard, page, 0) == 0  # PROT_NONE
    try:
        flat = np.frombuffer(area, np.float32, count=pages * page // 4)
        x = flat[flat.size - c * side * side :].reshape(1, c, side, side)
        x[...] = RNG.standard_normal(x.shape)
        w = RNG.standard_normal((32, c, 1, 1)).astype(np.float32)
        y = np.empty((1, 32, side, side), np.float32)
        run = conv_pointwise.prepare(x, w, None, y, constant_filter=True)
        assert run is not None and _tiles(run) and (side * side) % gemm.NR
        run()
        np.testing.assert_allclose(
            y, _tile_reference(x, w, 0 * w[:, 0, 0, 0]), rtol=1e-4, atol=1e-4
        )
    finally:
        # readable again before anything may free the mapping (the prepared closure and the
        # arrays hold it)
        libc.mprotect(guard, page, mmap.PROT_READ | mmap.PROT_WRITE)


def test_a_filter_that_changes_between_runs_is_read_at_each_run():
    """FusedConv2D with its filter not marked constant (a graph input or a computed tensor):
    each run uses the filter's current values, on the path taken for few input channels."""
    x = np.zeros((1, 16, 20, 20), np.float32)
    w = np.zeros((32, 16, 1, 1), np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    y = np.empty((1, 32, 20, 20), np.float32)
    prog = encode_program([_step("Relu", [0], y.shape)])
    run = get_schema("FusedConv2D").prepare(
        [x, w, b],
        [y],
        [False, False, True],
        dilations=[1, 1, 1, 1],
        groups=1,
        **ATTRS,
        epilogue=prog,
    )
    assert run is not None
    for _ in range(3):
        x[...] = RNG.standard_normal(x.shape)
        w[...] = RNG.standard_normal(w.shape)
        run()
        np.testing.assert_allclose(
            y, np.maximum(_numpy_conv(x, w, b, y.shape), 0), rtol=1e-5, atol=1e-5
        )


def _vector(run) -> bool:
    """The squeeze-excite form (conv_pointwise._vector): a closure over the serial path."""
    return run.__qualname__.startswith("_vector.")


@pytest.mark.parametrize(("c", "cout"), [(960, 240), (168, 672), (40, 2500)])
@pytest.mark.parametrize("act", [(1, 0.0, 0.0), (4, 1 / 6, 0.5)])  # ReLU, HardSigmoid
def test_one_position_products_share_filter_rows_and_match_one_thread(c, cout, act):
    """A 1×1 convolution of a 1×1 plane at batch 1 with a filter of at least
    VECTOR_MIN_FILTER_BYTES (a squeeze-excite block's): filter rows shared by two threads,
    then the epilogue; as the NumPy reference with and without a residual, at two threads and
    at one (the serial product)."""
    from openge import kernels

    assert c * cout * 4 >= conv_pointwise.VECTOR_MIN_FILTER_BYTES
    x = np.zeros((1, c, 1, 1), np.float32)
    w = (RNG.standard_normal((cout, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    shape = (1, cout, 1, 1)
    y = np.empty(shape, np.float32)
    before = kernels.get_num_threads()
    try:
        for residual in (None, np.zeros(shape, np.float32)):
            run = conv_pointwise.prepare(x, w, b, y, residual, act, constant_filter=True)
            assert run is not None and _vector(run)
            for _ in range(2):
                x[...] = RNG.standard_normal(x.shape)
                if residual is not None:
                    residual[...] = RNG.standard_normal(shape)
                got = {}
                for threads in (2, 1):
                    kernels.set_num_threads(threads)
                    y[...] = np.nan
                    run()
                    got[threads] = y.copy()
                v = _numpy_conv(x, w, b, shape) + (0 if residual is None else residual)
                code, lo, hi = act
                want = {1: np.maximum(v, 0), 4: np.clip(lo * v + hi, 0, 1)}[code]
                np.testing.assert_allclose(got[2], want, rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(got[1], want, rtol=1e-5, atol=1e-5)
    finally:
        kernels.set_num_threads(before)


def test_small_one_position_products_keep_the_serial_path():
    """Below VECTOR_MIN_FILTER_BYTES (most squeeze-excite filters of small nets) the product
    stays on one thread: the team's hand-over would cost more than the split saves."""
    x = RNG.standard_normal((1, 72, 1, 1)).astype(np.float32)
    w = RNG.standard_normal((18, 72, 1, 1)).astype(np.float32)
    b = RNG.standard_normal(18).astype(np.float32)
    y = np.empty((1, 18, 1, 1), np.float32)
    run = conv_pointwise.prepare(x, w, b, y, None, (1, 0.0, 0.0), constant_filter=True)
    assert run is not None and not _vector(run) and _native(run)
    run()
    np.testing.assert_allclose(
        y, np.maximum(_numpy_conv(x, w, b, y.shape), 0), rtol=1e-5, atol=1e-5
    )
