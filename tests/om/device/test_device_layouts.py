"""Round trips of every device weight layout: origin → device (test loops) → origin (openge)."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.om.device import weights_layout as wl
from tests.om.device.devom_builder import (
    to_c1hwncoc0,
    to_fractal_nz,
    to_fractal_z,
    to_fractal_z_c04,
    to_nc1hwc0,
)

RNG = np.random.default_rng(7)
# (numpy dtype, C0): fp16 and fp32 use 16, int8 uses 32 (GE's cube sizes).
DTYPES = [(np.float16, 16), (np.float32, 16), (np.int8, 32)]


def _rand(shape, dtype):
    if np.dtype(dtype).kind == "i":
        return RNG.integers(-128, 127, size=shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(("dtype", "c0"), DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 17, 2, 2), (3, 32, 1, 1)])
def test_nc1hwc0_round_trip(dtype, c0, shape):
    x = _rand(shape, dtype)
    device = to_nc1hwc0(x, c0)
    np.testing.assert_array_equal(wl.to_origin(device, "NC1HWC0", "NCHW", shape), x)
    nhwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(wl.to_origin(device, "NC1HWC0", "NHWC", nhwc.shape), nhwc)


def test_nc1hwc0_c04_and_vector_round_trip():
    x = _rand((2, 3, 5, 5), np.float16)
    np.testing.assert_array_equal(wl.to_origin(to_nc1hwc0(x, 4), "NC1HWC0_C04", "NCHW", x.shape), x)
    bias = _rand((20,), np.float16)
    device = to_nc1hwc0(bias.reshape(1, 20, 1, 1), 16)
    np.testing.assert_array_equal(wl.to_origin(device, "NC1HWC0", "ND", (20,)), bias)


@pytest.mark.parametrize(("dtype", "c0"), DTYPES)
@pytest.mark.parametrize("shape", [(16, 16, 3, 3), (5, 3, 2, 1), (33, 40, 1, 3)])
def test_fractal_z_round_trip(dtype, c0, shape):
    w = _rand(shape, dtype)
    device = to_fractal_z(w, c0)
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_Z", "NCHW", shape), w)
    hwcn = w.transpose(2, 3, 1, 0)  # TensorFlow filters
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_Z", "HWCN", hwcn.shape), hwcn)
    nhwc = w.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_Z", "NHWC", nhwc.shape), nhwc)


def test_fractal_z_of_a_matrix():
    m = _rand((40, 24), np.float16)  # (K, N): a MatMul weight
    device = to_fractal_z(m.T.reshape(24, 40, 1, 1), 16)
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_Z", "ND", m.shape), m)


@pytest.mark.parametrize(("dtype", "c0"), [(np.float16, 16), (np.int8, 32)])
@pytest.mark.parametrize("shape", [(16, 3, 7, 7), (20, 4, 3, 3), (8, 1, 2, 2)])
def test_fractal_z_c04_round_trip(dtype, c0, shape):
    w = _rand(shape, dtype)
    device = to_fractal_z_c04(w, c0)
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_Z_C04", "NCHW", shape), w)


@pytest.mark.parametrize(("dtype", "w0"), DTYPES)
@pytest.mark.parametrize("shape", [(16, 16), (40, 7), (3, 33, 20), (2, 2, 5, 17), (21,)])
def test_fractal_nz_round_trip(dtype, w0, shape):
    x = _rand(shape, dtype)
    device = to_fractal_nz(x, w0)
    np.testing.assert_array_equal(wl.to_origin(device, "FRACTAL_NZ", "ND", shape), x)


@pytest.mark.parametrize(("dtype", "c0"), [(np.float16, 16), (np.int8, 32)])
def test_c1hwncoc0_round_trip(dtype, c0):
    w = _rand((2, 20, 3, 3), dtype)  # depthwise: multiplier 2, 20 channels
    device = to_c1hwncoc0(w, c0)
    hwcn = w.transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(wl.to_origin(device, "C1HWNCoC0", "HWCN", hwcn.shape), hwcn)


def test_wrong_device_shape_is_a_ge_error():
    w = _rand((16, 16, 3, 3), np.float16)
    device = to_fractal_z(w, 16)
    with pytest.raises(GeError, match="FRACTAL_Z"):
        wl.to_origin(device, "FRACTAL_Z", "NCHW", (16, 32, 3, 3))
    with pytest.raises(GeError, match="FRACTAL_NZ"):
        wl.to_origin(to_fractal_nz(w[0, 0], 16), "FRACTAL_NZ", "ND", (40, 40))
    with pytest.raises(GeError, match="not one openge converts"):
        wl.to_origin(device, "FRACTAL_ZZ", "NCHW", (16, 16, 3, 3))
