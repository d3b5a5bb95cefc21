"""Op family misc: catalog ops ONNX needs that no other family covers (Cumprod, Bitcast).

Ops layer: depends on ``openge.graph`` and ``openge.errors`` only; interfaces follow CANN's
REG_OP prototypes (``Cumprod(x, axis)`` with exclusive/reverse, ``Bitcast(x)`` with ``type``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID, GeError
from openge.graph import DataType, TensorDesc
from openge.ops.common import (
    ALL_TYPES,
    INDEX_TYPES,
    NUMBER_TYPES,
    as_int_list,
    check_dtype,
    desc_like,
    normalize_axis,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

# ----- Cumprod ------------------------------------------------------------------------------


def _infer_cumprod(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, NUMBER_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x = ctx.input(0)
    axis = as_int_list(ctx, ctx.require_const(1, "axis"), "axis")
    if len(axis) != 1:
        raise ctx.error(f"axis must hold one value, got {axis}", SHAPE_INVALID)
    normalize_axis(ctx, axis[0], max(len(x.shape), 1))
    return [desc_like(ctx, 0)]


def _cumprod_kernel(inputs, outputs, *, exclusive, reverse):
    x = inputs[0]
    y = outputs[0]
    axis = int(np.asarray(inputs[1]).reshape(-1)[0])
    if x.ndim == 0:
        np.copyto(y, 1 if exclusive else x)
        return
    axis %= x.ndim
    src = np.flip(x, axis) if reverse else x
    acc = np.float64 if src.dtype == np.float16 else src.dtype
    res = np.cumprod(src, axis=axis, dtype=acc)
    if exclusive:
        res = np.roll(res, 1, axis=axis)
        first = [slice(None)] * x.ndim
        first[axis] = slice(0, 1)
        res[tuple(first)] = 1
    if reverse:
        res = np.flip(res, axis)
    np.copyto(y, res, casting="unsafe")


# ----- Bitcast ------------------------------------------------------------------------------

_BITCAST_TYPES = frozenset(ALL_TYPES)


def _infer_bitcast(ctx: InferContext) -> Sequence[TensorDesc]:
    src = check_dtype(ctx, 0, _BITCAST_TYPES)
    dst = ctx.attrs["type"]
    if dst not in _BITCAST_TYPES:
        raise ctx.error(f"attr type {dst.name} cannot be bitcast to", DATATYPE_INVALID)
    shape = list(ctx.input(0).shape)
    a, b = src.itemsize, dst.itemsize
    if a == b:
        out = shape
    elif a > b:
        out = [*shape, a // b]
    else:
        if not shape or shape[-1] != b // a:
            raise ctx.error(
                f"bitcasting {src.short_name} to {dst.short_name} needs a last dim of "
                f"{b // a}, got shape {shape}",
                SHAPE_INVALID,
            )
        out = shape[:-1]
    return [TensorDesc(dst, tuple(out), ctx.input(0).format)]


def _bitcast_kernel(inputs, outputs, *, type):
    x = np.ascontiguousarray(inputs[0])
    y = outputs[0]
    try:
        view = x.view(y.dtype).reshape(y.shape)
    except ValueError as err:  # shapes were checked at inference
        raise GeError(SHAPE_INVALID, f"Bitcast: {err}") from None
    np.copyto(y, view)


SCHEMAS = [
    OpSchema(
        "Cumprod",
        inputs=(Input("x"), Input("axis")),
        outputs=(Output("y"),),
        attrs=(
            Attr("exclusive", AttrType.BOOL, False, doc="start from 1, excluding x[i] itself"),
            Attr("reverse", AttrType.BOOL, False, doc="accumulate from the end"),
        ),
        infer=_infer_cumprod,
        kernel=_cumprod_kernel,
        doc="y = cumulative product of x along axis (a constant scalar); integer products wrap.",
        onnx="CumProd",
    ),
    OpSchema(
        "Bitcast",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(Attr("type", AttrType.TYPE, doc="the element type to reinterpret x as"),),
        infer=_infer_bitcast,
        kernel=_bitcast_kernel,
        doc="y = the bytes of x reinterpreted as type (little endian); a wider type consumes "
        "the last dim, a narrower one adds it (TensorFlow's rule).",
        onnx="BitCast",
    ),
]

__all__ = ["SCHEMAS", "DataType"]
