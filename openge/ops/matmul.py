"""Op family nn, matrix products: MatMulV2 and BatchMatMulV2 (ops layer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import TensorDesc
from openge.kernels import blas
from openge.ops.common import (
    broadcast_shapes,
    check_dtype,
    desc_like,
    same_dtype,
)
from openge.ops.nn_common import (
    _MATMUL_TYPES,
    _acc_dtype,
    _broadcasts_to,
    _known,
    _no_quant,
    _opt,
    _rank,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

# ----- matmul -------------------------------------------------------------------------------


def _check_matmul_bias(ctx: InferContext, index: int, out_shape: tuple[int, ...]) -> None:
    if not ctx.has_input(index):
        return
    same_dtype(ctx, [0, index])
    b = ctx.input(index).shape
    if not _broadcasts_to(b, out_shape):
        raise ctx.error(
            f"input {index} (bias) shape {list(b)} does not broadcast to the output "
            f"{list(out_shape)}",
            SHAPE_INVALID,
        )


def _mm_dims(
    ctx: InferContext, a: tuple[int, ...], b: tuple[int, ...], ta: bool, tb: bool
) -> tuple[int, int]:
    m, k1 = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    k2, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if _known(k1, k2) and k1 != k2:
        raise ctx.error(
            f"inner dims differ: x1 {list(a)}{' (transposed)' if ta else ''} has K={k1}, "
            f"x2 {list(b)}{' (transposed)' if tb else ''} has K={k2}",
            SHAPE_INVALID,
        )
    return m, n


def _infer_matmul(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, _MATMUL_TYPES)
    same_dtype(ctx, [0, 1])
    _no_quant(ctx, 3)
    a = _rank(ctx, 0, 2, "x1")
    b = _rank(ctx, 1, 2, "x2")
    m, n = _mm_dims(ctx, a, b, ctx.attrs["transpose_x1"], ctx.attrs["transpose_x2"])
    _check_matmul_bias(ctx, 2, (m, n))
    return [desc_like(ctx, 0, shape=(m, n))]


def _infer_batch_matmul(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, _MATMUL_TYPES)
    same_dtype(ctx, [0, 1])
    _no_quant(ctx, 3)
    a, b = ctx.input(0).shape, ctx.input(1).shape
    if len(a) < 2 or len(b) < 2:
        raise ctx.error(
            f"x1 {list(a)} and x2 {list(b)} must both be at least 2-D; reshape vectors first",
            SHAPE_INVALID,
        )
    m, n = _mm_dims(ctx, a, b, ctx.attrs["adj_x1"], ctx.attrs["adj_x2"])
    batch = broadcast_shapes(ctx, [a[:-2], b[:-2]])
    out = (*batch, m, n)
    _check_matmul_bias(ctx, 2, out)
    return [desc_like(ctx, 0, shape=out)]


def _matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, y: np.ndarray) -> None:
    acc = _acc_dtype(a.dtype)
    if acc == y.dtype and y.flags.writeable:
        blas.matmul(a, b, y)
        if bias is not None:
            y += bias
        return
    res = np.matmul(a.astype(acc), b.astype(acc))
    if bias is not None:
        res += bias.astype(acc)
    _store(y, res)


def _matmul_kernel(inputs, outputs, *, transpose_x1, transpose_x2):
    a, b = inputs[0], inputs[1]
    _matmul(a.T if transpose_x1 else a, b.T if transpose_x2 else b, _opt(inputs, 2), outputs[0])


def _batch_matmul_kernel(inputs, outputs, *, adj_x1, adj_x2):
    a, b = inputs[0], inputs[1]
    a = np.swapaxes(a, -1, -2) if adj_x1 else a
    b = np.swapaxes(b, -1, -2) if adj_x2 else b
    _matmul(a, b, _opt(inputs, 2), outputs[0])


def _prepare_product(inputs, outputs, constant, a, b):
    """The compiled product with packed constant weights (openge.ops.matmul_compiled), then
    the bias, or None to keep the kernel."""
    from openge.ops.matmul_compiled import prepare_product

    if len(inputs) > 3 and inputs[3] is not None:
        return None
    y = outputs[0]
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None and bias.dtype != y.dtype:
        return None
    product = prepare_product(a, b, bool(constant[1]), y)
    if product is None or bias is None:
        return product

    def product_and_bias() -> None:
        product()
        np.add(y, bias, out=y)

    return product_and_bias


def _prepare_matmul(inputs, outputs, constant, *, transpose_x1, transpose_x2, **_):
    a, b = inputs[0], inputs[1]
    if a is None or b is None or transpose_x1:
        return None
    return _prepare_product(inputs, outputs, constant, a, b.T if transpose_x2 else b)


def _prepare_batch_matmul(inputs, outputs, constant, *, adj_x1, adj_x2, **_):
    a, b = inputs[0], inputs[1]
    if a is None or b is None or adj_x1:
        return None
    return _prepare_product(inputs, outputs, constant, a, np.swapaxes(b, -1, -2) if adj_x2 else b)


SCHEMAS = [
    OpSchema(
        "MatMulV2",
        inputs=(
            Input("x1"),
            Input("x2"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("transpose_x1", AttrType.BOOL, False),
            Attr("transpose_x2", AttrType.BOOL, False),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
        ),
        infer=_infer_matmul,
        kernel=_matmul_kernel,
        prepare=_prepare_matmul,
        doc="2-D y = op(x1) @ op(x2) + bias (op transposes when asked); float16 accumulates "
        "in float32, int32 wraps.",
        onnx="MatMul / Gemm",
    ),
    OpSchema(
        "BatchMatMulV2",
        inputs=(
            Input("x1"),
            Input("x2"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("adj_x1", AttrType.BOOL, False),
            Attr("adj_x2", AttrType.BOOL, False),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
        ),
        infer=_infer_batch_matmul,
        kernel=_batch_matmul_kernel,
        prepare=_prepare_batch_matmul,
        doc="Batched y = op(x1) @ op(x2) + bias over the last two axes, batch dims "
        "broadcast NumPy-style (ranks may differ, each ≥ 2).",
        onnx="MatMul",
    ),
]

__all__ = ["SCHEMAS"]
