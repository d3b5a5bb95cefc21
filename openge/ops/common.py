"""Shared inference helpers for op families: dtype groups, broadcasting, axis handling."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, TensorDesc
from openge.ops.schema import InferContext

FLOAT_TYPES = frozenset(
    {DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_DOUBLE, DataType.DT_BF16}
)
#: float8 types: storage, Cast and data movement only (no arithmetic op accepts them).
FLOAT8_TYPES = frozenset({DataType.DT_FLOAT8_E4M3FN, DataType.DT_FLOAT8_E5M2})
SIGNED_INT_TYPES = frozenset(
    {DataType.DT_INT8, DataType.DT_INT16, DataType.DT_INT32, DataType.DT_INT64}
)
UNSIGNED_INT_TYPES = frozenset(
    {DataType.DT_UINT8, DataType.DT_UINT16, DataType.DT_UINT32, DataType.DT_UINT64}
)
INT_TYPES = SIGNED_INT_TYPES | UNSIGNED_INT_TYPES
INDEX_TYPES = frozenset({DataType.DT_INT32, DataType.DT_INT64})
COMPLEX_TYPES = frozenset({DataType.DT_COMPLEX64, DataType.DT_COMPLEX128})
REAL_NUMBER_TYPES = FLOAT_TYPES | INT_TYPES
NUMBER_TYPES = REAL_NUMBER_TYPES | COMPLEX_TYPES
ALL_TYPES = NUMBER_TYPES | FLOAT8_TYPES | {DataType.DT_BOOL}


def type_names(types: Iterable[DataType]) -> str:
    """Sorted, comma-separated names of ``types`` for error messages."""
    return ", ".join(sorted(t.name for t in types))


def check_dtype(ctx: InferContext, index: int, allowed: Iterable[DataType]) -> DataType:
    """The dtype of input ``index``, which must be in ``allowed``."""
    allowed = frozenset(allowed)
    dtype = ctx.input(index).dtype
    if dtype not in allowed:
        raise ctx.error(
            f"input {index} has dtype {dtype.name}; this op accepts {type_names(allowed)}",
            DATATYPE_INVALID,
        )
    return dtype


def same_dtype(ctx: InferContext, indices: Sequence[int]) -> DataType:
    """The common dtype of the inputs ``indices``; error when they differ."""
    present = [(i, ctx.input(i).dtype) for i in indices if ctx.has_input(i)]
    dtypes = [d for _, d in present]
    if len(set(dtypes)) > 1:
        listed = ", ".join(f"input {i}: {d.name}" for i, d in present)
        raise ctx.error(
            f"inputs must have the same dtype ({listed}); insert a Cast", DATATYPE_INVALID
        )
    return dtypes[0]


def broadcast_shapes(ctx: InferContext, shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """NumPy broadcasting of ``shapes`` (unknown dims, -1, stay unknown); error when they clash."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = {d for d in dims if d >= 0 and d != 1}
        if len(known) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise ctx.error(f"shapes {shown} cannot be broadcast together", SHAPE_INVALID)
        if known:
            out.append(known.pop())
        elif any(d < 0 for d in dims):
            out.append(-1)
        else:
            out.append(1)
    return tuple(out)


def normalize_axis(ctx: InferContext, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in ``[-rank, rank)`` turned non-negative; error otherwise."""
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"{what} {axis} is out of range for a rank-{rank} input", SHAPE_INVALID)
    return axis % rank if rank else 0


def normalize_axes(
    ctx: InferContext, axes: Iterable[int], rank: int, what: str = "axes"
) -> list[int]:
    """Each axis normalized; error on duplicates."""
    out = [normalize_axis(ctx, int(a), rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {list(axes)} repeats an axis", SHAPE_INVALID)
    return out


def desc_like(ctx: InferContext, index: int, **changes: object) -> TensorDesc:
    """A copy of input ``index``'s desc with fields changed (shape, dtype …)."""
    from dataclasses import replace

    changes.setdefault("origin_shape", None)
    return replace(ctx.input(index), name="", **changes)  # type: ignore[arg-type]


def as_int_list(ctx: InferContext, value: np.ndarray, what: str) -> list[int]:
    """A constant int tensor (scalar or 1-D) as a list of ints; error for other dtypes."""
    if value.dtype.kind not in "iu":
        raise ctx.error(f"{what} must be an integer tensor, got {value.dtype}", DATATYPE_INVALID)
    return [int(v) for v in np.asarray(value).reshape(-1)]
