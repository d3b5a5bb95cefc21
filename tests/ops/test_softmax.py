"""SoftmaxV2 / LogSoftmaxV2 prepared on the compiled path (openge.kernels.softmax) against the
NumPy kernel and a float64 formula written here; what it does not cover keeps NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.ops.registry import get_schema

pytest.importorskip("numba")
RNG = np.random.default_rng(13)


def reference(x: np.ndarray, axes: tuple[int, ...], log: bool) -> np.ndarray:
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=axes, keepdims=True)
    total = np.exp(shifted).sum(axis=axes, keepdims=True)
    return shifted - np.log(total) if log else np.exp(shifted) / total


@pytest.mark.parametrize("op", ["SoftmaxV2", "LogSoftmaxV2"])
@pytest.mark.parametrize(
    ("shape", "axes", "threads"),
    [
        ((8, 1000), [-1], 1),  # a batch of classifier logits
        ((1, 1000), [-1], 1),  # one classifier's logits (from MIN_ELEMENTS_LOADED = 512 on)
        ((1, 21, 16, 16), [1], 1),  # a channel softmax: columns side by side
        ((4, 8, 16, 16), [2, 3], 1),  # two trailing axes (ONNX opset < 13's flattening)
        ((6, 16, 12, 8), [1, 2], 1),  # a run of middle axes
        ((16, 12, 64, 64), [-1], 2),  # attention scores, shared by two threads
        ((4, 64, 48, 48), [1], 2),
    ],
)
def test_prepared_matches_kernel_and_float64(op, shape, axes, threads):
    schema = get_schema(op)
    log = op == "LogSoftmaxV2"
    x = np.zeros(shape, np.float32)
    y = np.full(shape, np.nan, np.float32)
    attrs = {"axes": axes}
    kernels.load("softmax")  # numba loaded: from MIN_ELEMENTS_LOADED on, the compiled path
    run = schema.prepare([x], [y], [False], **attrs)
    assert run is not None
    before = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        for _ in range(2):  # the closure reads x's current values
            x[...] = RNG.standard_normal(shape) * 8
            run()
            want = np.empty_like(y)
            schema.kernel([x], [want], **attrs)
            tol = 1e-5 if log else 1e-6
            np.testing.assert_allclose(y, want, rtol=2e-5, atol=tol)
            norm = tuple(a % len(shape) for a in axes)
            np.testing.assert_allclose(y, reference(x, norm, log), rtol=2e-5, atol=tol)
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize(
    ("shape", "axes", "dtype"),
    [
        ((2, 3, 4), [0, 2], np.float32),  # not one run of axes
        ((4, 1000), [-1], np.float64),  # float64 stays NumPy
        ((2, 255), [-1], np.float32),  # under MIN_ELEMENTS_LOADED: NumPy in every process
    ],
)
def test_declines_what_it_does_not_cover(shape, axes, dtype):
    schema = get_schema("SoftmaxV2")
    x = np.zeros(shape, dtype)
    y = np.zeros(shape, dtype)
    assert schema.prepare([x], [y], [False], axes=axes) is None
