"""Op family: shape and data movement (Reshape, Squeeze, Transpose, Concat, Split, slicing, gathers,
Tile, Shape, Fill, Range, OneHot …).

Ops layer: depends on ``openge.graph`` and ``openge.errors`` only.

Inputs that decide an output shape (Reshape's ``shape``, Tile's ``multiples``, Slice's ``offsets``
and ``size`` …) must be constants known at compile time; ``infer`` reads them with
``ctx.require_const``. Kernels read the same values from their inputs at run time. Every kernel
writes into its preallocated output (reshape-like ops copy). Index inputs of the gathers are
checked at run time: an index outside ``[-n, n)`` raises a GeError naming the op; negative
indices count from the end (ONNX semantics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import DataType, TensorDesc
from openge.ops.common import (
    ALL_TYPES,
    INDEX_TYPES,
    NUMBER_TYPES,
    as_int_list,
    broadcast_shapes,
    check_dtype,
    normalize_axes,
    normalize_axis,
    same_dtype,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output, Trait

_INT64 = frozenset({DataType.DT_INT64})
_RANGE_TYPES = frozenset(
    {
        DataType.DT_FLOAT16,
        DataType.DT_FLOAT,
        DataType.DT_BF16,
        DataType.DT_DOUBLE,
        DataType.DT_INT32,
        DataType.DT_INT64,
    }
)
_ONE_HOT_INDEX = frozenset({DataType.DT_UINT8, DataType.DT_INT32, DataType.DT_INT64})


# ----- helpers ---------------------------------------------------------------------------------


def _const_ints(ctx: InferContext, index: int, what: str, allowed=INDEX_TYPES) -> list[int]:
    """A constant 0-D or 1-D integer input as a list of ints."""
    check_dtype(ctx, index, allowed)
    value = np.asarray(ctx.require_const(index, what))
    if value.ndim > 1:
        raise ctx.error(f"{what} must be a scalar or a 1-D tensor, got shape {list(value.shape)}")
    return as_int_list(ctx, value, what)


def _const_scalar(ctx: InferContext, index: int, what: str, allowed=INDEX_TYPES) -> int:
    values = _const_ints(ctx, index, what, allowed)
    if len(values) != 1:
        raise ctx.error(f"{what} must hold exactly one value, got {values}")
    return values[0]


def _ints(value: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _desc(
    ctx: InferContext,
    shape: Sequence[int],
    dtype: DataType | None = None,
    keep_layout: bool = False,
) -> TensorDesc:
    """Output desc; ``keep_layout`` keeps input 0's format when the rank is unchanged."""
    x = ctx.input(0)
    dtype = x.dtype if dtype is None else dtype
    if keep_layout and len(shape) == len(x.shape):
        return TensorDesc(dtype, tuple(shape), x.format, x.origin_format)
    return TensorDesc(dtype, tuple(shape))


def _numel(shape: Sequence[int]) -> int:
    """Element count, -1 when a dim is unknown."""
    n = 1
    for d in shape:
        if d < 0:
            return -1
        n *= d
    return n


def _copy_kernel(inputs, outputs):
    """Reshape-like ops: y is x's data in y's shape (a copy into the preallocated output)."""
    np.copyto(outputs[0], np.reshape(inputs[0], outputs[0].shape))


def _check_index_range(op: str, idx: np.ndarray, n: int, what: str) -> np.ndarray:
    """Indices wrapped into ``[0, n)``; GeError naming the op when one is outside ``[-n, n)``."""
    idx = np.asarray(idx).astype(np.int64, copy=False)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise GeError(
                PARAM_INVALID,
                f"{op}: {what} contains {bad}, out of range [{-n}, {n}) — "
                "check the index values fed to this op",
            )
    return np.where(idx < 0, idx + n, idx)


# ----- Reshape family -------------------------------------------------------------------------


def _infer_reshape(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    spec = _const_ints(ctx, 1, "shape")
    rank = len(x.shape)
    axis, num_axes = ctx.attrs["axis"], ctx.attrs["num_axes"]
    start = axis if axis >= 0 else rank + axis + 1
    if not 0 <= start <= rank:
        raise ctx.error(f"attr axis = {axis} is out of range for a rank-{rank} input")
    if num_axes == -1:
        end = rank
    elif 0 <= num_axes <= rank - start:
        end = start + num_axes
    else:
        raise ctx.error(
            f"attr num_axes = {num_axes} does not fit a rank-{rank} input at axis {axis}"
        )
    part: list[int] = []
    infer_at = -1
    for i, d in enumerate(spec):
        if d == 0:
            if start + i >= rank:
                raise ctx.error(
                    f"shape {spec}: 0 at position {i} copies input dim {start + i}, which a "
                    f"rank-{rank} input does not have",
                    SHAPE_INVALID,
                )
            part.append(x.shape[start + i])
        elif d == -1:
            if infer_at >= 0:
                raise ctx.error(f"shape {spec} has more than one -1", SHAPE_INVALID)
            infer_at = i
            part.append(-1)
        elif d < -1:
            raise ctx.error(f"shape {spec} has invalid dim {d}", SHAPE_INVALID)
        else:
            part.append(d)
    total = _numel(x.shape[start:end])
    known = _numel([d for i, d in enumerate(part) if i != infer_at])
    if infer_at >= 0:
        if total >= 0 and known >= 0:
            if known == 0:
                raise ctx.error(
                    f"shape {spec}: cannot infer the -1 dim when the other dims multiply to 0",
                    SHAPE_INVALID,
                )
            if total % known:
                raise ctx.error(
                    f"cannot reshape {list(x.shape)} to {spec}: {total} elements are not a "
                    f"multiple of {known}",
                    SHAPE_INVALID,
                )
            part[infer_at] = total // known
    elif total >= 0 and known >= 0 and total != known:
        raise ctx.error(
            f"cannot reshape {list(x.shape)} ({total} elements) to {spec} ({known} elements)",
            SHAPE_INVALID,
        )
    return [_desc(ctx, list(x.shape[:start]) + part + list(x.shape[end:]))]


def _squeeze_shape(ctx: InferContext, axes: Sequence[int]) -> list[int]:
    x = ctx.input(0)
    rank = len(x.shape)
    if not axes:
        return [d for d in x.shape if d != 1]
    norm = normalize_axes(ctx, axes, rank, "axis")
    for a in norm:
        if x.shape[a] not in (1, -1):
            raise ctx.error(
                f"cannot squeeze axis {a}: its size is {x.shape[a]}, not 1", SHAPE_INVALID
            )
    return [d for i, d in enumerate(x.shape) if i not in norm]


def _infer_squeeze(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [_desc(ctx, _squeeze_shape(ctx, ctx.attrs["axis"]))]


def _infer_squeeze_v3(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    axes = _const_ints(ctx, 1, "axes", _INT64) if ctx.has_input(1) else []
    return [_desc(ctx, _squeeze_shape(ctx, axes))]


def _unsqueeze_shape(ctx: InferContext, axes: Sequence[int]) -> list[int]:
    x = ctx.input(0)
    out_rank = len(x.shape) + len(axes)
    norm = set(normalize_axes(ctx, axes, out_rank))
    dims = iter(x.shape)
    return [1 if i in norm else next(dims) for i in range(out_rank)]


def _infer_unsqueeze(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    key = "axes" if ctx.op_type == "Unsqueeze" else "axis"
    return [_desc(ctx, _unsqueeze_shape(ctx, ctx.attrs[key]))]


def _infer_unsqueeze_v3(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [_desc(ctx, _unsqueeze_shape(ctx, _const_ints(ctx, 1, "axes", _INT64)))]


def _infer_expand_dims(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    axis = _const_scalar(ctx, 1, "axis")
    rank = len(x.shape)
    if not -rank - 1 <= axis <= rank:
        raise ctx.error(f"axis {axis} is out of range [{-rank - 1}, {rank}]", SHAPE_INVALID)
    axis %= rank + 1
    return [_desc(ctx, [*x.shape[:axis], 1, *x.shape[axis:]])]


def _infer_flatten(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    rank = len(x.shape)
    axis = ctx.attrs["axis"]
    if not -rank <= axis <= rank:
        raise ctx.error(f"attr axis = {axis} is out of range [{-rank}, {rank}]", SHAPE_INVALID)
    if axis < 0:
        axis += rank
    return [_desc(ctx, [_numel(x.shape[:axis]), _numel(x.shape[axis:])])]


# ----- Transpose --------------------------------------------------------------------------------


def _check_perm(ctx: InferContext, perm: Sequence[int], rank: int) -> list[int]:
    if len(perm) != rank:
        raise ctx.error(f"perm {list(perm)} must have {rank} entries (the rank of x)")
    return normalize_axes(ctx, perm, rank, "perm")


def _infer_transpose(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    perm = ctx.attrs["perm"] if ctx.op_type == "TransposeD" else _const_ints(ctx, 1, "perm")
    norm = _check_perm(ctx, perm, len(x.shape))
    return [_desc(ctx, [x.shape[p] for p in norm])]


def _transpose(x: np.ndarray, out: np.ndarray, perm: Sequence[int]) -> None:
    rank = x.ndim
    norm = [p % rank for p in perm if -rank <= p < rank] if rank else []
    if len(norm) != len(perm) or sorted(norm) != list(range(rank)):
        raise GeError(PARAM_INVALID, f"Transpose: perm {list(perm)} is not a permutation")
    np.copyto(out, np.transpose(x, norm))


def _transpose_kernel(inputs, outputs):
    _transpose(inputs[0], outputs[0], _ints(inputs[1]))


def _transpose_d_kernel(inputs, outputs, *, perm):
    _transpose(inputs[0], outputs[0], perm)


# ----- Concat / Pack ---------------------------------------------------------------------------


def _check_count(ctx: InferContext, n: int, strict: bool) -> None:
    declared = ctx.attrs["N"]
    if declared != n and (strict or declared != 1):
        raise ctx.error(f"attr N = {declared} but {n} tensors are connected to x; set N = {n}")


def _concat_desc(ctx: InferContext, n: int, axis: int) -> TensorDesc:
    indices = list(range(n))
    for i in indices:
        check_dtype(ctx, i, ALL_TYPES)
    dtype = same_dtype(ctx, indices)
    shapes = [ctx.input(i).shape for i in indices]
    rank = len(shapes[0])
    if rank == 0:
        raise ctx.error("cannot concatenate scalars; give the inputs rank ≥ 1", SHAPE_INVALID)
    if any(len(s) != rank for s in shapes):
        raise ctx.error(
            f"inputs must have the same rank, got shapes {[list(s) for s in shapes]}",
            SHAPE_INVALID,
        )
    axis = normalize_axis(ctx, axis, rank, "concat_dim")
    out = list(shapes[0])
    for d in range(rank):
        dims = [s[d] for s in shapes]
        if d == axis:
            out[d] = -1 if any(v < 0 for v in dims) else sum(dims)
            continue
        known = {v for v in dims if v >= 0}
        if len(known) > 1:
            raise ctx.error(
                f"inputs differ in dim {d} (shapes {[list(s) for s in shapes]}); only the "
                f"concat_dim {axis} may differ",
                SHAPE_INVALID,
            )
        out[d] = known.pop() if known else -1
    return _desc(ctx, out, dtype, keep_layout=True)


def _infer_concat_v2(ctx: InferContext) -> list[TensorDesc]:
    n = ctx.num_inputs - 1
    _check_count(ctx, n, strict=False)
    axis = _const_scalar(ctx, n, "concat_dim")
    return [_concat_desc(ctx, n, axis)]


def _infer_concat_d(ctx: InferContext) -> list[TensorDesc]:
    n = ctx.num_inputs
    _check_count(ctx, n, strict=False)
    return [_concat_desc(ctx, n, ctx.attrs["concat_dim"])]


def _concat(xs: Sequence[np.ndarray], out: np.ndarray, axis: int) -> None:
    rank = out.ndim
    if not -rank <= axis < rank:
        raise GeError(SHAPE_INVALID, f"Concat: concat_dim {axis} is out of range for rank {rank}")
    np.concatenate(list(xs), axis=axis % rank, out=out)


def _concat_v2_kernel(inputs, outputs):
    axis = _ints(inputs[-1])
    _concat(inputs[:-1], outputs[0], axis[0])


def _concat_d_kernel(inputs, outputs, *, concat_dim):
    _concat(inputs, outputs[0], concat_dim)


def _infer_pack(ctx: InferContext) -> list[TensorDesc]:
    n = ctx.num_inputs
    _check_count(ctx, n, strict=True)
    indices = list(range(n))
    for i in indices:
        check_dtype(ctx, i, ALL_TYPES)
    dtype = same_dtype(ctx, indices)
    shapes = {ctx.input(i).shape for i in indices}
    if len(shapes) > 1:
        raise ctx.error(
            f"all inputs must have the same shape, got {sorted(list(s) for s in shapes)}",
            SHAPE_INVALID,
        )
    shape = list(shapes.pop())
    rank = len(shape)
    axis = ctx.attrs["axis"]
    if not -rank - 1 <= axis <= rank:
        raise ctx.error(f"attr axis = {axis} is out of range [{-rank - 1}, {rank}]", SHAPE_INVALID)
    axis %= rank + 1
    return [_desc(ctx, [*shape[:axis], n, *shape[axis:]], dtype)]


def _pack_kernel(inputs, outputs, *, axis):
    np.stack(list(inputs), axis=axis, out=outputs[0])


# ----- Split family ----------------------------------------------------------------------------


def _split_count(attrs: dict[str, Any], _num_inputs: int) -> int:
    n = attrs.get("num_split", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


def _split_descs(
    ctx: InferContext, x_index: int, axis: int, num_split: int, sizes: Sequence[int] | None
) -> list[TensorDesc]:
    x = ctx.input(x_index)
    check_dtype(ctx, x_index, ALL_TYPES)
    rank = len(x.shape)
    if rank == 0:
        raise ctx.error("cannot split a scalar", SHAPE_INVALID)
    axis = normalize_axis(ctx, axis, rank, "split_dim")
    if num_split < 1:
        raise ctx.error(f"attr num_split = {num_split} must be ≥ 1")
    dim = x.shape[axis]
    if sizes is None:
        if dim >= 0 and dim % num_split:
            raise ctx.error(
                f"dim {axis} of x has size {dim}, not divisible by num_split = {num_split}",
                SHAPE_INVALID,
            )
        sizes = [dim // num_split if dim >= 0 else -1] * num_split
    else:
        sizes = list(sizes)
        if len(sizes) != num_split:
            raise ctx.error(
                f"size_splits {sizes} has {len(sizes)} entries but num_split = {num_split}"
            )
        unknown = [i for i, s in enumerate(sizes) if s == -1]
        if len(unknown) > 1 or any(s < -1 for s in sizes):
            raise ctx.error(
                f"size_splits {sizes}: sizes must be ≥ 0, with at most one -1", SHAPE_INVALID
            )
        rest = sum(s for s in sizes if s >= 0)
        if dim >= 0:
            if unknown:
                if rest > dim:
                    raise ctx.error(
                        f"size_splits {sizes} sum to more than dim {axis} of x ({dim})",
                        SHAPE_INVALID,
                    )
                sizes[unknown[0]] = dim - rest
            elif rest != dim:
                raise ctx.error(
                    f"size_splits {sizes} sum to {rest}, but dim {axis} of x has size {dim}",
                    SHAPE_INVALID,
                )
    out = []
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        out.append(TensorDesc(x.dtype, tuple(shape), x.format, x.origin_format))
    return out


def _infer_split_v(ctx: InferContext) -> list[TensorDesc]:
    sizes = _const_ints(ctx, 1, "size_splits")
    axis = _const_scalar(ctx, 2, "split_dim")
    return _split_descs(ctx, 0, axis, ctx.attrs["num_split"], sizes)


def _infer_split_vd(ctx: InferContext) -> list[TensorDesc]:
    a = ctx.attrs
    return _split_descs(ctx, 0, a["split_dim"], a["num_split"], a["size_splits"])


def _infer_split(ctx: InferContext) -> list[TensorDesc]:
    axis = _const_scalar(ctx, 0, "split_dim")
    return _split_descs(ctx, 1, axis, ctx.attrs["num_split"], None)


def _infer_split_d(ctx: InferContext) -> list[TensorDesc]:
    return _split_descs(ctx, 0, ctx.attrs["split_dim"], ctx.attrs["num_split"], None)


def _split(x: np.ndarray, outputs: Sequence[np.ndarray], axis: int) -> None:
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise GeError(SHAPE_INVALID, f"Split: split_dim {axis} is out of range for rank {x.ndim}")
    axis %= x.ndim
    start = 0
    index: list[Any] = [slice(None)] * x.ndim
    for out in outputs:
        size = out.shape[axis]
        index[axis] = slice(start, start + size)
        np.copyto(out, x[tuple(index)])
        start += size


def _split_v_kernel(inputs, outputs):
    _split(inputs[0], outputs, _ints(inputs[2])[0])


def _split_vd_kernel(inputs, outputs, *, split_dim):
    _split(inputs[0], outputs, split_dim)


def _split_kernel(inputs, outputs):
    _split(inputs[1], outputs, _ints(inputs[0])[0])


# ----- StridedSlice / Slice --------------------------------------------------------------------


def _strided_index(
    begin: Sequence[int],
    end: Sequence[int],
    strides: Sequence[int],
    begin_mask: int,
    end_mask: int,
    ellipsis_mask: int,
    new_axis_mask: int,
    shrink_axis_mask: int,
) -> tuple[Any, ...]:
    """TensorFlow's StridedSlice spec as a NumPy index tuple (ValueError when invalid)."""
    if not len(begin) == len(end) == len(strides):
        raise ValueError(
            f"begin, end and strides must have the same length, got {len(begin)}, {len(end)} "
            f"and {len(strides)}"
        )
    index: list[Any] = []
    seen_ellipsis = False
    for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
        bit = 1 << i
        if ellipsis_mask & bit:
            if seen_ellipsis:
                raise ValueError("ellipsis_mask sets more than one ellipsis")
            seen_ellipsis = True
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(None)
        elif shrink_axis_mask & bit:
            if s <= 0:
                raise ValueError(f"strides[{i}] = {s}: a shrunk axis needs a positive stride")
            index.append(int(b))
        else:
            if s == 0:
                raise ValueError(f"strides[{i}] is 0")
            start = None if begin_mask & bit else int(b)
            stop = None if end_mask & bit else int(e)
            index.append(slice(start, stop, int(s)))
    return tuple(index)


_SS_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")


def _slice_probe(shape: Sequence[int], index: tuple[Any, ...]) -> tuple[int, ...]:
    """Shape of ``x[index]`` for an x of ``shape``, without allocating x."""
    probe = np.broadcast_to(np.zeros((), dtype=np.uint8), tuple(shape))
    return probe[index].shape


def _infer_strided_slice(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    if not x.is_static:
        raise ctx.error(f"x must have a static shape, got {list(x.shape)}", SHAPE_INVALID)
    begin = _const_ints(ctx, 1, "begin")
    end = _const_ints(ctx, 2, "end")
    strides = _const_ints(ctx, 3, "strides")
    masks = [ctx.attrs[m] for m in _SS_MASKS]
    for name, m in zip(_SS_MASKS, masks, strict=True):
        if m < 0:
            raise ctx.error(f"attr {name} = {m} must be ≥ 0")
    try:
        index = _strided_index(begin, end, strides, *masks)
        shape = _slice_probe(x.shape, index)
    except (ValueError, IndexError, TypeError) as err:
        raise ctx.error(
            f"invalid slice begin={begin} end={end} strides={strides} for x of shape "
            f"{list(x.shape)}: {err}",
            SHAPE_INVALID,
        ) from None
    return [_desc(ctx, shape, keep_layout=True)]


def _strided_slice_kernel(
    inputs, outputs, *, begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask
):
    x = inputs[0]
    try:
        index = _strided_index(
            _ints(inputs[1]),
            _ints(inputs[2]),
            _ints(inputs[3]),
            begin_mask,
            end_mask,
            ellipsis_mask,
            new_axis_mask,
            shrink_axis_mask,
        )
        np.copyto(outputs[0], x[index])
    except (ValueError, IndexError, TypeError) as err:
        raise GeError(SHAPE_INVALID, f"StridedSlice: invalid slice spec: {err}") from None


def _infer_slice(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    offsets = _const_ints(ctx, 1, "offsets")
    size = _const_ints(ctx, 2, "size")
    rank = len(x.shape)
    if len(offsets) != rank or len(size) != rank:
        raise ctx.error(
            f"offsets {offsets} and size {size} must each have {rank} entries (the rank of x)"
        )
    out = []
    for d, (o, s, n) in enumerate(zip(offsets, size, x.shape, strict=True)):
        if o < 0 or s < -1:
            raise ctx.error(f"offsets[{d}] = {o} and size[{d}] = {s} must be ≥ 0 (size may be -1)")
        if s == -1:
            if n >= 0 and o > n:
                raise ctx.error(f"offsets[{d}] = {o} is past dim {d} (size {n})", SHAPE_INVALID)
            out.append(n - o if n >= 0 else -1)
        else:
            if n >= 0 and o + s > n:
                raise ctx.error(
                    f"slice [{o}, {o + s}) of dim {d} is outside its size {n}", SHAPE_INVALID
                )
            out.append(s)
    return [_desc(ctx, out, keep_layout=True)]


def _slice_kernel(inputs, outputs):
    out = outputs[0]
    offsets = _ints(inputs[1])
    index = tuple(slice(o, o + n) for o, n in zip(offsets, out.shape, strict=False))
    np.copyto(out, inputs[0][index])


# ----- Gather / Scatter ------------------------------------------------------------------------


def _validate_const_indices(
    ctx: InferContext, index: int, n: int, what: str, negative_ok: bool = True
) -> None:
    value = ctx.const_value(index)
    if value is None or n < 0 or np.asarray(value).size == 0:
        return
    value = np.asarray(value)
    lo, hi = int(value.min()), int(value.max())
    low_limit = -n if negative_ok else 0
    if lo < low_limit or hi >= n:
        bad = lo if lo < low_limit else hi
        raise ctx.error(f"{what} contains {bad}, out of range [{low_limit}, {n})", SHAPE_INVALID)


def _infer_gather_v2(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x, ind = ctx.input(0), ctx.input(1)
    rank, irank = len(x.shape), len(ind.shape)
    if rank == 0:
        raise ctx.error("x must have rank ≥ 1", SHAPE_INVALID)
    axis = normalize_axis(ctx, _const_scalar(ctx, 2, "axis"), rank)
    batch_dims = ctx.attrs["batch_dims"]
    bd = batch_dims + irank if batch_dims < 0 else batch_dims
    if not 0 <= bd <= irank or bd > axis:
        raise ctx.error(
            f"attr batch_dims = {batch_dims} must be in [-{irank}, {irank}] (the rank of "
            f"indices) and not above axis {axis}"
        )
    for d in range(bd):
        if x.shape[d] >= 0 and ind.shape[d] >= 0 and x.shape[d] != ind.shape[d]:
            raise ctx.error(
                f"batch dim {d} differs: x {list(x.shape)} vs indices {list(ind.shape)}",
                SHAPE_INVALID,
            )
    _validate_const_indices(ctx, 1, x.shape[axis], "indices")
    shape = [*x.shape[:axis], *ind.shape[bd:], *x.shape[axis + 1 :]]
    return [_desc(ctx, shape)]


def _gather_v2_kernel(inputs, outputs, *, batch_dims):
    x, out = inputs[0], outputs[0]
    axis_v = _ints(inputs[2])
    if len(axis_v) != 1 or x.ndim == 0 or not -x.ndim <= axis_v[0] < x.ndim:
        raise GeError(SHAPE_INVALID, f"GatherV2: axis {axis_v} is not valid for rank {x.ndim}")
    axis = axis_v[0] % x.ndim
    idx = _check_index_range("GatherV2", inputs[1], x.shape[axis], "indices")
    bd = batch_dims + idx.ndim if batch_dims < 0 else batch_dims
    if bd == 0:
        np.copyto(out, np.take(x, idx, axis=axis))
        return
    nb = math.prod(x.shape[:bd])
    if nb == 0:
        return  # an empty batch: nothing to gather
    xr = np.reshape(x, (nb, *x.shape[bd:]))
    ir = np.reshape(idx, (nb, *idx.shape[bd:]))
    res = np.stack([np.take(xr[b], ir[b], axis=axis - bd) for b in range(nb)])
    np.copyto(out, np.reshape(res, out.shape))


def _infer_gather_elements(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x, ind = ctx.input(0), ctx.input(1)
    rank = len(x.shape)
    if rank == 0 or len(ind.shape) != rank:
        raise ctx.error(
            f"x {list(x.shape)} and index {list(ind.shape)} must have the same rank ≥ 1",
            SHAPE_INVALID,
        )
    dim = normalize_axis(ctx, ctx.attrs["dim"], rank, "dim")
    for d in range(rank):
        if d != dim and x.shape[d] >= 0 and ind.shape[d] > x.shape[d]:
            raise ctx.error(
                f"index dim {d} ({ind.shape[d]}) is larger than x's ({x.shape[d]})",
                SHAPE_INVALID,
            )
    _validate_const_indices(ctx, 1, x.shape[dim], "index")
    return [_desc(ctx, ind.shape, keep_layout=True)]


def _gather_elements_kernel(inputs, outputs, *, dim):
    x, index = inputs[0], inputs[1]
    rank = x.ndim
    dim %= rank
    idx = _check_index_range("GatherElements", index, x.shape[dim], "index")
    # index may be smaller than x in the other dims: gather from the matching corner of x.
    corner = tuple(slice(None) if d == dim else slice(0, idx.shape[d]) for d in range(rank))
    np.copyto(outputs[0], np.take_along_axis(x[corner], idx, axis=dim))


def _infer_gather_nd(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x, ind = ctx.input(0), ctx.input(1)
    if len(ind.shape) == 0:
        raise ctx.error("indices must have rank ≥ 1", SHAPE_INVALID)
    q = ind.shape[-1]
    if q < 0:
        raise ctx.error("the last dim of indices must be known", SHAPE_INVALID)
    if q > len(x.shape):
        raise ctx.error(f"indices address {q} dims but x has rank {len(x.shape)}", SHAPE_INVALID)
    value = ctx.const_value(1)
    if value is not None and q and np.asarray(value).size:
        table = np.asarray(value).reshape(-1, q)
        for j in range(q):
            n = x.shape[j]
            lo, hi = int(table[:, j].min()), int(table[:, j].max())
            if n >= 0 and (lo < -n or hi >= n):
                bad = lo if lo < -n else hi
                raise ctx.error(
                    f"indices for dim {j} contain {bad}, out of range [{-n}, {n})", SHAPE_INVALID
                )
    return [_desc(ctx, [*ind.shape[:-1], *x.shape[q:]])]


def _gather_nd_kernel(inputs, outputs):
    # negative_index_support is not read: openge always accepts indices in [-n, n).
    x, out = inputs[0], outputs[0]
    idx = np.asarray(inputs[1])
    q = idx.shape[-1]
    if q == 0:
        np.copyto(out, x)
        return
    cols = [
        _check_index_range("GatherNd", idx[..., j], x.shape[j], f"indices[..., {j}]")
        for j in range(q)
    ]
    np.copyto(out, x[tuple(cols)])


def _infer_scatter_elements(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, NUMBER_TYPES | {DataType.DT_BOOL})
    check_dtype(ctx, 1, INDEX_TYPES)
    same_dtype(ctx, [0, 2])
    data, ind, upd = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = len(data.shape)
    if rank == 0 or len(ind.shape) != rank or ind.shape != upd.shape:
        raise ctx.error(
            f"data {list(data.shape)}, indices {list(ind.shape)} and updates "
            f"{list(upd.shape)}: indices and updates need the same shape and data's rank ≥ 1",
            SHAPE_INVALID,
        )
    axis = normalize_axis(ctx, ctx.attrs["axis"], rank)
    if ctx.attrs["reduction"] != "none" and data.dtype == DataType.DT_BOOL:
        raise ctx.error(f"reduction {ctx.attrs['reduction']!r} does not apply to bool data")
    _validate_const_indices(ctx, 1, data.shape[axis], "indices")
    return [_desc(ctx, data.shape, keep_layout=True)]


def _scatter_elements_kernel(inputs, outputs, *, axis, reduction):
    data, out = inputs[0], outputs[0]
    rank = data.ndim
    axis %= rank
    idx = _check_index_range("ScatterElements", inputs[1], data.shape[axis], "indices")
    updates = np.asarray(inputs[2])
    np.copyto(out, data)
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    where = tuple(grid)
    if reduction == "add":
        np.add.at(out, where, updates)
    elif reduction == "mul":
        np.multiply.at(out, where, updates)
    elif reduction == "max":
        np.maximum.at(out, where, updates)
    elif reduction == "min":
        np.minimum.at(out, where, updates)
    else:
        out[where] = updates


# ----- Tile / BroadcastTo / Expand -------------------------------------------------------------


def _infer_tile(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    reps = _const_ints(ctx, 1, "multiples")
    if len(reps) != len(x.shape) or any(r < 0 for r in reps):
        raise ctx.error(
            f"multiples {reps} must have {len(x.shape)} non-negative entries (the rank of x)"
        )
    shape = [d * r if d >= 0 else -1 for d, r in zip(x.shape, reps, strict=True)]
    return [_desc(ctx, shape, keep_layout=True)]


def _tile_kernel(inputs, outputs):
    np.copyto(outputs[0], np.tile(inputs[0], _ints(inputs[1])))


def _infer_broadcast_to(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    target = _const_ints(ctx, 1, "shape")
    if any(d < 0 for d in target):
        raise ctx.error(f"shape {target} must not have negative dims", SHAPE_INVALID)
    ok = len(target) >= len(x.shape) and all(
        d in (1, t, -1) for d, t in zip(reversed(x.shape), reversed(target), strict=False)
    )
    if not ok:
        raise ctx.error(
            f"x of shape {list(x.shape)} cannot be broadcast to {target}", SHAPE_INVALID
        )
    return [_desc(ctx, target, keep_layout=True)]


def _infer_expand(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    target = _const_ints(ctx, 1, "shape", INDEX_TYPES | {DataType.DT_INT16})
    if any(d < 0 for d in target):
        raise ctx.error(f"shape {target} must not have negative dims", SHAPE_INVALID)
    return [_desc(ctx, broadcast_shapes(ctx, [x.shape, target]), keep_layout=True)]


def _broadcast_kernel(inputs, outputs):
    np.copyto(outputs[0], np.broadcast_to(inputs[0], outputs[0].shape))


# ----- Shape / Size / Rank ---------------------------------------------------------------------

_SHAPE_DTYPES = (int(DataType.DT_INT32), int(DataType.DT_INT64))


def _infer_shape(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [TensorDesc(DataType(ctx.attrs["dtype"]), (len(ctx.input(0).shape),))]


def _shape_kernel(inputs, outputs):
    # Reads only the input's shape, so the compiler can run it on any array of that shape.
    np.copyto(outputs[0], np.asarray(np.shape(inputs[0]), dtype=np.int64), casting="unsafe")


def _infer_size(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [TensorDesc(DataType(ctx.attrs["dtype"]), ())]


def _size_kernel(inputs, outputs):
    np.copyto(outputs[0], np.int64(np.size(inputs[0])), casting="unsafe")


def _infer_rank(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [TensorDesc(DataType.DT_INT32, ())]


def _rank_kernel(inputs, outputs):
    np.copyto(outputs[0], np.ndim(inputs[0]), casting="unsafe")


# ----- Fill / Range / ZerosLike / OnesLike -----------------------------------------------------


def _infer_fill(ctx: InferContext) -> list[TensorDesc]:
    dims = _const_ints(ctx, 0, "dims")
    dtype = check_dtype(ctx, 1, ALL_TYPES)
    if any(d < 0 for d in dims):
        raise ctx.error(f"dims {dims} must be ≥ 0", SHAPE_INVALID)
    if _numel(ctx.input(1).shape) not in (1, -1):
        raise ctx.error(f"value must be a scalar, got shape {list(ctx.input(1).shape)}")
    return [TensorDesc(dtype, tuple(dims))]


def _fill_kernel(inputs, outputs):
    value = np.asarray(inputs[1])
    if value.size != 1:
        raise GeError(PARAM_INVALID, f"Fill: value must be a scalar, got shape {value.shape}")
    np.copyto(outputs[0], value.reshape(()))


def _range_values(ctx: InferContext) -> tuple[Any, Any, Any]:
    out = []
    for i, name in enumerate(("start", "limit", "delta")):
        value = np.asarray(ctx.require_const(i, name))
        if value.size != 1:
            raise ctx.error(f"{name} must be a scalar, got shape {list(value.shape)}")
        out.append(value.reshape(()).item())
    return out[0], out[1], out[2]


def _range_length(start: Any, limit: Any, delta: Any) -> int:
    if isinstance(start, int) and isinstance(limit, int) and isinstance(delta, int):
        return max(0, -((start - limit) // delta))
    return max(0, math.ceil((limit - start) / delta))


def _infer_range(ctx: InferContext) -> list[TensorDesc]:
    for i in range(3):
        check_dtype(ctx, i, _RANGE_TYPES)
    dtype = same_dtype(ctx, [0, 1, 2])
    start, limit, delta = _range_values(ctx)
    if delta == 0:
        raise ctx.error("delta must not be 0")
    if not all(math.isfinite(v) for v in (start, limit, delta)):
        raise ctx.error(f"start {start}, limit {limit} and delta {delta} must be finite")
    return [TensorDesc(dtype, (_range_length(start, limit, delta),))]


def _range_kernel(inputs, outputs):
    out = outputs[0]
    start, delta = (np.asarray(inputs[i]).reshape(()) for i in (0, 2))
    n = out.shape[0]
    if out.dtype.kind in "iu":
        values = int(start) + np.arange(n, dtype=np.int64) * int(delta)
    else:
        values = float(start) + np.arange(n, dtype=np.float64) * float(delta)
    np.copyto(out, values, casting="unsafe")


def _infer_like(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    return [_desc(ctx, ctx.input(0).shape, keep_layout=True)]


def _zeros_like_kernel(inputs, outputs):
    outputs[0].fill(0)


def _ones_like_kernel(inputs, outputs):
    outputs[0].fill(1)


# ----- ReverseV2 / OneHot ----------------------------------------------------------------------


def _infer_reverse(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x = ctx.input(0)
    value = ctx.const_value(1)
    if value is not None:
        axes = as_int_list(ctx, np.asarray(value), "axis")
        normalize_axes(ctx, axes, len(x.shape), "axis")
    return [_desc(ctx, x.shape, keep_layout=True)]


def _reverse_kernel(inputs, outputs):
    x = inputs[0]
    axes = _ints(inputs[1])
    norm = {a % x.ndim for a in axes if -x.ndim <= a < x.ndim}
    if len(norm) != len(axes):
        raise GeError(SHAPE_INVALID, f"ReverseV2: axis {axes} is not valid for rank {x.ndim}")
    np.copyto(outputs[0], np.flip(x, axis=tuple(norm)) if norm else x)


def _infer_one_hot(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, _ONE_HOT_INDEX)
    depth = _const_scalar(ctx, 1, "depth")
    dtype = check_dtype(ctx, 2, ALL_TYPES)
    same_dtype(ctx, [2, 3])
    for i, name in ((2, "on_value"), (3, "off_value")):
        if _numel(ctx.input(i).shape) not in (1, -1):
            raise ctx.error(f"{name} must be a scalar, got shape {list(ctx.input(i).shape)}")
    if depth < 0:
        raise ctx.error(f"depth {depth} must be ≥ 0")
    x = ctx.input(0)
    rank = len(x.shape)
    axis = ctx.attrs["axis"]
    if not -1 <= axis <= rank:
        raise ctx.error(f"attr axis = {axis} must be in [-1, {rank}]", SHAPE_INVALID)
    if axis == -1:
        axis = rank
    return [TensorDesc(dtype, (*x.shape[:axis], depth, *x.shape[axis:]))]


def _one_hot_kernel(inputs, outputs, *, axis):
    x, out = np.asarray(inputs[0]), outputs[0]
    on, off = (np.asarray(inputs[i]).reshape(()) for i in (2, 3))
    axis = x.ndim if axis == -1 else axis
    depth = out.shape[axis]
    # Indices outside [0, depth) — negative ones too — give an all-off_value row (TensorFlow).
    hot = x.astype(np.int64)[..., None] == np.arange(depth, dtype=np.int64)
    np.copyto(out, np.where(np.moveaxis(hot, -1, axis), on, off))


# ----- schemas ---------------------------------------------------------------------------------


def _op(
    op_type: str,
    inputs: Sequence[Input],
    infer: Any,
    kernel: Any,
    doc: str,
    onnx: str,
    attrs: Sequence[Attr] = (),
    outputs: Sequence[Output] = (Output("y"),),
    num_outputs: Any = None,
    traits: frozenset[Trait] = frozenset(),
) -> OpSchema:
    return OpSchema(
        op_type,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        attrs=tuple(attrs),
        infer=infer,
        kernel=kernel,
        doc=doc,
        onnx=onnx,
        traits=traits,
        num_outputs=num_outputs,
    )


_SHAPE_ONLY = frozenset({Trait.SHAPE_ONLY})


_X = Input("x")
_SPLIT_Y = (Output("y", dynamic=True),)
_NUM_SPLIT = Attr("num_split", AttrType.INT, doc="number of outputs")

SCHEMAS = [
    _op(
        "Reshape",
        (_X, Input("shape", doc="constant target shape")),
        _infer_reshape,
        _copy_kernel,
        "y = x with a new shape: in shape, 0 copies the input dim and -1 is inferred; axis and "
        "num_axes select the dims replaced (Caffe).",
        "Reshape (allowzero=0)",
        (
            Attr("axis", AttrType.INT, 0, doc="first dim replaced (negative: from the end + 1)"),
            Attr("num_axes", AttrType.INT, -1, doc="number of dims replaced; -1: all after axis"),
        ),
    ),
    _op(
        "Squeeze",
        (_X,),
        _infer_squeeze,
        _copy_kernel,
        "y = x without the size-1 dims listed in axis (all size-1 dims when axis is empty).",
        "Squeeze",
        (Attr("axis", AttrType.LIST_INT, [], doc="dims to remove"),),
    ),
    _op(
        "SqueezeV2",
        (_X,),
        _infer_squeeze,
        _copy_kernel,
        "Squeeze (deprecated CANN name).",
        "Squeeze",
        (Attr("axis", AttrType.LIST_INT, [], doc="dims to remove"),),
    ),
    _op(
        "SqueezeV3",
        (_X, Input("axes", optional=True, doc="constant int64 dims to remove")),
        _infer_squeeze_v3,
        _copy_kernel,
        "Squeeze with the dims as an optional int64 input.",
        "Squeeze (opset 13)",
    ),
    _op(
        "Unsqueeze",
        (_X,),
        _infer_unsqueeze,
        _copy_kernel,
        "y = x with size-1 dims inserted at axes (positions in y).",
        "Unsqueeze",
        (Attr("axes", AttrType.LIST_INT, [], doc="positions of the new dims in y"),),
    ),
    _op(
        "UnsqueezeV2",
        (_X,),
        _infer_unsqueeze,
        _copy_kernel,
        "Unsqueeze with the attr named axis (deprecated CANN name).",
        "Unsqueeze",
        (Attr("axis", AttrType.LIST_INT, [], doc="positions of the new dims in y"),),
    ),
    _op(
        "UnsqueezeV3",
        (_X, Input("axes", doc="constant int64 positions of the new dims")),
        _infer_unsqueeze_v3,
        _copy_kernel,
        "Unsqueeze with the positions as an int64 input.",
        "Unsqueeze (opset 13)",
    ),
    _op(
        "ExpandDims",
        (_X, Input("axis", doc="constant scalar position")),
        _infer_expand_dims,
        _copy_kernel,
        "y = x with one size-1 dim inserted at axis (in [-rank-1, rank]).",
        "Unsqueeze",
    ),
    _op(
        "Flatten",
        (_X,),
        _infer_flatten,
        _copy_kernel,
        "y = x as a 2-D matrix: dims before axis form the rows, the rest the columns.",
        "Flatten",
        (Attr("axis", AttrType.INT, 1),),
    ),
    _op(
        "Transpose",
        (_X, Input("perm", doc="constant permutation")),
        _infer_transpose,
        _transpose_kernel,
        "y = x with its dims permuted: y.shape[i] = x.shape[perm[i]].",
        "Transpose",
    ),
    _op(
        "TransposeD",
        (_X,),
        _infer_transpose,
        _transpose_d_kernel,
        "Transpose with the permutation as an attr.",
        "Transpose",
        (Attr("perm", AttrType.LIST_INT, doc="the permutation"),),
    ),
    _op(
        "ConcatV2",
        (Input("x", dynamic=True), Input("concat_dim", doc="constant scalar axis")),
        _infer_concat_v2,
        _concat_v2_kernel,
        "y = the x tensors joined along concat_dim.",
        "Concat",
        (Attr("N", AttrType.INT, 1, doc="number of x tensors (the default 1 accepts any)"),),
    ),
    _op(
        "ConcatD",
        (Input("x", dynamic=True),),
        _infer_concat_d,
        _concat_d_kernel,
        "ConcatV2 with the axis as an attr.",
        "Concat",
        (
            Attr("concat_dim", AttrType.INT, doc="axis to join along"),
            Attr("N", AttrType.INT, 1, doc="number of x tensors (the default 1 accepts any)"),
        ),
    ),
    _op(
        "Pack",
        (Input("x", dynamic=True),),
        _infer_pack,
        _pack_kernel,
        "y = the N same-shape x tensors stacked along a new axis.",
        "tf.stack (ONNX: Unsqueeze + Concat)",
        (Attr("axis", AttrType.INT, 0), Attr("N", AttrType.INT, doc="number of x tensors")),
    ),
    _op(
        "SplitV",
        (
            _X,
            Input("size_splits", doc="constant sizes; one may be -1"),
            Input("split_dim", doc="constant scalar axis"),
        ),
        _infer_split_v,
        _split_v_kernel,
        "y = num_split pieces of x along split_dim, of the sizes in size_splits.",
        "Split (with split)",
        (_NUM_SPLIT,),
        _SPLIT_Y,
        _split_count,
    ),
    _op(
        "SplitVD",
        (_X,),
        _infer_split_vd,
        _split_vd_kernel,
        "SplitV with sizes and axis as attrs.",
        "Split (with split)",
        (
            Attr("size_splits", AttrType.LIST_INT),
            Attr("split_dim", AttrType.INT),
            _NUM_SPLIT,
        ),
        _SPLIT_Y,
        _split_count,
    ),
    _op(
        "Split",
        (Input("split_dim", doc="constant scalar axis"), _X),
        _infer_split,
        _split_kernel,
        "y = num_split equal pieces of x along split_dim.",
        "Split (equal parts)",
        (_NUM_SPLIT,),
        _SPLIT_Y,
        _split_count,
    ),
    _op(
        "SplitD",
        (_X,),
        _infer_split_d,
        _split_vd_kernel,
        "Split with the axis as an attr.",
        "Split (equal parts)",
        (Attr("split_dim", AttrType.INT), _NUM_SPLIT),
        _SPLIT_Y,
        _split_count,
    ),
    _op(
        "StridedSlice",
        (_X, Input("begin"), Input("end"), Input("strides")),
        _infer_strided_slice,
        _strided_slice_kernel,
        "y = x[begin:end:strides] with TensorFlow's masks (begin, end, ellipsis, new axis, "
        "shrink axis).",
        "Slice (masks: no ONNX equivalent)",
        tuple(Attr(m, AttrType.INT, 0) for m in _SS_MASKS),
    ),
    _op(
        "Slice",
        (_X, Input("offsets"), Input("size", doc="-1 takes the rest of the dim")),
        _infer_slice,
        _slice_kernel,
        "y = x[offsets : offsets + size] in every dim.",
        "Slice",
    ),
    _op(
        "GatherV2",
        (_X, Input("indices"), Input("axis", doc="constant scalar axis")),
        _infer_gather_v2,
        _gather_v2_kernel,
        "y = x indexed by indices along axis (negative indices count from the end).",
        "Gather",
        (
            Attr("batch_dims", AttrType.INT, 0, doc="leading dims shared by x and indices"),
            Attr("is_preprocessed", AttrType.BOOL, False, doc="device hint; not used"),
            Attr(
                "negative_index_support",
                AttrType.BOOL,
                False,
                doc="openge always accepts indices in [-n, n)",
            ),
        ),
    ),
    _op(
        "GatherElements",
        (_X, Input("index")),
        _infer_gather_elements,
        _gather_elements_kernel,
        "y[i][j]… = x[…index[i][j]… at dim…]: element-wise gather along dim.",
        "GatherElements",
        (Attr("dim", AttrType.INT, 0),),
    ),
    _op(
        "GatherNd",
        (_X, Input("indices")),
        _infer_gather_nd,
        _gather_nd_kernel,
        "y = x at the index tuples in the last dim of indices (slices of the remaining dims).",
        "GatherND (batch_dims=0)",
        (
            Attr(
                "negative_index_support",
                AttrType.BOOL,
                False,
                doc="openge always accepts indices in [-n, n)",
            ),
        ),
    ),
    _op(
        "ScatterElements",
        (Input("data"), Input("indices"), Input("updates")),
        _infer_scatter_elements,
        _scatter_elements_kernel,
        "y = data with updates written (or added / multiplied) at indices along axis.",
        "ScatterElements",
        (
            Attr("axis", AttrType.INT, 0),
            Attr("reduction", AttrType.STR, "none", choices=("none", "add", "mul", "max", "min")),
        ),
    ),
    _op(
        "Tile",
        (_X, Input("multiples", doc="constant repeat count per dim")),
        _infer_tile,
        _tile_kernel,
        "y = x repeated multiples[i] times along dim i.",
        "Tile",
    ),
    _op(
        "BroadcastTo",
        (_X, Input("shape", doc="constant target shape")),
        _infer_broadcast_to,
        _broadcast_kernel,
        "y = x broadcast (NumPy rules) to shape.",
        "Expand (one-directional)",
    ),
    _op(
        "Expand",
        (_X, Input("shape", doc="constant shape broadcast with x's")),
        _infer_expand,
        _broadcast_kernel,
        "y = x broadcast to the broadcast of its shape and shape.",
        "Expand",
    ),
    _op(
        "Shape",
        (_X,),
        _infer_shape,
        _shape_kernel,
        "y = the shape of x as a 1-D int32/int64 tensor.",
        "Shape",
        (
            Attr(
                "dtype",
                AttrType.INT,
                int(DataType.DT_INT32),
                choices=_SHAPE_DTYPES,
                doc="DataType value of y: 3 (int32) or 9 (int64)",
            ),
        ),
        traits=_SHAPE_ONLY,
    ),
    _op(
        "Size",
        (_X,),
        _infer_size,
        _size_kernel,
        "y = the number of elements of x, a scalar.",
        "Size",
        (
            Attr(
                "dtype",
                AttrType.INT,
                int(DataType.DT_INT32),
                choices=_SHAPE_DTYPES,
                doc="DataType value of y: 3 (int32) or 9 (int64)",
            ),
        ),
        traits=_SHAPE_ONLY,
    ),
    _op(
        "Rank",
        (_X,),
        _infer_rank,
        _rank_kernel,
        "y = the rank of x, an int32 scalar.",
        "tf.rank",
        traits=_SHAPE_ONLY,
    ),
    _op(
        "Fill",
        (Input("dims", doc="constant output shape"), Input("value", doc="scalar")),
        _infer_fill,
        _fill_kernel,
        "y = a tensor of shape dims filled with value.",
        "ConstantOfShape",
    ),
    _op(
        "Range",
        (Input("start"), Input("limit"), Input("delta")),
        _infer_range,
        _range_kernel,
        "y = [start, start + delta, …] up to limit (exclusive); constant scalar inputs.",
        "Range",
    ),
    _op(
        "ZerosLike",
        (_X,),
        _infer_like,
        _zeros_like_kernel,
        "y = zeros of x's shape and dtype.",
        "ConstantOfShape(Shape(x))",
    ),
    _op(
        "OnesLike",
        (_X,),
        _infer_like,
        _ones_like_kernel,
        "y = ones of x's shape and dtype.",
        "ConstantOfShape(Shape(x), 1)",
    ),
    _op(
        "ReverseV2",
        (_X, Input("axis", doc="1-D dims to reverse")),
        _infer_reverse,
        _reverse_kernel,
        "y = x reversed along the dims in axis.",
        "Slice with negative steps",
    ),
    _op(
        "OneHot",
        (_X, Input("depth", doc="constant scalar"), Input("on_value"), Input("off_value")),
        _infer_one_hot,
        _one_hot_kernel,
        "y = on_value where the new axis equals x, off_value elsewhere (indices outside "
        "[0, depth) give all off_value).",
        "OneHot (negative indices differ)",
        (Attr("axis", AttrType.INT, -1, doc="position of the new dim; -1: last"),),
    ),
]

__all__ = ["SCHEMAS"]
