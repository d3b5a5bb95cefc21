"""openge.ops.conv_im2row: Conv2D / FusedConv2D on small output planes with the positions as
the product's rows, against Conv2D's NumPy kernel run after run, at 1 and 2 threads; what
the path does not cover keeps another."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from openge.kernels import depthwise
from openge.ops import conv_im2row, conv_pointwise, get_schema
from tests.ops.test_conv_im2col import numpy_conv

RNG = np.random.default_rng(43)


@pytest.mark.parametrize(
    ("n", "c", "cout", "hw", "kernel", "stride", "pads"),
    [
        (1, 512, 256, (7, 7), (1, 1), (1, 1), (0, 0, 0, 0)),  # a last-stage 1x1
        (2, 64, 96, (7, 7), (3, 3), (1, 1), (1, 1, 1, 1)),  # batch 2, 3x3
        (1, 128, 64, (14, 14), (1, 1), (2, 2), (0, 0, 0, 0)),  # strided 1x1 down to 7x7
        (1, 32, 50, (13, 13), (3, 3), (1, 1), (1, 1, 1, 1)),
        # shared at 2 threads (five panels, the last partial), each thread building the
        # columns itself; stride 2, batch 2
        (2, 64, 200, (13, 13), (3, 3), (2, 2), (1, 1, 1, 1)),
    ],
)
def test_prepared_conv_matches_numpy_kernel(
    threads, monkeypatch, n, c, cout, hw, kernel, stride, pads
):
    # the plain 1x1 kernel is tested on every CPU, the ones that route it to BLAS too
    monkeypatch.setattr(conv_im2row, "MAX_PLAIN_POSITIONS_NARROW", 64)
    x = np.zeros((n, c, *hw), np.float32)
    w = (RNG.standard_normal((cout, c, *kernel)) / np.sqrt(c)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    res = RNG.standard_normal(numpy_conv(x, w, b, stride, pads).shape).astype(np.float32)
    y = np.empty_like(res)
    act = (depthwise.RELU, 0.0, 0.0)
    run = conv_im2row.prepare(x, w, b, y, stride, (1, 1), pads, res, act, constant_filter=True)
    assert run is not None
    for _ in range(2):  # the closure reads the inputs as they are at each run
        x[...] = RNG.standard_normal(x.shape)
        run()
        want = np.maximum(numpy_conv(x, w, b, stride, pads) + res, 0)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_conv2d_prepare_takes_the_path_for_a_last_stage_conv():
    """A last-stage 1×1 at 7² runs here where the CPU has 512-bit vectors, on numpy's
    OpenBLAS (openge.ops.conv_pointwise) with narrower ones."""
    x = RNG.standard_normal((1, 256, 7, 7)).astype(np.float32)
    w = (RNG.standard_normal((512, 256, 1, 1)) / 16).astype(np.float32)
    y = np.empty((1, 512, 7, 7), np.float32)
    attrs = dict(
        strides=[1, 1, 1, 1],
        pads=[0, 0, 0, 0],
        dilations=[1, 1, 1, 1],
        groups=1,
        data_format="NCHW",
    )
    run = get_schema("Conv2D").prepare([x, w, None], [y], [False, True, False], **attrs)
    assert run is not None
    wide = conv_im2row.plain_positions() >= 49
    assert run.__module__ == (conv_im2row if wide else conv_pointwise).__name__
    run()
    np.testing.assert_allclose(y, numpy_conv(x, w, None, (1, 1), (0, 0, 0, 0)), atol=1e-4)


@pytest.mark.parametrize(
    ("cout", "hw", "constant_filter", "why"),
    [
        (64, (7, 7), False, "a filter that may change between runs"),
        (64, (28, 28), True, "a large plane"),
        (64, (14, 14), True, "a plain 1x1 on a 14x14 plane: BLAS"),
        (32, (7, 7), True, "less than a panel of output channels"),
        (64, (1, 1), True, "a squeeze-excite's 1x1 plane: a matrix-vector product"),
        (64, (2, 3), True, "fewer positions than a tile's rows"),
    ],
)
def test_declines(cout, hw, constant_filter, why):
    x = np.zeros((1, 32, *hw), np.float32)
    w = np.zeros((cout, 32, 1, 1), np.float32)
    y = np.zeros((1, cout, *hw), np.float32)
    run = conv_im2row.prepare(
        x, w, None, y, (1, 1), (1, 1), (0, 0, 0, 0), constant_filter=constant_filter
    )
    assert run is None, why


def test_declines_a_geometry_whose_columns_dwarf_its_tensors():
    x = np.zeros((1, 2, 8, 8), np.float32)
    w = np.zeros((64, 2, 3, 3), np.float32)
    y = np.zeros((1, 64, 2, 2), np.float32)
    pads = (10**6, 10**6, 10**6, 10**6)
    run = conv_im2row.prepare(x, w, None, y, (10**6, 10**6), (1, 1), pads, constant_filter=True)
    assert run is None
