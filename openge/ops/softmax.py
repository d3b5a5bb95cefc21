"""Op family nn, softmax: SoftmaxV2 and LogSoftmaxV2 (ops layer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from openge.graph import DataType, TensorDesc
from openge.ops.common import (
    FLOAT_TYPES,
    check_dtype,
    desc_like,
    normalize_axes,
)
from openge.ops.nn_common import (
    _acc_dtype,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

# ----- softmax ------------------------------------------------------------------------------


def _infer_softmax(ctx: InferContext) -> Sequence[TensorDesc]:
    dt = check_dtype(ctx, 0, FLOAT_TYPES)
    rank = len(ctx.input(0).shape)
    if not ctx.attrs["axes"]:
        raise ctx.error("attr axes must name at least one axis")
    normalize_axes(ctx, ctx.attrs["axes"], max(rank, 1))
    if ctx.attrs.get("half_to_float") and dt == DataType.DT_FLOAT16:
        return [desc_like(ctx, 0, dtype=DataType.DT_FLOAT)]
    return [desc_like(ctx, 0)]


def _softmax(x: np.ndarray, y: np.ndarray, axes: Sequence[int], log: bool) -> None:
    axes_t = tuple(a % max(x.ndim, 1) for a in axes) if x.ndim else ()
    acc = _acc_dtype(x.dtype)
    xa = x.astype(acc, copy=False)
    m = np.max(xa, axis=axes_t, keepdims=True)
    if not log and y.dtype == acc and y.flags.writeable:
        np.subtract(xa, m, out=y)
        np.exp(y, out=y)
        y /= np.sum(y, axis=axes_t, keepdims=True)
        return
    shifted = xa - m
    if log:
        shifted -= np.log(np.sum(np.exp(shifted), axis=axes_t, keepdims=True))
        _store(y, shifted)
    else:
        np.exp(shifted, out=shifted)
        shifted /= np.sum(shifted, axis=axes_t, keepdims=True)
        _store(y, shifted)


def _softmax_kernel(inputs, outputs, *, axes):
    _softmax(inputs[0], outputs[0], axes, log=False)


def _log_softmax_kernel(inputs, outputs, *, axes):
    _softmax(inputs[0], outputs[0], axes, log=True)


def _compiled_softmax(x, y, axes, log: bool) -> Callable[[], None] | None:
    """The compiled float32 softmax (openge.kernels.softmax) bound to ``x`` and ``y``, or None
    (another dtype, non-contiguous buffers, axes that are not one run of dimensions, or a
    small tensor in a model that does not load numba otherwise)."""
    if (
        x is None
        or x.dtype != np.float32
        or y.dtype != np.float32
        or x.shape != y.shape
        or not x.ndim
        or not x.size
        or not (x.flags.c_contiguous and y.flags.c_contiguous)
        or np.shares_memory(x, y)
    ):
        return None
    try:
        dims = sorted({int(a) % x.ndim for a in axes})
    except (TypeError, ValueError):
        return None
    if not dims or dims != list(range(dims[0], dims[-1] + 1)):
        return None
    from openge.ops import compiled

    # a small model does not import numba for its softmax alone (the rule of every compiled
    # op, so that a small softmax takes the same kernel in every process either way)
    if not compiled.worth_compiling(x.size):
        return None
    module = compiled.load("softmax")
    if module is None:
        return None
    outer = math.prod(x.shape[: dims[0]])
    n = math.prod(x.shape[dims[0] : dims[-1] + 1])
    inner = math.prod(x.shape[dims[-1] + 1 :])
    if inner == 1:
        fn, drive = module.softmax_rows, module.softmax_rows_drive
        args = (x.reshape(outer, n), y.reshape(outer, n), log)
    else:
        fn, drive = module.softmax_columns, module.softmax_columns_drive
        args = (x.reshape(outer, n, inner), y.reshape(outer, n, inner), log)
    if not (compiled.warm(fn, *args, 0, outer) and compiled.warm_drive(drive, *args, outer)):
        return None

    def whole(*call) -> None:
        fn(*call, 0, outer)

    # rows shared by the thread team from TEAM_ELEMENTS (vit_block's attention softmax, 12 ×
    # 197 rows of 197, ran on one thread below the pool's 2¹⁹: 347 µs at two threads)
    big = x.size >= compiled.TEAM_ELEMENTS and outer > 1
    return compiled.launcher(whole, big, *args, driven=(drive, outer))


def _prepare_softmax(inputs, outputs, constant, *, axes, half_to_float=False):
    """SoftmaxV2's ``prepare``: the compiled kernel, or None to keep the NumPy one."""
    del constant, half_to_float
    return _compiled_softmax(inputs[0], outputs[0], axes, log=False)


def _prepare_log_softmax(inputs, outputs, constant, *, axes):
    """LogSoftmaxV2's ``prepare``: the compiled kernel, or None to keep the NumPy one."""
    del constant
    return _compiled_softmax(inputs[0], outputs[0], axes, log=True)


SCHEMAS = [
    OpSchema(
        "SoftmaxV2",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            Attr("axes", AttrType.LIST_INT, [-1]),
            Attr("half_to_float", AttrType.BOOL, False, doc="float16 x gives a float32 y"),
        ),
        infer=_infer_softmax,
        kernel=_softmax_kernel,
        prepare=_prepare_softmax,
        doc="y = exp(x - max) / sum(exp(x - max)) over axes.",
        onnx="Softmax",
    ),
    OpSchema(
        "LogSoftmaxV2",
        inputs=(Input("logits"),),
        outputs=(Output("logsoftmax"),),
        attrs=(Attr("axes", AttrType.LIST_INT, [-1]),),
        infer=_infer_softmax,
        kernel=_log_softmax_kernel,
        prepare=_prepare_log_softmax,
        doc="y = x - max - log(sum(exp(x - max))) over axes.",
        onnx="LogSoftmax",
    ),
]

__all__ = ["SCHEMAS"]
