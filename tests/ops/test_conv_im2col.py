"""openge.ops.conv_im2col: Conv2D / FusedConv2D through im2col panels on openge's GEMM. Each
prepared closure is compared with Conv2D's NumPy kernel (and the epilogue written here in
NumPy), run after run as the inputs change, over batches, groups and both thread counts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from openge.kernels import depthwise
from openge.ops import conv_im2col, get_schema

RNG = np.random.default_rng(31)


def numpy_conv(x, w, b, stride, pads, dilation=(1, 1), groups=1):
    """Conv2D's NumPy kernel on these arrays (also openge.ops.conv_im2row's reference)."""
    n, _, h, width = x.shape
    cout, _, kh, kw = w.shape
    oh = (h + pads[0] + pads[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (width + pads[2] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.empty((n, cout, oh, ow), np.float32)
    get_schema("Conv2D").kernel(
        [x, w, b],
        [y],
        strides=[1, 1, *stride],
        pads=list(pads),
        dilations=[1, 1, *dilation],
        groups=groups,
        data_format="NCHW",
    )
    return y


@pytest.mark.parametrize(
    ("n", "c", "cout", "hw", "kernel", "stride", "pads", "dilation", "groups"),
    [
        (1, 3, 64, (64, 64), (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),  # stem, several blocks
        (2, 16, 32, (29, 29), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # batch
        (1, 12, 24, (20, 20), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 3),  # groups, dilation
        (1, 64, 200, (30, 30), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # rows split on 2 threads
        (1, 32, 128, (56, 56), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # 784 positions, 2 blocks
        (1, 24, 40, (12, 13), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 2),
        (1, 96, 100, (7, 7), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # a 7x7 plane
    ],
)
@pytest.mark.parametrize("constant_filter", [False, True], ids=["in-place", "packed"])
def test_prepared_conv_matches_numpy_kernel(
    threads, n, c, cout, hw, kernel, stride, pads, dilation, groups, constant_filter
):
    x = np.zeros((n, c, *hw), np.float32)
    w = RNG.standard_normal((cout, c // groups, *kernel)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    want_shape = numpy_conv(x, w, b, stride, pads, dilation, groups).shape
    y = np.empty(want_shape, np.float32)
    run = conv_im2col.prepare(
        x, w, b, y, stride, dilation, pads, groups=groups, constant_filter=constant_filter
    )
    assert run is not None
    for _ in range(2):  # the closure reads the inputs as they are at each run
        x[...] = RNG.standard_normal(x.shape)
        run()
        want = numpy_conv(x, w, b, stride, pads, dilation, groups)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_fused_residual_and_relu6_match_numpy(threads):
    x = RNG.standard_normal((2, 8, 22, 22)).astype(np.float32)
    w = RNG.standard_normal((24, 8, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(24).astype(np.float32)
    res = RNG.standard_normal((2, 24, 11, 11)).astype(np.float32)
    y = np.empty_like(res)
    run = conv_im2col.prepare(
        x, w, b, y, (2, 2), (1, 1), (1, 1, 1, 1), residual=res, act=(depthwise.CLIP, 0.0, 6.0)
    )
    assert run is not None
    run()
    want = np.clip(numpy_conv(x, w, b, (2, 2), (1, 1, 1, 1)) + res, 0, 6)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("positions", "block", "max_block", "threads"),
    [
        (28 * 28, 256, 384, 2),
        (56 * 56, 256, 384, 2),
        (111 * 113, 512, 768, 2),
        (27 * 27, 256, 384, 4),
        (5000, 256, 384, 3),
    ],
)
def test_balanced_blocks_leave_no_thread_a_short_share(positions, block, max_block, threads):
    """Blocks of whole 32-column panels, half to twice ``block`` wide, whose contiguous parts
    (as the team cuts them) give no thread more than its share plus a panel per block: blocks
    of 256 gave one of two threads 512 of 784 positions."""
    nr = 32
    width = conv_im2col.balanced_block(positions, block, max_block, nr, threads)
    assert width % nr == 0 and block // 2 <= width <= 2 * block
    count = -(-positions // width)
    sizes = [min(width, positions - j * width) for j in range(count)]
    parts = min(threads, count)
    loads = [sum(sizes[count * t // parts : count * (t + 1) // parts]) for t in range(parts)]
    assert max(loads) <= positions / parts + nr * -(-count // parts)
    # a plane up to max_block is one block
    assert conv_im2col.balanced_block(max_block, block, max_block, nr, threads) == max_block


def _drive_of(run) -> str:
    """The name of the team kernel a prepared closure holds."""
    names = [getattr(c.cell_contents, "__name__", "") for c in run.__closure__ or ()]
    return next(n for n in names if n.endswith("_drive"))


@pytest.mark.parametrize(
    ("c", "cout", "hw", "stride", "drive"),
    [
        (3, 32, (64, 64), (2, 2), "conv_direct_drive"),  # a stem: few channels, read in place
        (16, 64, (55, 55), (1, 1), "conv_direct_drive"),
        (16, 128, (55, 55), (1, 1), "conv_drive"),  # many channels: the copied panels pay
        (16, 64, (13, 13), (1, 1), "conv_drive"),  # the grid would compute 14 % more
    ],
)
def test_direct_or_packed_panels_by_channels_and_grid(c, cout, hw, stride, drive):
    x = RNG.standard_normal((1, c, *hw)).astype(np.float32)
    w = RNG.standard_normal((cout, c, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    want = numpy_conv(x, w, b, stride, (1, 1, 1, 1))
    y = np.empty_like(want)
    run = conv_im2col.prepare(x, w, b, y, stride, (1, 1), (1, 1, 1, 1), constant_filter=True)
    assert run is not None and _drive_of(run) == drive
    run()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_direct_path_ignores_what_the_shared_phases_buffer_held():
    """The phases' scratch is shared by tasks, and the last tile reads past this plane's end:
    what another task left there (NaN here) reaches no output, since the grid positions that
    read it are dropped (the run zeroes that tail anyway, so no subnormal slows the tile)."""
    from openge.ops.compiled import thread_scratch

    x = RNG.standard_normal((1, 3, 40, 40)).astype(np.float32)
    w = RNG.standard_normal((24, 3, 3, 3)).astype(np.float32)
    want = numpy_conv(x, w, None, (1, 1), (1, 1, 1, 1))
    y = np.empty_like(want)
    run = conv_im2col.prepare(x, w, None, y, (1, 1), (1, 1), (1, 1, 1, 1))
    assert run is not None and _drive_of(run) == "conv_direct_drive"
    thread_scratch("phases", 1, 3 * 42 * 42 + 4096, np.float32)[0][:] = np.nan
    run()
    assert not np.isnan(y).any()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_conv2d_prepare_takes_the_path_for_a_strided_conv():
    x = RNG.standard_normal((1, 3, 32, 32)).astype(np.float32)
    w = RNG.standard_normal((16, 3, 3, 3)).astype(np.float32)
    y = np.empty((1, 16, 16, 16), np.float32)
    run = get_schema("Conv2D").prepare(
        [x, w, None],
        [y],
        [False, True, False],
        strides=[1, 1, 2, 2],
        pads=[1, 1, 1, 1],
        dilations=[1, 1, 1, 1],
        groups=1,
        data_format="NCHW",
    )
    assert run is not None
    assert _drive_of(run) in ("conv_drive", "conv_direct_drive")
    run()
    want = numpy_conv(x, w, None, (2, 2), (1, 1, 1, 1))
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("dtype", "kernel", "stride", "hw", "groups", "why"),
    [
        (np.float64, (3, 3), (2, 2), (20, 20), 1, "float64 keeps the exact-order path"),
        (np.float32, (1, 1), (1, 1), (20, 20), 1, "a plain 1x1 product"),
        # 9 positions: most of a panel idle for any host's NR (8, 16 or 32 columns)
        (np.float32, (3, 3), (2, 2), (6, 6), 1, "a 3x3 output wastes most of a panel"),
        (np.float32, (3, 3), (2, 2), (20, 20), 16, "depthwise-like groups"),
    ],
)
def test_declines(dtype, kernel, stride, hw, groups, why):
    c = 16
    x = np.zeros((1, c, *hw), dtype)
    w = np.zeros((16, c // groups, *kernel), dtype)
    oh = (hw[0] + 2 * (kernel[0] // 2) - kernel[0]) // stride[0] + 1
    y = np.zeros((1, 16, oh, oh), dtype)
    pads = (kernel[0] // 2,) * 4
    assert conv_im2col.prepare(x, w, None, y, stride, (1, 1), pads, groups=groups) is None, why


def test_declines_a_geometry_whose_padded_plane_dwarfs_its_tensors():
    """Pads and dilation of 10⁶ around an 8×8 output: the phases would be ~10¹³ bytes."""
    x = np.zeros((1, 2, 8, 8), np.float32)
    w = np.zeros((16, 2, 3, 3), np.float32)
    y = np.zeros((1, 16, 8, 8), np.float32)
    pads = (10**6, 10**6, 10**6, 10**6)
    assert conv_im2col.prepare(x, w, None, y, (1, 1), (10**6, 10**6), pads) is None
