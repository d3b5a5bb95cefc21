"""openge.ops.exact_cube: a marked cube op's result is its float16 / bfloat16 products summed
exactly, rounded once to float32 and then to the output dtype — checked against sums written
here in float64 and against cases where a float32 accumulation gets another answer."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from openge.graph import DataType
from openge.ops import get_schema
from openge.ops.exact_cube import EXACT_ACCUMULATION_ATTR, exact_accumulation, task_kernel
from openge.ops.fused import encode_program

F16, F32, F64 = np.float16, np.float32, np.float64
BF16 = ml_dtypes.bfloat16


def _exact(acc64: np.ndarray, dtype) -> np.ndarray:
    """The spec: float64 accumulation → float32 → the output dtype."""
    return acc64.astype(F32).astype(dtype)


def test_matmul_sums_exactly_where_a_float32_accumulator_loses_the_small_terms():
    # 2^25 + 1 + 1 + … + 1 − 2^25: in a float32 running sum each +1 is lost (the ulp at 2^25
    # is 4), giving 0; the exact sum is the number of ones.
    k = 64
    a = np.ones((1, k), F16)
    b = np.ones((k, 1), F16)
    a[0, 0], b[0, 0] = 2048.0, 16384.0  # 2^25
    a[0, -1], b[-1, 0] = -2048.0, 16384.0  # −2^25
    y = np.empty((1, 1), F16)
    kernel = exact_accumulation(get_schema("MatMulV2").kernel)
    kernel([a, b, None], [y], transpose_x1=False, transpose_x2=False)
    assert float(y[0, 0]) == k - 2
    naive = np.float32(0)
    for i in range(k):
        naive = np.float32(naive + np.float32(a[0, i]) * np.float32(b[i, 0]))
    assert naive == 0  # what the left-to-right float32 order gives


def test_matmul_float16_random_matches_the_float64_sum():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 300)).astype(F16)
    b = rng.normal(size=(300, 5)).astype(F16)
    bias = rng.normal(size=5).astype(F16)
    y = np.empty((7, 5), F16)
    exact_accumulation(get_schema("MatMulV2").kernel)(
        [a, b, bias], [y], transpose_x1=False, transpose_x2=False
    )
    want = _exact(a.astype(F64) @ b.astype(F64) + bias.astype(F64), F16)
    np.testing.assert_array_equal(y, want)


def test_batch_matmul_bfloat16_matches_the_float64_sum():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 4, 50)).astype(BF16)
    b = rng.normal(size=(3, 50, 6)).astype(BF16)
    y = np.empty((3, 4, 6), BF16)
    exact_accumulation(get_schema("BatchMatMulV2").kernel)([a, b], [y], adj_x1=False, adj_x2=False)
    want = _exact(np.matmul(a.astype(F64), b.astype(F64)), BF16)
    np.testing.assert_array_equal(y.astype(F32), want.astype(F32))


def _conv_f64(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """NCHW stride-1 convolution by explicit window sums, in float64."""
    xp = np.pad(x.astype(F64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = xp.shape
    co, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = np.zeros((n, co, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + oh, j : j + ow], w[:, :, i, j])
    return out


def test_fused_conv_rounds_the_convolution_then_runs_its_epilogue_in_float16():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 8, 9, 9)).astype(F16)
    w = (rng.normal(size=(6, 8, 3, 3)) * 0.3).astype(F16)
    bias = rng.normal(size=6).astype(F16)
    residual = rng.normal(size=(1, 6, 9, 9)).astype(F16)
    shape = [1, 6, 9, 9]
    program = encode_program(
        [
            {
                "op": "Add",
                "attrs": {},
                "args": [0, 1],
                "dtype": DataType.DT_FLOAT16,
                "shape": shape,
            },
            {"op": "Relu", "attrs": {}, "args": [-1], "dtype": DataType.DT_FLOAT16, "shape": shape},
        ]
    )
    y = np.empty(shape, F16)
    exact_accumulation(get_schema("FusedConv2D").kernel)(
        [x, w, bias, residual],
        [y],
        strides=[1, 1, 1, 1],
        pads=[1, 1, 1, 1],
        dilations=[1, 1, 1, 1],
        groups=1,
        data_format="NCHW",
        epilogue=program,
    )
    conv = _exact(_conv_f64(x, w.astype(F64), 1) + bias.astype(F64).reshape(1, -1, 1, 1), F16)
    added = (conv.astype(F32) + residual.astype(F32)).astype(F16)  # Add: float16 result
    np.testing.assert_array_equal(y, np.maximum(added, F16(0)))


def test_task_kernel_choice():
    kernel = get_schema("MatMulV2").kernel
    f32, bf16 = np.dtype(F32), np.dtype(BF16)
    assert task_kernel(kernel, {}, [f32, f32, f32]) is None  # the op's own (may be prepared)
    assert task_kernel(kernel, {}, [bf16, bf16, bf16]).__wrapped__ is kernel  # through float32
    exact = task_kernel(kernel, {EXACT_ACCUMULATION_ATTR: True}, [bf16, bf16, bf16])
    a = np.full((1, 3), 1.5, BF16)
    y = np.empty((1, 1), BF16)
    exact([a, np.ones((3, 1), BF16)], [y], transpose_x1=False, transpose_x2=False)
    assert float(y[0, 0]) == 4.5


def test_conv_transpose_float16_matches_the_float64_scatter_sum():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 5, 4, 4)).astype(F16)
    w = (rng.normal(size=(5, 3, 3, 3)) * 0.5).astype(F16)  # (C_in, C_out, kh, kw)
    y = np.empty((1, 3, 6, 6), F16)
    exact_accumulation(get_schema("Conv2DTranspose").kernel)(
        [np.array([1, 3, 6, 6], np.int32), x, w],
        [y],
        strides=[1, 1, 1, 1],
        pads=[0, 0, 0, 0],
        dilations=[1, 1, 1, 1],
        groups=1,
        data_format="NCHW",
    )
    acc = np.zeros((1, 3, 6, 6))
    for p in range(3):
        for q in range(3):
            acc[:, :, p : p + 4, q : q + 4] += np.einsum(
                "nchw,oc->nohw", x.astype(F64), w[:, :, p, q].T.astype(F64)
            )
    np.testing.assert_array_equal(y, _exact(acc, F16))
