"""ONNX shape and data-movement ops → catalog ops (Reshape, Transpose, ConcatV2, SplitV, …).

Shapes are static at parse time, so every shape computation ONNX does at run time (Reshape's 0
and -1, Flatten's 2-D view, Slice clamping, Split sizes …) is resolved here and the catalog op
gets explicit values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext, onnx_dtype
from openge.parser.tensors import sparse_to_array

I64 = DataType.DT_INT64


def norm_axis(ctx: ParseContext, axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in ``[-rank, rank)`` made non-negative; GeError otherwise."""
    if not -rank <= axis < max(rank, 1) or (rank == 0 and axis not in (0, -1)):
        raise ctx.error(f"{what} {axis} is out of range for rank {rank}", SHAPE_INVALID)
    return axis % rank if rank else 0


def norm_axes(ctx: ParseContext, axes: list[int], rank: int, what: str = "axes") -> list[int]:
    """Each axis normalized; GeError on repeats."""
    out = [norm_axis(ctx, a, rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise ctx.error(f"{what} {axes} repeat an axis", SHAPE_INVALID)
    return out


def axes_arg(
    node: OnnxNode, ctx: ParseContext, input_since: int, index: int = 1
) -> list[int] | None:
    """The ``axes`` of a node: an attribute before opset ``input_since``, then input ``index``."""
    if node.opset < input_since:
        axes = node.attr("axes")
        return None if axes is None else list(axes)
    port = node.opt(index)
    if port is None:
        return None
    return ctx.int_list(port, "axes input")


# ----- constants and shapes -------------------------------------------------------------------


@onnx_op(
    "Constant",
    attrs=(
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "value_string",
        "value_strings",
        "sparse_value",
    ),
    inputs=0,
)
def constant(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Constant → Const (value, value_float(s), value_int(s), sparse_value)."""
    from openge.parser.onnx_parser import _Sparse

    attrs = node.attrs
    if "value" in attrs:
        value = np.asarray(attrs["value"])
    elif "value_float" in attrs:
        value = np.array(attrs["value_float"], dtype=np.float32)
    elif "value_floats" in attrs:
        value = np.array(attrs["value_floats"], dtype=np.float32)
    elif "value_int" in attrs:
        value = np.array(attrs["value_int"], dtype=np.int64)
    elif "value_ints" in attrs:
        value = np.array(attrs["value_ints"], dtype=np.int64)
    elif "sparse_value" in attrs and isinstance(attrs["sparse_value"], _Sparse):
        value = sparse_to_array(
            attrs["sparse_value"].proto,
            ctx.scope.base_dir if ctx.scope is not None else None,
            f"{node.where}: attribute sparse_value",
            ctx.budget.charge,
        )
    elif "value_string" in attrs or "value_strings" in attrs:
        raise ctx.unsupported("string constants (openge has no string tensors)")
    else:
        raise ctx.error("Constant has no value attribute")
    return [ctx.const(value, name=ctx.graph.unique_name(node.name), from_file=True)]


@onnx_op("Identity", attrs=(), inputs=1)
def identity(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Identity → Identity."""
    return [ctx.emit1("Identity", [node.input(0)])]


@onnx_op("Shape", attrs=("start", "end"), inputs=1)
def shape(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Shape → Const (shapes are static); opset 15 start/end slice the shape."""
    dims = list(ctx.shape(node.input(0)))
    rank = len(dims)
    start = node.attr("start", 0)
    end = node.attr("end", rank)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return [
        ctx.const(np.array(dims[start:end], dtype=np.int64), name=ctx.graph.unique_name(node.name))
    ]


@onnx_op("Size", attrs=(), inputs=1)
def size(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Size → Const (int64 scalar)."""
    n = int(np.prod(ctx.shape(node.input(0)), dtype=np.int64))
    return [ctx.const(np.array(n, dtype=np.int64), name=ctx.graph.unique_name(node.name))]


# ----- reshaping ------------------------------------------------------------------------------


@onnx_op(
    "Reshape",
    needs=("Reshape",),
    shape_inputs=lambda v: (1,) if v >= 5 else (),
    attrs=("shape", "allowzero"),
    inputs=2,
)
def reshape(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Reshape → Reshape with the shape resolved (0 copies a dim unless allowzero, -1 inferred)."""
    x = node.input(0)
    in_shape = ctx.shape(x)
    if node.opset < 5:
        target = list(node.attr("shape", []))
    else:
        target = ctx.int_list(node.input(1), "shape input")
    allowzero = node.attr("allowzero", 0)
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ctx.error(
                    f"shape {target}: 0 at {i} copies a dim the input lacks", SHAPE_INVALID
                )
            out.append(in_shape[i])
        else:
            out.append(d)
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ctx.error(
            f"shape {target} is invalid (one -1 at most, no other negative)", SHAPE_INVALID
        )
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ctx.error(f"cannot reshape {list(in_shape)} to {target}", SHAPE_INVALID)
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise ctx.error(
            f"cannot reshape {list(in_shape)} ({total} elements) to {out}", SHAPE_INVALID
        )
    if 0 in out and list(in_shape) != out:
        # Nothing to move, and the catalog Reshape reads a 0 as "copy the input dim".
        value = ctx.const(np.zeros((), ctx.dtype(x).np_dtype))
        return [ctx.emit1("Fill", [ctx.const(np.array(out, dtype=np.int64)), value])]
    return [_reshape_node(ctx, x, out)]


def _reshape_node(ctx: ParseContext, x: Port, shape: list[int]) -> Port:
    """Always a node (ONNX outputs need their own value), even when the shape is unchanged."""
    return ctx.emit1("Reshape", [x, ctx.const(np.array(shape, dtype=np.int64))])


@onnx_op("Flatten", needs=("Reshape",), attrs=("axis",), inputs=1)
def flatten(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Flatten → Reshape to (prod(dims[:axis]), prod(dims[axis:]))."""
    x = node.input(0)
    dims = ctx.shape(x)
    rank = len(dims)
    axis = node.attr("axis", 1)
    if not -rank <= axis <= rank:
        raise ctx.error(f"axis {axis} is out of range for rank {rank}", SHAPE_INVALID)
    axis = axis + rank if axis < 0 else axis
    rows = int(np.prod(dims[:axis], dtype=np.int64))
    cols = int(np.prod(dims[axis:], dtype=np.int64))
    return [_reshape_node(ctx, x, [rows, cols])]


@onnx_op(
    "Squeeze",
    needs=("Reshape",),
    shape_inputs=lambda v: (1,) if v >= 13 else (),
    attrs=("axes",),
    inputs=2,
)
def squeeze(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Squeeze → Reshape (axes attr before opset 13, input after; none: every size-1 dim)."""
    x = node.input(0)
    dims = list(ctx.shape(x))
    axes = axes_arg(node, ctx, 13)
    if axes is None:
        keep = [d for d in dims if d != 1]
    else:
        axes = norm_axes(ctx, axes, len(dims))
        for a in axes:
            if dims[a] != 1:
                raise ctx.error(f"cannot squeeze axis {a} of size {dims[a]}", SHAPE_INVALID)
        keep = [d for i, d in enumerate(dims) if i not in axes]
    return [_reshape_node(ctx, x, keep)]


@onnx_op(
    "Unsqueeze",
    needs=("Reshape",),
    shape_inputs=lambda v: (1,) if v >= 13 else (),
    attrs=("axes",),
    inputs=2,
)
def unsqueeze(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Unsqueeze → Reshape (axes are positions in the output)."""
    x = node.input(0)
    dims = list(ctx.shape(x))
    axes = axes_arg(node, ctx, 13)
    if not axes:
        raise ctx.error("axes are required")
    rank = len(dims) + len(axes)
    axes = sorted(norm_axes(ctx, axes, rank))
    out = list(dims)
    for a in axes:
        out.insert(a, 1)
    return [_reshape_node(ctx, x, out)]


@onnx_op("Transpose", needs=("Transpose",), attrs=("perm",), inputs=1)
def transpose(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Transpose → Transpose (default perm reverses the dims)."""
    x = node.input(0)
    rank = ctx.rank(x)
    perm = node.attr("perm")
    perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(norm_axis(ctx, p, rank, "perm") for p in perm) != list(range(rank)):
        raise ctx.error(f"perm {perm} is not a permutation of {rank} axes", SHAPE_INVALID)
    perm = [p % rank for p in perm]
    return [ctx.emit1("Transpose", [x, ctx.const(np.array(perm, dtype=np.int64))])]


@onnx_op("Concat", needs=("ConcatV2",), attrs=("axis",), inputs=None)
def concat(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Concat → ConcatV2 (axis as a const input)."""
    xs = [p for p in node.inputs if p is not None]
    if not xs:
        raise ctx.error("Concat needs at least one input")
    rank = ctx.rank(xs[0])
    axis = node.attr("axis", 1 if node.opset < 4 else None)
    if axis is None:
        raise ctx.error("attribute axis is required")
    axis = norm_axis(ctx, axis, rank)
    return [ctx.emit1("ConcatV2", [*xs, ctx.const(np.array(axis, dtype=np.int32))], {"N": len(xs)})]


@onnx_op(
    "Split",
    needs=("SplitV",),
    shape_inputs=lambda v: (1,) if v >= 13 else (),
    attrs=("axis", "split", "num_outputs"),
    inputs=2,
)
def split(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Split → SplitV with explicit sizes (split attr/input, num_outputs, or equal parts)."""
    x = node.input(0)
    dims = ctx.shape(x)
    axis = norm_axis(ctx, node.attr("axis", 0), len(dims))
    n = node.num_outputs
    if node.opset >= 13:
        sizes = ctx.int_list(node.input(1), "split input") if node.has_input(1) else None
    else:
        sizes = node.attr("split")
    dim = dims[axis]
    if sizes is None:
        if node.opset >= 18 and node.attr("num_outputs") is not None:
            k = node.attr("num_outputs")
            if k != n:
                raise ctx.error(f"num_outputs {k} != {n} outputs")
            chunk = -(-dim // k)
            sizes = [chunk] * (k - 1) + [dim - chunk * (k - 1)]
            if sizes[-1] < 0:
                raise ctx.error(f"cannot split {dim} into {k} parts", SHAPE_INVALID)
        else:
            if n == 0 or dim % n:
                raise ctx.error(f"dim {dim} does not split into {n} equal parts", SHAPE_INVALID)
            sizes = [dim // n] * n
    sizes = [int(s) for s in sizes]
    if len(sizes) != n or sum(sizes) != dim or any(s < 0 for s in sizes):
        raise ctx.error(
            f"split sizes {sizes} do not split dim {dim} into {n} outputs", SHAPE_INVALID
        )
    if n == 1:
        return [ctx.emit1("Identity", [x])]
    return ctx.emit(
        "SplitV",
        [x, ctx.const(np.array(sizes, dtype=np.int64)), ctx.const(np.array(axis, dtype=np.int32))],
        {"num_split": n},
        num_outputs=n,
    )


# ----- slicing and indexing -------------------------------------------------------------------


def slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int, bool]:
    """ONNX Slice clamping: (begin, end, end_to_start) where the last flag means "through 0"."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        return start, end, False
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return start, end, end < 0


@onnx_op(
    "Slice",
    needs=("StridedSlice",),
    shape_inputs=lambda v: (1, 2, 3, 4) if v >= 10 else (),
    attrs=("starts", "ends", "axes"),
    inputs=5,
)
def slice_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Slice → StridedSlice over every axis with the ONNX clamping resolved."""
    x = node.input(0)
    dims = ctx.shape(x)
    rank = len(dims)
    if node.opset < 10:
        starts = list(node.attr("starts", []))
        ends = list(node.attr("ends", []))
        axes = node.attr("axes")
        steps = None
    else:
        starts = ctx.int_list(node.input(1), "starts")
        ends = ctx.int_list(node.input(2), "ends")
        axes = ctx.int_list(node.input(3), "axes") if node.has_input(3) else None
        steps = ctx.int_list(node.input(4), "steps") if node.has_input(4) else None
    if axes is None:
        axes = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error("starts, ends, axes and steps must have the same length", SHAPE_INVALID)
    axes = norm_axes(ctx, list(axes), rank)
    begin = [0] * rank
    end = list(dims)
    strides = [1] * rank
    end_mask = 0
    big = np.iinfo(np.int64).max
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise ctx.error("steps must not be 0", SHAPE_INVALID)
        s = min(max(s, -big), big)
        e = min(max(e, -big), big)
        b, en, to_start = slice_bounds(dims[a], s, e, st)
        begin[a], end[a], strides[a] = b, en, st
        if to_start:
            end_mask |= 1 << a
            end[a] = 0
    return [
        ctx.emit1(
            "StridedSlice",
            [
                x,
                ctx.const(np.array(begin, dtype=np.int64)),
                ctx.const(np.array(end, dtype=np.int64)),
                ctx.const(np.array(strides, dtype=np.int64)),
            ],
            {"end_mask": end_mask},
        )
    ]


def _check_indices(ctx: ParseContext, port: Port) -> None:
    if ctx.dtype(port) not in (DataType.DT_INT32, DataType.DT_INT64):
        raise ctx.error(
            f"indices must be int32 or int64, got {ctx.dtype(port).short_name}", DATATYPE_INVALID
        )


def _check_bounds(ctx: ParseContext, port: Port, dim: int, what: str = "indices") -> None:
    value = ctx.value(port)
    if value is not None and value.size and (value.min() < -dim or value.max() >= dim):
        raise ctx.error(f"{what} must lie in [{-dim}, {dim - 1}]", SHAPE_INVALID)


@onnx_op("Gather", needs=("GatherV2",), attrs=("axis",), inputs=2)
def gather(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Gather → GatherV2 (negative indices count from the end)."""
    x, idx = node.input(0), node.input(1)
    _check_indices(ctx, idx)
    rank = ctx.rank(x)
    axis = norm_axis(ctx, node.attr("axis", 0), rank)
    _check_bounds(ctx, idx, ctx.shape(x)[axis])
    return [
        ctx.emit1(
            "GatherV2",
            [x, idx, ctx.const(np.array(axis, dtype=np.int32))],
            {"negative_index_support": True},
        )
    ]


@onnx_op("GatherElements", needs=("GatherElements",), attrs=("axis",), inputs=2)
def gather_elements(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GatherElements → GatherElements (negative indices wrapped first)."""
    x, idx = node.input(0), node.input(1)
    _check_indices(ctx, idx)
    rank = ctx.rank(x)
    axis = norm_axis(ctx, node.attr("axis", 0), rank)
    dim = ctx.shape(x)[axis]
    _check_bounds(ctx, idx, dim)
    idx = wrap_negative(ctx, idx, dim)
    return [ctx.emit1("GatherElements", [x, idx], {"dim": axis})]


def wrap_negative(ctx: ParseContext, idx: Port, dim: int | Port) -> Port:
    """``idx + dim`` where ``idx < 0`` (a constant fold when idx is known)."""
    value = ctx.value(idx)
    if value is not None and isinstance(dim, int):
        if value.size == 0 or value.min() >= 0:
            return idx
        return ctx.const(np.where(value < 0, value + dim, value).astype(value.dtype))
    dim_port = dim if isinstance(dim, Port) else ctx.scalar(dim, idx)
    zero = ctx.scalar(0, idx)
    neg = ctx.emit1("Less", [idx, zero])
    shifted = ctx.emit1("Add", [idx, dim_port])
    return ctx.emit1("SelectV2", [neg, shifted, idx])


@onnx_op("GatherND", needs=("GatherNd",), attrs=("batch_dims",), inputs=2)
def gather_nd(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GatherND (batch_dims 0) → GatherNd with negative indices wrapped."""
    x, idx = node.input(0), node.input(1)
    _check_indices(ctx, idx)
    if node.attr("batch_dims", 0) != 0:
        raise ctx.unsupported("GatherND with batch_dims != 0")
    value = ctx.value(idx)
    if value is not None:
        k = value.shape[-1] if value.ndim else 0
        dims = np.array(ctx.shape(x)[:k], dtype=np.int64)
        if value.size and ((value < -dims).any() or (value >= dims).any()):
            raise ctx.error("indices out of range", SHAPE_INVALID)
        if value.size and (value < 0).any():
            idx = ctx.const(np.where(value < 0, value + dims, value).astype(value.dtype))
        return [ctx.emit1("GatherNd", [x, idx])]
    return [ctx.emit1("GatherNd", [x, idx], {"negative_index_support": True})]


@onnx_op(
    "ScatterElements", "Scatter", needs=("ScatterElements",), attrs=("axis", "reduction"), inputs=3
)
def scatter_elements(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ScatterElements / Scatter → ScatterElements (negative indices wrapped)."""
    data, idx, upd = node.input(0), node.input(1), node.input(2)
    _check_indices(ctx, idx)
    rank = ctx.rank(data)
    axis = norm_axis(ctx, node.attr("axis", 0), rank)
    reduction = node.attr("reduction", "none")
    dim = ctx.shape(data)[axis]
    _check_bounds(ctx, idx, dim)
    idx = wrap_negative(ctx, idx, dim)
    return [ctx.emit1("ScatterElements", [data, idx, upd], {"axis": axis, "reduction": reduction})]


@onnx_op("Expand", needs=("Expand",), shape_inputs=(1,), attrs=(), inputs=2)
def expand(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Expand → Expand (bidirectional broadcast) with a const shape."""
    x = node.input(0)
    shape_v = ctx.int_list(node.input(1), "shape input")
    return [ctx.emit1("Expand", [x, ctx.const(np.array(shape_v, dtype=np.int64))])]


@onnx_op("Tile", needs=("Tile",), shape_inputs=(1,), attrs=(), inputs=2)
def tile(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Tile → Tile with const multiples."""
    reps = ctx.int_list(node.input(1), "repeats input")
    if len(reps) != ctx.rank(node.input(0)) or any(r < 0 for r in reps):
        raise ctx.error(f"repeats {reps} must have one non-negative entry per dim", SHAPE_INVALID)
    return [ctx.emit1("Tile", [node.input(0), ctx.const(np.array(reps, dtype=np.int64))])]


@onnx_op("ConstantOfShape", needs=("Fill",), shape_inputs=(0,), attrs=("value",), inputs=1)
def constant_of_shape(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ConstantOfShape → Fill(dims, value)."""
    dims = ctx.int_list(node.input(0), "shape input")
    if any(d < 0 for d in dims):
        raise ctx.error(f"shape {dims} has a negative dim", SHAPE_INVALID)
    value = node.attr("value")
    value = np.zeros((), np.float32) if value is None else np.asarray(value).reshape(-1)
    if value.size != 1:
        raise ctx.error("value must have one element")
    value = value.reshape(())
    return [ctx.emit1("Fill", [ctx.const(np.array(dims, dtype=np.int64)), ctx.const(value)])]


@onnx_op("Range", needs=("Range",), shape_inputs=(0, 1, 2), attrs=(), inputs=3)
def range_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Range → Range (constant scalars; the output length is fixed at compile time)."""
    ins = [ctx.as_const(node.input(i), name) for i, name in enumerate(("start", "limit", "delta"))]
    for p in ins:
        if ctx.shape(p) not in ((), (1,)):
            raise ctx.error("start, limit and delta must be scalars", SHAPE_INVALID)
    ins = [ctx.reshape(p, ()) if ctx.shape(p) else p for p in ins]
    ins = [ctx.as_const(p, "range bound") for p in ins]
    return [ctx.emit1("Range", ins)]


@onnx_op("OneHot", needs=("OneHot", "Cast"), shape_inputs=(1,), attrs=("axis",), inputs=3)
def one_hot(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """OneHot → OneHot with negative indices wrapped (ONNX counts them from the end)."""
    idx, depth_p, values = node.input(0), node.input(1), node.input(2)
    depth_v = ctx.require_value(depth_p, "depth").reshape(-1)
    if depth_v.size != 1:
        raise ctx.error("depth must be a scalar", SHAPE_INVALID)
    depth = int(depth_v[0])
    if depth < 1:
        raise ctx.error(f"depth {depth} must be ≥ 1", SHAPE_INVALID)
    if ctx.shape(values) != (2,):
        raise ctx.error("values must be [off_value, on_value]", SHAPE_INVALID)
    idx = ctx.cast(idx, I64)
    idx = wrap_negative(ctx, idx, depth)
    rank = ctx.rank(idx) + 1
    axis = norm_axis(ctx, node.attr("axis", -1), rank)
    vals = ctx.value(values)
    if vals is not None:
        off, on = ctx.const(vals[0]), ctx.const(vals[1])
    else:
        off, on = ctx.emit(
            "SplitV",
            [values, ctx.const(np.array([1, 1], np.int64)), ctx.const(np.array(0, np.int32))],
            {"num_split": 2},
            num_outputs=2,
        )
        off, on = ctx.reshape(off, ()), ctx.reshape(on, ())
    return [
        ctx.emit1(
            "OneHot", [idx, ctx.const(np.array(depth, dtype=np.int32)), on, off], {"axis": axis}
        )
    ]


@onnx_op("Trilu", needs=("SelectV2",), shape_inputs=(1,), attrs=("upper",), inputs=2)
def trilu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Trilu → SelectV2(const mask, x, 0): the mask is built from the static shape."""
    x = node.input(0)
    dims = ctx.shape(x)
    if len(dims) < 2:
        raise ctx.error("input must have rank ≥ 2", SHAPE_INVALID)
    k = 0
    if node.has_input(1):
        kv = ctx.require_value(node.input(1), "k").reshape(-1)
        k = int(kv[0])
    n, m = dims[-2], dims[-1]
    ctx.reserve(17 * n * m, "the Trilu mask")
    rows = np.arange(n)[:, None]
    cols = np.arange(m)[None, :]
    mask = (cols - rows >= k) if node.attr("upper", 1) else (cols - rows <= k)
    zero = ctx.scalar(0, x)
    return [ctx.emit1("SelectV2", [ctx.const(mask), x, zero])]


@onnx_op("EyeLike", needs=("Identity",), attrs=("dtype", "k"), inputs=1)
def eye_like(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """EyeLike → Const (the result depends only on the static shape)."""
    x = node.input(0)
    dims = ctx.shape(x)
    if len(dims) != 2:
        raise ctx.error("input must be 2-D", SHAPE_INVALID)
    dt = node.attr("dtype")
    dtype = ctx.dtype(x) if dt is None else onnx_dtype(dt, node.where)
    ctx.reserve(dims[0] * dims[1] * dtype.np_dtype.itemsize, "the EyeLike constant")
    eye = np.eye(dims[0], dims[1], k=node.attr("k", 0), dtype=dtype.np_dtype)
    return [ctx.emit1("Identity", [ctx.const(eye)])]


@onnx_op("DepthToSpace", needs=("Reshape", "Transpose"), attrs=("blocksize", "mode"), inputs=1)
def depth_to_space(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """DepthToSpace → Reshape + Transpose + Reshape (DCR or CRD)."""
    x = node.input(0)
    dims = ctx.shape(x)
    if len(dims) != 4:
        raise ctx.error("input must be 4-D NCHW", SHAPE_INVALID)
    b = node.attr("blocksize")
    n, c, h, w = dims
    if not b or c % (b * b):
        raise ctx.error(f"channels {c} are not divisible by blocksize² ({b})", SHAPE_INVALID)
    if node.attr("mode", "DCR") == "DCR":
        t = ctx.reshape(x, (n, b, b, c // (b * b), h, w))
        t = ctx.transpose(t, (0, 3, 4, 1, 5, 2))
    else:
        t = ctx.reshape(x, (n, c // (b * b), b, b, h, w))
        t = ctx.transpose(t, (0, 1, 4, 2, 5, 3))
    return [_reshape_node(ctx, t, [n, c // (b * b), h * b, w * b])]


@onnx_op("SpaceToDepth", needs=("Reshape", "Transpose"), attrs=("blocksize", "mode"), inputs=1)
def space_to_depth(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """SpaceToDepth → Reshape + Transpose + Reshape."""
    x = node.input(0)
    dims = ctx.shape(x)
    if len(dims) != 4:
        raise ctx.error("input must be 4-D NCHW", SHAPE_INVALID)
    b = node.attr("blocksize")
    n, c, h, w = dims
    if not b or h % b or w % b:
        raise ctx.error(f"H and W must be divisible by blocksize {b}", SHAPE_INVALID)
    t = ctx.reshape(x, (n, c, h // b, b, w // b, b))
    mode = node.attr("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise ctx.error(f"mode {mode!r} must be DCR or CRD")
    t = ctx.transpose(t, (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4))
    return [_reshape_node(ctx, t, [n, c * b * b, h // b, w // b])]


@onnx_op("Compress", needs=("GatherV2",), shape_inputs=(1,), attrs=("axis",), inputs=2)
def compress(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Compress with a constant condition → GatherV2 of the selected positions."""
    x = node.input(0)
    cond = ctx.require_value(node.input(1), "condition").reshape(-1).astype(bool)
    axis = node.attr("axis")
    if axis is None:
        x = ctx.reshape(x, (int(np.prod(ctx.shape(x), dtype=np.int64)),))
        axis = 0
    axis = norm_axis(ctx, axis, ctx.rank(x))
    dim = ctx.shape(x)[axis]
    if cond.size > dim:
        raise ctx.error(f"condition has {cond.size} entries; the axis has {dim}", SHAPE_INVALID)
    picks = np.nonzero(cond)[0].astype(np.int64)
    return [ctx.emit1("GatherV2", [x, ctx.const(picks), ctx.const(np.array(axis, np.int32))])]


@onnx_op("ReverseSequence", needs=("GatherElements",), attrs=("time_axis", "batch_axis"), inputs=2)
def reverse_sequence(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ReverseSequence → GatherElements with the reversal index (built at parse time when the
    lengths are constant, else with elementwise ops)."""
    x, lens = node.input(0), node.input(1)
    dims = ctx.shape(x)
    if len(dims) < 2:
        raise ctx.error("input must have rank ≥ 2", SHAPE_INVALID)
    t_axis = node.attr("time_axis", 0)
    b_axis = node.attr("batch_axis", 1)
    if {t_axis, b_axis} != {0, 1}:
        raise ctx.error("time_axis and batch_axis must be 0 and 1", SHAPE_INVALID)
    steps, batch = dims[t_axis], dims[b_axis]
    ctx.reserve(8 * int(np.prod(dims, dtype=object)), "the reversal indices")
    t = np.arange(steps).reshape([steps if i == t_axis else 1 for i in range(len(dims))])
    lens_v = ctx.value(lens)
    if lens_v is not None:
        lens_a = lens_v.astype(np.int64).reshape(
            [batch if i == b_axis else 1 for i in range(len(dims))]
        )
        table = np.broadcast_to(np.where(t < lens_a, lens_a - 1 - t, t), dims).astype(np.int64)
        return [ctx.emit1("GatherElements", [x, ctx.const(table)], {"dim": t_axis})]
    lv = ctx.cast(lens, I64)
    lv = ctx.reshape(lv, [batch if i == b_axis else 1 for i in range(len(dims))])
    tc = ctx.const(t.astype(np.int64))
    inside = ctx.emit1("Less", [tc, lv])
    rev = ctx.emit1("Sub", [ctx.emit1("Sub", [lv, ctx.scalar(1, I64)]), tc])
    idx = ctx.emit1("SelectV2", [inside, rev, tc])
    idx = ctx.emit1("Expand", [idx, ctx.const(np.array(dims, np.int64))])
    return [ctx.emit1("GatherElements", [x, idx], {"dim": t_axis})]


@onnx_op(
    "Pad",
    needs=("PadV3",),
    shape_inputs=lambda v: (1, 3) if v >= 11 else (),
    attrs=("mode", "pads", "value", "paddings"),
    inputs=4,
)
def pad(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Pad → PadV3 (constant, reflect, edge, wrap; negative pads crop)."""
    x = node.input(0)
    rank = ctx.rank(x)
    mode = node.attr("mode", "constant")
    cval: Port | None = None
    if node.opset < 11:
        pads = list(node.attr("pads" if node.opset >= 2 else "paddings", []))
        value = node.attr("value", 0.0)
        if mode == "constant":
            cval = ctx.scalar(value, x)
        axes = list(range(rank))
    else:
        pads = ctx.int_list(node.input(1), "pads")
        if node.has_input(2) and mode == "constant":
            cval = node.input(2)
            if ctx.shape(cval) not in ((), (1,)):
                raise ctx.error("constant_value must be a scalar", SHAPE_INVALID)
            cval = ctx.reshape(cval, ()) if ctx.shape(cval) else cval
        axes = ctx.int_list(node.input(3), "axes") if node.has_input(3) else list(range(rank))
        axes = norm_axes(ctx, axes, rank)
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"pads has {len(pads)} entries; expected {2 * len(axes)}", SHAPE_INVALID)
    pairs = [[0, 0] for _ in range(rank)]
    for i, a in enumerate(axes):
        pairs[a] = [int(pads[i]), int(pads[i + len(axes)])]
    dims = ctx.shape(x)
    modes = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "circular"}
    if mode not in modes:
        raise ctx.error(f"mode {mode!r} is not one of constant, reflect, edge, wrap")
    if mode == "reflect":
        for a, (b, e) in enumerate(pairs):
            if max(b, e) > dims[a] - 1:
                raise ctx.unsupported(f"reflect padding of {max(b, e)} on a dim of size {dims[a]}")
    if mode == "wrap":
        for a, (b, e) in enumerate(pairs):
            if max(b, e) > dims[a] or min(b, e) < 0:
                raise ctx.unsupported(f"wrap padding {b, e} on a dim of size {dims[a]}")
    flat = [v for pair in pairs for v in pair]
    ins = [x, ctx.const(np.array(flat, dtype=np.int64))]
    if cval is not None:
        ins.append(cval)
    return [ctx.emit1("PadV3", ins, {"mode": modes[mode], "paddings_contiguous": True})]


@onnx_op(
    "ScatterND", since=11, needs=("ScatterElements", "Reshape"), attrs=("reduction",), inputs=3
)
def scatter_nd(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ScatterND → ScatterElements on a (positions, slice) view of data with flat indices."""
    data, idx, upd = node.input(0), node.input(1), node.input(2)
    _check_indices(ctx, idx)
    reduction = node.attr("reduction", "none")
    if reduction not in ("none", "add", "mul", "max", "min"):
        raise ctx.unsupported(f"ScatterND reduction {reduction!r}")
    dims = ctx.shape(data)
    idims = ctx.shape(idx)
    if not idims:
        raise ctx.error("indices must be at least 1-D", SHAPE_INVALID)
    k = idims[-1]
    if k > len(dims) or k < 1:
        raise ctx.error(f"indices last dim {k} must be in [1, {len(dims)}]", SHAPE_INVALID)
    lead = idims[:-1]
    rest = dims[k:]
    if ctx.shape(upd) != (*lead, *rest):
        raise ctx.error(
            f"updates shape {list(ctx.shape(upd))} must be {[*lead, *rest]}", SHAPE_INVALID
        )
    positions = int(np.prod(dims[:k], dtype=np.int64))
    width = int(np.prod(rest, dtype=np.int64))
    count = int(np.prod(lead, dtype=np.int64))
    strides = np.cumprod((1, *dims[:k][::-1]))[:-1][::-1].astype(np.int64)
    sizes = np.array(dims[:k], dtype=np.int64)
    value = ctx.value(idx)
    if value is not None:
        v = value.astype(np.int64).reshape(-1, k)
        if v.size and ((v < -sizes).any() or (v >= sizes).any()):
            raise ctx.error("indices out of range", SHAPE_INVALID)
        flat = (np.where(v < 0, v + sizes, v) * strides).sum(axis=1)
        flat_p = ctx.const(np.broadcast_to(flat.reshape(count, 1), (count, width)).copy())
    else:
        i64 = ctx.cast(idx, I64)
        i64 = ctx.reshape(i64, (count, k))
        i64 = wrap_negative(ctx, i64, ctx.const(sizes.reshape(1, k)))
        lin = ctx.emit1("Mul", [i64, ctx.const(strides.reshape(1, k))])
        lin = ctx.emit1(
            "ReduceSum",
            [lin, ctx.const(np.array([1], np.int64))],
            {"keep_dims": True, "noop_with_empty_axes": False},
        )
        flat_p = ctx.emit1("Expand", [lin, ctx.const(np.array([count, width], np.int64))])
    d2 = ctx.reshape(data, (positions, width))
    u2 = ctx.reshape(upd, (count, width))
    y = ctx.emit1("ScatterElements", [d2, flat_p, u2], {"axis": 0, "reduction": reduction})
    return [ctx.reshape(y, dims)]


@onnx_op("TensorScatter", since=24, needs=("ScatterElements",), attrs=("axis", "mode"), inputs=3)
def tensor_scatter(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """TensorScatter → ScatterElements along the sequence axis at write_indices[b] + s."""
    past, upd, wi = node.input(0), node.input(1), node.opt(2)
    dims = ctx.shape(past)
    udims = ctx.shape(upd)
    rank = len(dims)
    axis = norm_axis(ctx, node.attr("axis", -2), rank)
    if axis == 0:
        raise ctx.error("axis must not be the batch axis 0")
    mode = node.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise ctx.error(f"mode {mode!r} must be linear or circular")
    seq, cap = udims[axis], dims[axis]
    shape = [1] * rank
    shape[axis] = seq
    base = ctx.const(np.arange(seq, dtype=np.int64).reshape(shape))
    if wi is not None:
        w = ctx.reshape(ctx.cast(wi, I64), [dims[0]] + [1] * (rank - 1))
        pos = ctx.emit1("Add", [base, w])
    else:
        pos = base
    if mode == "circular":
        pos = ctx.emit1("FloorMod", [pos, ctx.scalar(cap, I64)])
    pos = ctx.emit1("Expand", [pos, ctx.const(np.array(udims, np.int64))])
    return [ctx.emit1("ScatterElements", [past, pos, upd], {"axis": axis, "reduction": "none"})]


@onnx_op("BitCast", since=26, needs=("Bitcast",), attrs=("to",), inputs=1)
def bit_cast(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """BitCast → Bitcast (same bit width, same shape)."""
    x = node.input(0)
    to = onnx_dtype(node.attr("to"), f"{node.where}: attribute to")
    if to.itemsize != ctx.dtype(x).itemsize:
        raise ctx.error(
            f"BitCast needs the same bit width: {ctx.dtype(x).short_name} → {to.short_name}",
            SHAPE_INVALID,
        )
    return [ctx.emit1("Bitcast", [x], {"type": int(to)})]


def _scatter_flat(
    ctx: ParseContext, total: int, idx: Port, values: Port, reduction: str = "add"
) -> Port:
    """zeros(total) with ``values`` added (or written) at the flat positions ``idx``."""
    n = int(np.prod(ctx.shape(values), dtype=np.int64))
    vdt = ctx.dtype(values)
    zeros = ctx.emit1(
        "Fill", [ctx.const(np.array([total], np.int64)), ctx.const(np.zeros((), vdt.np_dtype))]
    )
    return ctx.emit1(
        "ScatterElements",
        [zeros, ctx.reshape(ctx.cast(idx, I64), (n,)), ctx.reshape(values, (n,))],
        {"axis": 0, "reduction": reduction},
    )


@onnx_op(
    "MaxUnpool",
    since=9,
    needs=("ScatterElements", "Fill", "Reshape"),
    shape_inputs=(2,),
    attrs=("kernel_shape", "pads", "strides"),
    inputs=3,
)
def max_unpool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """MaxUnpool → values scattered at their flat indices into zeros, then zero-extended to
    output_shape."""
    x, idx = node.input(0), node.input(1)
    dims = ctx.shape(x)
    kernel = list(node.attr("kernel_shape") or [])
    n = len(dims) - 2
    strides = list(node.attr("strides") or [1] * n)
    pads = list(node.attr("pads") or [0] * (2 * n))
    if len(kernel) != n or len(strides) != n or len(pads) != 2 * n:
        raise ctx.error("kernel_shape, strides and pads must match the spatial rank", SHAPE_INVALID)
    inferred = [dims[0], dims[1]] + [
        (dims[2 + i] - 1) * strides[i] - (pads[i] + pads[n + i]) + kernel[i] for i in range(n)
    ]
    total = int(np.prod(inferred, dtype=np.int64))
    value = ctx.value(idx)
    if value is not None and value.size and (value.min() < 0 or value.max() >= total):
        raise ctx.error("indices out of range", SHAPE_INVALID)
    if ctx.shape(idx) != dims:
        raise ctx.error("I must have X's shape", SHAPE_INVALID)
    # A repeated index (overlapping windows) is written, not summed: the last write wins.
    y = ctx.reshape(_scatter_flat(ctx, total, idx, x, "none"), inferred)
    if node.has_input(2):
        target = ctx.int_list(node.input(2), "output_shape")
        if len(target) != len(dims) or any(t < s for t, s in zip(target, inferred)):
            raise ctx.unsupported(f"output_shape {target} smaller than {inferred}")
        if target != inferred:
            pairs = [v for t, s in zip(target, inferred) for v in (0, t - s)]
            y = ctx.emit1(
                "PadV3",
                [y, ctx.const(np.array(pairs, np.int64))],
                {"mode": "constant", "paddings_contiguous": True},
            )
    return [ctx.emit1("Identity", [y])]


@onnx_op(
    "Col2Im",
    since=18,
    needs=("ScatterElements", "Fill", "StridedSlice"),
    shape_inputs=(1, 2),
    attrs=("dilations", "pads", "strides"),
    inputs=3,
)
def col2im(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Col2Im → every column entry added at its (constant) image position, then the padding
    cropped."""
    x = node.input(0)
    image = ctx.int_list(node.input(1), "image_shape")
    block = ctx.int_list(node.input(2), "block_shape")
    n = len(image)
    dil = list(node.attr("dilations") or [1] * n)
    strides = list(node.attr("strides") or [1] * n)
    pads = list(node.attr("pads") or [0] * (2 * n))
    dims = ctx.shape(x)
    if len(dims) != 3 or len(block) != n or len(dil) != n or len(strides) != n:
        raise ctx.error("input must be (N, C·∏block, L) with per-dim attributes", SHAPE_INVALID)
    k = int(np.prod(block, dtype=np.int64))
    if dims[1] % k:
        raise ctx.error(f"dim 1 ({dims[1]}) is not a multiple of ∏block_shape ({k})", SHAPE_INVALID)
    c = dims[1] // k
    padded = [image[i] + pads[i] + pads[n + i] for i in range(n)]
    blocks = [(padded[i] - ((block[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(n)]
    if any(b < 1 for b in blocks) or int(np.prod(blocks)) != dims[2]:
        raise ctx.error(f"L = {dims[2]} does not match the {blocks} sliding blocks", SHAPE_INVALID)
    kk = np.stack(np.unravel_index(np.arange(k), block), axis=1)  # (K, n)
    ll = np.stack(np.unravel_index(np.arange(dims[2]), blocks), axis=1)  # (L, n)
    pos = kk[:, None, :] * np.array(dil) + ll[None, :, :] * np.array(strides)  # (K, L, n)
    flat = np.ravel_multi_index(tuple(pos.reshape(-1, n).T), padded).reshape(k, dims[2])
    plane = int(np.prod(padded, dtype=np.int64))
    index = (np.arange(c)[:, None, None] * plane + flat[None]).reshape(-1)  # (C·K·L,)
    batch = dims[0]
    index = (np.arange(batch)[:, None] * c * plane + index[None, :]).astype(np.int64)
    y = _scatter_flat(ctx, batch * c * plane, ctx.const(index), x)
    y = ctx.reshape(y, (batch, c, *padded))
    begin = [0, 0, *pads[:n]]
    end = [batch, c] + [pads[i] + image[i] for i in range(n)]
    return [
        ctx.emit1(
            "StridedSlice",
            [
                y,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.ones(n + 2, np.int64)),
            ],
        )
    ]
