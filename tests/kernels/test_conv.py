"""openge.kernels.conv against a float64 tap-by-tap reference written here, and against the
Conv2D NumPy kernel, on random shapes with the edges: one pixel, odd widths, padding larger
than the kernel, strides and dilations."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.ops import get_schema

RNG = np.random.default_rng(11)
conv = kernels.load("conv")


def ref_depthwise(x, w, b, s, d, pads):
    """Zero-padded input, then every tap added in float64."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = s, d, pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    y = np.zeros((n, c, oh, ow)) + b.reshape(1, c, 1, 1)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh]
            win = win[:, :, :, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
            y += win * w[:, 0, i, j].reshape(1, c, 1, 1)
    return y


CASES = [
    # x shape, (kh, kw), strides, dilations, pads (top, bottom, left, right)
    ((1, 8, 7, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((2, 5, 9, 11), (3, 5), (2, 1), (1, 2), (0, 2, 3, 1)),
    ((1, 3, 1, 1), (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # one pixel
    ((1, 4, 1, 1), (3, 3), (1, 1), (1, 1), (4, 4, 5, 5)),  # padding larger than the kernel
    ((1, 7, 13, 5), (5, 5), (3, 2), (1, 1), (2, 2, 2, 2)),
    ((3, 2, 6, 6), (2, 2), (2, 2), (2, 2), (1, 0, 0, 1)),
]


@pytest.mark.parametrize("case", CASES)
def test_depthwise_matches_the_reference(case):
    xs, (kh, kw), s, d, pads = case
    c = xs[1]
    x = RNG.standard_normal(xs).astype(np.float32)
    w = RNG.standard_normal((c, 1, kh, kw)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    expected = ref_depthwise(x, w, b, s, d, pads)
    y = np.full(expected.shape, np.nan, np.float32)  # an element left unwritten fails
    conv.depthwise_nchw(x, w, b, y, s[0], s[1], d[0], d[1], pads[0], pads[2])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_depthwise_float64_and_the_numpy_kernel():
    """float64 too, and the op's NumPy kernel gives the same values."""
    x = RNG.standard_normal((2, 6, 10, 9))
    w = RNG.standard_normal((6, 1, 3, 3))
    b = RNG.standard_normal(6)
    y = np.empty((2, 6, 5, 5))
    conv.depthwise_nchw(x, w, b, y, 2, 2, 1, 1, 1, 1)
    np.testing.assert_allclose(y, ref_depthwise(x, w, b, (2, 2), (1, 1), (1, 1, 1, 1)), 1e-12)
    expected = np.empty_like(y)
    attrs = {
        "strides": [1, 1, 2, 2],
        "pads": [1, 1, 1, 1],
        "dilations": [1, 1, 1, 1],
        "groups": 6,
        "data_format": "NCHW",
    }
    get_schema("Conv2D").kernel([x, w, b], [expected], **attrs)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
