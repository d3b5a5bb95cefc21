"""bfloat16 and float8 through float32 (openge.ops.lowp): elementwise math, convolution and
matrix products round once from a float32 computation; Cast rounds to nearest even; the
values survive the .om; a task without these types keeps its kernel."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.graph import DataType, Format
from openge.om.writer import serialize
from openge.ops import get_schema
from openge.ops.exact_cube import task_kernel
from openge.ops.lowp import emulated
from openge.runtime import Model
from tests.compiler.models import Builder

BF16 = DataType.DT_BF16
RNG = np.random.default_rng(11)


def _bf16(shape) -> np.ndarray:
    return RNG.normal(size=shape).astype(ml_dtypes.bfloat16)


def _run(b: Builder, feeds) -> list[np.ndarray]:
    model = Model.from_bytes(serialize(compile_graph(b.g), online=True))
    return model.execute(feeds)


@pytest.mark.parametrize(
    ("op", "ref"),
    [
        ("Add", lambda a, c: a + c),
        ("Mul", lambda a, c: a * c),
        ("RealDiv", lambda a, c: a / c),
        ("Maximum", np.maximum),
    ],
)
def test_binary_elementwise_rounds_once_from_float32(op, ref):
    b = Builder(op)
    x, y = b.input((3, 7), BF16), b.input((3, 7), BF16)
    b.done(b.op(op, x, y))
    a, c = _bf16((3, 7)), _bf16((3, 7))
    got = _run(b, [a, c])[0]
    want = ref(a.astype(np.float32), c.astype(np.float32)).astype(ml_dtypes.bfloat16)
    assert got.dtype == ml_dtypes.bfloat16
    assert got.tobytes() == want.tobytes()


def test_unary_activation():
    b = Builder("sig")
    b.done(b.op("Sigmoid", b.input((64,), BF16)))
    a = _bf16((64,))
    got = _run(b, [a])[0].astype(np.float64)
    want = 1 / (1 + np.exp(-a.astype(np.float64)))
    np.testing.assert_allclose(got, want, rtol=2**-8)


def test_conv2d_in_bfloat16():
    b = Builder("conv")
    x = b.input((1, 2, 5, 5), BF16, fmt=Format.FORMAT_NCHW)
    w = _bf16((3, 2, 3, 3))
    b.done(
        b.op(
            "Conv2D",
            x,
            b.const(w, fmt=Format.FORMAT_NCHW),
            strides=[1, 1, 1, 1],
            pads=[1, 1, 1, 1],
            data_format="NCHW",
        )
    )
    a = _bf16((1, 2, 5, 5))
    got = _run(b, [a])[0]
    xp = np.pad(a.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((1, 3, 5, 5))
    for i in range(5):
        for j in range(5):
            want[0, :, i, j] = np.einsum(
                "cij,ocij->o", xp[0, :, i : i + 3, j : j + 3], w.astype(np.float64)
            )
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2**-7, atol=1e-2)


def test_cast_rounds_to_nearest_even_and_float8_saturates_in_onnx_only():
    b = Builder("cast")
    x = b.input((6,))
    b.done(
        b.op("Cast", x, dst_type=BF16),
        b.op("Cast", x, dst_type=DataType.DT_FLOAT8_E4M3FN),
        b.op("Cast", x, dst_type=DataType.DT_FLOAT8_E5M2),
    )
    # 1 + 2^-8 is a bfloat16 tie: to even (1.0); 1 + 3·2^-8 → 1 + 2^-6 (even mantissa)
    v = np.array([1 + 2**-8, 1 + 3 * 2**-8, -2.5, 0.0, 500.0, np.nan], np.float32)
    bf, e4, e5 = _run(b, [v])
    assert bf.astype(np.float32)[:2].tolist() == [1.0, 1 + 2**-6]
    assert e4.dtype == ml_dtypes.float8_e4m3fn and e5.dtype == ml_dtypes.float8_e5m2
    assert np.isnan(e4.astype(np.float32)[4])  # beyond e4m3fn's 448 without saturation: NaN
    assert e5.astype(np.float32)[4] == 512.0
    assert np.isnan(e4.astype(np.float32)[5]) and np.isnan(bf.astype(np.float32)[5])


def test_bfloat16_weights_survive_the_om():
    b = Builder("w")
    x = b.input((2, 4), BF16)
    w = _bf16((4, 3))
    b.done(b.op("MatMulV2", x, b.const(w)))
    a = _bf16((2, 4))
    got = _run(b, [a])[0]
    want = (a.astype(np.float32) @ w.astype(np.float32)).astype(ml_dtypes.bfloat16)
    assert got.tobytes() == want.tobytes()


def test_tasks_without_low_precision_keep_their_kernel():
    kernel = get_schema("Add").kernel
    f32 = np.dtype(np.float32)
    assert task_kernel(kernel, {}, [f32, f32, f32]) is None  # the op's own kernel
    wrapped = task_kernel(kernel, {}, [f32, f32, np.dtype(ml_dtypes.bfloat16)])
    assert wrapped is not None and wrapped.__wrapped__ is kernel
    out = np.zeros(3, ml_dtypes.bfloat16)
    emulated(kernel)([np.ones(3, np.float32), np.ones(3, np.float32)], [out])
    assert out.astype(np.float32).tolist() == [2.0, 2.0, 2.0]
