"""Conv2D / FusedConv2D prepared on the Winograd path (openge.ops.conv_winograd) give the NumPy
kernel's values within the conformance tolerance, and an independent reference's."""

from __future__ import annotations

import numpy as np
import pytest

from openge.graph import DataType
from openge.ops import conv_winograd
from openge.ops.fused import encode_program
from openge.ops.registry import get_schema

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def _small_channels(monkeypatch):
    """The kernel on small, fast shapes: Winograd from 8 input channels (the route rule,
    MIN_INPUT_CHANNELS, has its own test)."""
    monkeypatch.setattr(conv_winograd, "MIN_INPUT_CHANNELS", 8)


RNG = np.random.default_rng(11)


def _ref(x, w, b, pads):
    pt, pb, pl, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,nchw->nohw", w[:, :, i, j], xp[:, :, i : i + oh, j : j + ow])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


ATTRS = {"strides": [1, 1, 1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "groups": 1}


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_winograd_matches_kernel_and_reference(bias):
    x = np.zeros((1, 32, 19, 16), np.float32)
    w = (RNG.standard_normal((48, 32, 3, 3)) / 17).astype(np.float32)
    b = RNG.standard_normal(48).astype(np.float32) if bias else None
    y = np.full((1, 48, 19, 16), np.nan, np.float32)
    _check_conv2d_on_winograd(x, w, b, y, runs=2)


def _check_conv2d_on_winograd(x, w, b, y, runs):
    """Conv2D prepared on x, w, b, y takes the Winograd path and, for ``runs`` fresh inputs,
    gives the NumPy kernel's values and the independent reference's ('same' padding)."""
    attrs = {**ATTRS, "data_format": "NCHW"}
    schema = get_schema("Conv2D")
    run = schema.prepare([x, w, b], [y], [False, True, True], **attrs)
    assert run is not None and run.__module__ == "openge.ops.conv_winograd"
    for _ in range(runs):
        x[...] = RNG.standard_normal(x.shape)
        run()
        expected = np.empty_like(y)
        schema.kernel([x, w, b], [expected], **attrs)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(y, _ref(x, w, b, (1, 1, 1, 1)), rtol=1e-5, atol=1e-5)


def test_fused_conv2d_winograd_with_residual_relu():
    shape = (1, 32, 20, 20)
    program = encode_program(
        [
            {"op": "Add", "attrs": {}, "args": [0, 1], "dtype": DataType.DT_FLOAT, "shape": shape},
            {"op": "Relu", "attrs": {}, "args": [-1], "dtype": DataType.DT_FLOAT, "shape": shape},
        ]
    )
    x = RNG.standard_normal(shape).astype(np.float32)
    w = (RNG.standard_normal((32, 32, 3, 3)) / 17).astype(np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    r = RNG.standard_normal(shape).astype(np.float32)
    attrs = {**ATTRS, "data_format": "NCHW", "epilogue": program}
    schema = get_schema("FusedConv2D")
    y = np.empty(shape, np.float32)
    run = schema.prepare([x, w, b, r], [y], [False, True, True, False], **attrs)
    assert run is not None
    run()
    expected = np.empty_like(y)
    schema.kernel([x, w, b, r], [expected], **attrs)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        y, np.maximum(_ref(x, w, b, (1, 1, 1, 1)) + r, 0), rtol=1e-5, atol=1e-5
    )


def _winograd_route(side: int) -> bool:
    """Whether a 16 → 16 3×3 'same' float32 convolution on a side × side plane takes the
    Winograd path."""
    x = np.zeros((1, 16, side, side), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    y = np.zeros((1, 16, side, side), np.float32)
    return conv_winograd.suitable(x, w, y, (1, 1, 1, 1), True)


def test_winograd_positions_limit_follows_the_vector_width():
    """14² planes and larger always; 13² ones only where min_positions() says so (512-bit
    vectors); 12² and smaller never."""
    from openge.kernels import gemm

    wide = gemm.VW >= 16
    assert conv_winograd.min_positions() == (
        conv_winograd.MIN_POSITIONS_WIDE if wide else conv_winograd.MIN_POSITIONS
    )
    assert conv_winograd.MIN_POSITIONS_WIDE == 13 * 13 < conv_winograd.MIN_POSITIONS
    assert _winograd_route(14)
    assert _winograd_route(13) == wide
    assert not _winograd_route(12)


def test_conv2d_winograd_on_a_13x13_plane(monkeypatch):
    """A 13² plane (the tiles cover 14², the last row and column of tiles half outside) on
    every CPU: the routing limit lowered, the values as the NumPy kernel's and the reference's."""
    monkeypatch.setattr(conv_winograd, "MIN_POSITIONS", 13 * 13)
    x = np.zeros((1, 24, 13, 13), np.float32)
    w = (RNG.standard_normal((40, 24, 3, 3)) / 15).astype(np.float32)
    b = RNG.standard_normal(40).astype(np.float32)
    y = np.full((1, 40, 13, 13), np.nan, np.float32)
    _check_conv2d_on_winograd(x, w, b, y, runs=1)
