"""ONNX neural-network ops → catalog nn ops (Conv2D, pools, norms, MatMul, softmax …).

1-D convolutions and poolings run as 2-D ones on an (N, C, 1, L) view; ``auto_pad`` SAME_UPPER /
SAME_LOWER become explicit pads from the static shapes; Gemm is MatMulV2 then ``alpha``·, then
``+ beta·C``; Softmax before opset 13 works on the 2-D view ONNX defined then.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import DataType, Port
from openge.parser.mappings import onnx_op
from openge.parser.mappings.shape import norm_axis
from openge.parser.onnx_parser import OnnxNode, ParseContext

FLOATS = (DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_DOUBLE)
F32 = DataType.DT_FLOAT


def _spatial(node: OnnxNode, ctx: ParseContext, x: Port, kernel: list[int]) -> dict:
    """Strides, dilations and explicit (begin, end) pads of a conv/pool node, per spatial axis."""
    dims = ctx.shape(x)[2:]
    n = len(dims)
    strides = list(node.attr("strides") or [1] * n)
    dilations = list(node.attr("dilations") or [1] * n)
    if len(strides) != n or len(dilations) != n or len(kernel) != n:
        raise ctx.error(
            f"kernel {kernel}, strides {strides} and dilations {dilations} must each have "
            f"{n} entries (the spatial rank)",
            SHAPE_INVALID,
        )
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations):
        raise ctx.error("strides and dilations must be ≥ 1", SHAPE_INVALID)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(dims, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            if auto_pad == "SAME_UPPER":
                begin.append(small)
                end.append(total - small)
            else:
                begin.append(total - small)
                end.append(small)
    elif auto_pad == "VALID":
        begin, end = [0] * n, [0] * n
    elif auto_pad == "NOTSET":
        pads = list(node.attr("pads") or [0] * (2 * n))
        if len(pads) != 2 * n:
            raise ctx.error(f"pads {pads} must have {2 * n} entries", SHAPE_INVALID)
        begin, end = pads[:n], pads[n:]
        if any(p < 0 for p in pads):
            raise ctx.unsupported("negative pads")
    else:
        raise ctx.error(f"auto_pad {auto_pad!r} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    return {"strides": strides, "dilations": dilations, "begin": begin, "end": end}


def _to_2d(ctx: ParseContext, x: Port) -> tuple[Port, tuple[int, ...] | None]:
    """A rank-3 (N, C, L) tensor as (N, C, 1, L); rank 4 unchanged; others refused."""
    dims = ctx.shape(x)
    if len(dims) == 4:
        return x, None
    if len(dims) == 3:
        return ctx.reshape(x, (dims[0], dims[1], 1, dims[2])), dims
    raise ctx.unsupported(f"{len(dims) - 2}-D spatial input (openge has 1-D and 2-D here)")


def _lift(values: list[int], one: int) -> list[int]:
    return [one, *values] if len(values) == 1 else values


def _back(ctx: ParseContext, y: Port, was: tuple[int, ...] | None) -> Port:
    if was is None:
        return y
    d = ctx.shape(y)
    return ctx.reshape(y, (d[0], d[1], d[3]))


# ----- convolution ----------------------------------------------------------------------------


@onnx_op(
    "Conv",
    needs=("Conv2D",),
    attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"),
    inputs=3,
)
def conv(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Conv (1-D/2-D) → Conv2D NCHW with explicit pads; bias as Conv2D's bias input."""
    x, w, b = node.input(0), node.input(1), node.opt(2)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.unsupported(f"Conv of {ctx.dtype(x).short_name}")
    wdims = ctx.shape(w)
    kernel = list(node.attr("kernel_shape") or wdims[2:])
    if list(wdims[2:]) != kernel:
        raise ctx.error(f"kernel_shape {kernel} differs from W's {list(wdims[2:])}", SHAPE_INVALID)
    geo = _spatial(node, ctx, x, kernel)
    if ctx.rank(x) == 5:
        return [_conv3d(node, ctx, x, w, b, geo)]
    x2, was = _to_2d(ctx, x)
    if was is not None:
        w = ctx.reshape(w, (wdims[0], wdims[1], 1, wdims[2]))
    strides = _lift(geo["strides"], 1)
    dilations = _lift(geo["dilations"], 1)
    begin, end = _lift(geo["begin"], 0), _lift(geo["end"], 0)
    attrs = {
        "strides": [1, 1, *strides],
        "dilations": [1, 1, *dilations],
        "pads": [begin[0], end[0], begin[1], end[1]],
        "groups": node.attr("group", 1),
        "data_format": "NCHW",
    }
    y = ctx.emit1("Conv2D", [x2, w, b], attrs)
    return [_back(ctx, y, was)]


def _conv3d(node: OnnxNode, ctx: ParseContext, x: Port, w: Port, b: Port | None, geo: dict) -> Port:
    """A 3-D convolution as one Conv2D per kernel depth tap on depth-strided slices, summed."""
    n, c, d, h, wd = ctx.shape(x)
    m, cg, kd, kh, kw = ctx.shape(w)
    sd, sh, sw = geo["strides"]
    dd, dh, dw = geo["dilations"]
    (bd, bh, bw), (ed, eh, ew) = geo["begin"], geo["end"]
    out_d = (d + bd + ed - (kd - 1) * dd - 1) // sd + 1
    if out_d <= 0:
        raise ctx.error("the kernel is deeper than the padded input", SHAPE_INVALID)
    if bd or ed:
        pads = [0, 0, 0, 0, bd, ed, 0, 0, 0, 0]
        x = ctx.emit1(
            "PadV3",
            [x, ctx.const(np.array(pads, np.int64)), ctx.scalar(0, x)],
            {"mode": "constant", "paddings_contiguous": True},
        )
    group = node.attr("group", 1)
    acc: Port | None = None
    for t in range(kd):
        start = t * dd
        sl = ctx.emit1(
            "StridedSlice",
            [
                x,
                ctx.const(np.array([0, 0, start, 0, 0], np.int64)),
                ctx.const(np.array([n, c, start + (out_d - 1) * sd + 1, h, wd], np.int64)),
                ctx.const(np.array([1, 1, sd, 1, 1], np.int64)),
            ],
        )
        planes = ctx.reshape(ctx.transpose(sl, (0, 2, 1, 3, 4)), (n * out_d, c, h, wd))
        wt = ctx.emit1(
            "StridedSlice",
            [
                w,
                ctx.const(np.array([0, 0, t, 0, 0], np.int64)),
                ctx.const(np.array([m, cg, t + 1, kh, kw], np.int64)),
                ctx.const(np.ones(5, np.int64)),
            ],
        )
        wt = ctx.reshape(wt, (m, cg, kh, kw))
        y = ctx.emit1(
            "Conv2D",
            [planes, wt],
            {
                "strides": [1, 1, sh, sw],
                "dilations": [1, 1, dh, dw],
                "pads": [bh, eh, bw, ew],
                "groups": group,
                "data_format": "NCHW",
            },
        )
        acc = y if acc is None else ctx.emit1("Add", [acc, y])
    assert acc is not None
    _, _, oh, ow = ctx.shape(acc)
    y = ctx.transpose(ctx.reshape(acc, (n, out_d, m, oh, ow)), (0, 2, 1, 3, 4))
    if b is not None:
        y = ctx.emit1("Add", [y, ctx.reshape(b, (m, 1, 1, 1))])
    return y


@onnx_op(
    "ConvTranspose",
    needs=("Conv2DTranspose",),
    attrs=(
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "output_padding",
        "output_shape",
        "pads",
        "strides",
    ),
    inputs=3,
)
def conv_transpose(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ConvTranspose (1-D/2-D) → Conv2DTranspose with the output size and pads resolved."""
    x, w, b = node.input(0), node.input(1), node.opt(2)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.unsupported(f"ConvTranspose of {ctx.dtype(x).short_name}")
    xdims = ctx.shape(x)
    wdims = ctx.shape(w)
    n = len(xdims) - 2
    kernel = list(node.attr("kernel_shape") or wdims[2:])
    strides = list(node.attr("strides") or [1] * n)
    dilations = list(node.attr("dilations") or [1] * n)
    out_pad = list(node.attr("output_padding") or [0] * n)
    group = node.attr("group", 1)
    if not len(kernel) == len(strides) == len(dilations) == len(out_pad) == n:
        raise ctx.error(
            "kernel_shape, strides, dilations and output_padding need one entry per spatial axis",
            SHAPE_INVALID,
        )
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    full = [
        s * (i - 1) + op + (k - 1) * d + 1
        for i, s, op, k, d in zip(xdims[2:], strides, out_pad, kernel, dilations)
    ]
    if output_shape is not None:
        output_shape = list(output_shape)[-n:]
        total = [f - o for f, o in zip(full, output_shape)]
        if any(t < 0 for t in total):
            raise ctx.unsupported(f"output_shape {output_shape} larger than the full result {full}")
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - bg for t, bg in zip(total, begin)]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [i * s for i, s in zip(xdims[2:], strides)]
        total = [max(f - t, 0) for f, t in zip(full, target)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - bg for t, bg in zip(total, begin)]
    elif auto_pad in ("NOTSET", "VALID"):
        pads = list(node.attr("pads") or [0] * (2 * n)) if auto_pad == "NOTSET" else [0] * (2 * n)
        if len(pads) != 2 * n:
            raise ctx.error(f"pads {pads} must have {2 * n} entries", SHAPE_INVALID)
        begin, end = pads[:n], pads[n:]
    else:
        raise ctx.error(f"auto_pad {auto_pad!r} is not valid")
    out = [f - bg - e for f, bg, e in zip(full, begin, end)]
    if any(o <= 0 for o in out) or any(p < 0 for p in begin):
        raise ctx.error(f"the output size {out} is not positive", SHAPE_INVALID)
    # A negative end pad (output_shape past the full result) extends the output with zeros
    # (plus the bias): that is Conv2DTranspose's output_padding.
    out_pad = [op - min(e, 0) for op, e in zip(out_pad, end)]
    end = [max(e, 0) for e in end]
    x2, was = _to_2d(ctx, x)
    if was is not None:
        w = ctx.reshape(w, (wdims[0], wdims[1], 1, wdims[2]))
    cy = wdims[1] * group
    size = [xdims[0], cy, *_lift(out, 1)]
    # Conv2DTranspose needs every output pixel inside the scatter span; output_padding extends
    # the end (zeros beyond the span, then the bias).
    attrs = {
        "strides": [1, 1, *_lift(strides, 1)],
        "dilations": [1, 1, *_lift(dilations, 1)],
        "pads": [_lift(begin, 0)[0], _lift(end, 0)[0], _lift(begin, 0)[1], _lift(end, 0)[1]],
        "output_padding": [0, 0, *_lift(out_pad, 0)],
        "groups": group,
        "data_format": "NCHW",
    }
    y = ctx.emit1("Conv2DTranspose", [ctx.const(np.array(size, dtype=np.int32)), x2, w, b], attrs)
    return [_back(ctx, y, was)]


# ----- pooling --------------------------------------------------------------------------------


def _pool_attrs(node: OnnxNode, ctx: ParseContext, x: Port) -> tuple[dict, Port, tuple | None]:
    kernel = list(node.attr("kernel_shape") or [])
    if not kernel:
        raise ctx.error("kernel_shape is required")
    geo = _spatial(node, ctx, x, kernel)
    if any(d != 1 for d in geo["dilations"]):
        raise ctx.unsupported("pooling with dilations")
    x2, was = _to_2d(ctx, x)
    k = _lift(kernel, 1)
    s = _lift(geo["strides"], 1)
    begin, end = _lift(geo["begin"], 0), _lift(geo["end"], 0)
    attrs = {
        "ksize": [1, 1, *k],
        "strides": [1, 1, *s],
        "padding_mode": "CALCULATED",
        "pads": [begin[0], end[0], begin[1], end[1]],
        "data_format": "NCHW",
        "ceil_mode": bool(node.attr("ceil_mode", 0)),
    }
    return attrs, x2, was


def _needs_taps(node: OnnxNode, ctx: ParseContext, x: Port) -> bool:
    """True when a pooling node needs the tap-by-tap composition (3-D or dilated)."""
    n = ctx.rank(x) - 2
    dil = list(node.attr("dilations") or [1] * n)
    return n not in (1, 2) or any(d != 1 for d in dil)


@onnx_op(
    "MaxPool",
    needs=("MaxPoolV3",),
    attrs=(
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ),
    inputs=1,
)
def max_pool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """MaxPool → MaxPoolV3 (1-D/2-D); 3-D or dilated: Maximum over strided slices; with the
    Indices output: a running (value, flat index) selection over the window taps."""
    if node.wants_output(1):
        return _max_pool_with_indices(node, ctx, node.input(0))
    if _needs_taps(node, ctx, node.input(0)):
        return [_pool_taps(node, ctx, node.input(0), "max")]
    attrs, x2, was = _pool_attrs(node, ctx, node.input(0))
    return [_back(ctx, ctx.emit1("MaxPoolV3", [x2], attrs), was)]


@onnx_op(
    "AveragePool",
    needs=("AvgPoolV2",),
    attrs=(
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "strides",
    ),
    inputs=1,
)
def average_pool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """AveragePool → AvgPoolV2 (1-D/2-D; exclusive = not count_include_pad); 3-D or dilated:
    sum over strided slices divided by the window counts."""
    if _needs_taps(node, ctx, node.input(0)):
        return [_pool_taps(node, ctx, node.input(0), "avg")]
    attrs, x2, was = _pool_attrs(node, ctx, node.input(0))
    attrs["exclusive"] = not node.attr("count_include_pad", 0)
    return [_back(ctx, ctx.emit1("AvgPoolV2", [x2], attrs), was)]


def _max_pool_with_indices(node: OnnxNode, ctx: ParseContext, x: Port) -> list[Port]:
    """MaxPool values and flat argmax indices (first maximum in window scan order, padding
    never selected; storage_order 1 numbers the last two axes column-major)."""
    dims = ctx.shape(x)
    sp = list(dims[2:])
    n = len(sp)
    kernel = list(node.attr("kernel_shape") or [])
    geo = _spatial(node, ctx, x, kernel)
    strides, dil, pb, pe = geo["strides"], geo["dilations"], geo["begin"], geo["end"]
    if node.attr("ceil_mode", 0):
        raise ctx.unsupported("MaxPool indices with ceil_mode")
    out = [
        (sp[i] + pb[i] + pe[i] - ((kernel[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(n)
    ]
    if any(o < 1 for o in out):
        raise ctx.error("the pooling window is larger than the padded input", SHAPE_INVALID)
    dt = ctx.dtype(x)
    fill = -np.inf if dt in FLOATS else np.iinfo(dt.np_dtype).min
    padded = x
    if any(pb) or any(pe):
        pads = [0, 0, 0, 0] + [v for i in range(n) for v in (pb[i], pe[i])]
        padded = ctx.emit1(
            "PadV3",
            [x, ctx.const(np.array(pads, np.int64)), ctx.scalar(fill, dt)],
            {"mode": "constant", "paddings_contiguous": True},
        )
    column_major = bool(node.attr("storage_order", 0))
    if column_major and n != 2:
        raise ctx.unsupported("storage_order 1 outside 2-D pooling")
    plane = int(np.prod(sp, dtype=np.int64))
    if any(k < 1 for k in kernel):
        raise ctx.error(f"kernel_shape {list(kernel)} must be positive", SHAPE_INVALID)
    spatial = int(np.prod(out, dtype=object))
    taps = int(np.prod(kernel, dtype=object))
    ctx.reserve(
        8 * dims[0] * dims[1] * (spatial * taps + 1) + 2 * spatial, "MaxPool index constants"
    )
    base = np.arange(dims[0] * dims[1], dtype=np.int64).reshape(dims[0], dims[1], *[1] * n) * plane
    best: Port | None = None
    best_idx: Port | None = None
    assigned = np.zeros(out, dtype=bool)
    for tap in np.ndindex(*kernel):
        coords = []
        for i in range(n):
            shape = [1] * n
            shape[i] = out[i]
            c = np.arange(out[i]) * strides[i] - pb[i] + tap[i] * dil[i]
            coords.append(c.reshape(shape))
        inside = np.ones(out, dtype=bool)
        for i in range(n):
            inside = inside & (coords[i] >= 0) & (coords[i] < sp[i])
        if not inside.any():
            continue
        if column_major:
            flat = coords[0] + coords[1] * sp[0]
        else:
            flat = np.zeros([1] * n, dtype=np.int64)
            for i in range(n):
                flat = flat * sp[i] + coords[i]
        idx = ctx.const((base + np.broadcast_to(flat, out)).astype(np.int64))
        begin = [0, 0] + [tap[i] * dil[i] for i in range(n)]
        end = [dims[0], dims[1]] + [begin[2 + i] + (out[i] - 1) * strides[i] + 1 for i in range(n)]
        piece = ctx.emit1(
            "StridedSlice",
            [
                padded,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.array([1, 1, *strides], np.int64)),
            ],
        )
        if best is None:
            best, best_idx = piece, idx
            assigned = inside
            continue
        better = ctx.emit1("Greater", [piece, best])
        first_here = inside & ~assigned  # the first real cell of a window always wins
        if first_here.any():
            better = ctx.emit1("LogicalOr", [better, ctx.const(first_here.reshape(1, 1, *out))])
        assigned = assigned | inside
        best = ctx.emit1("SelectV2", [better, piece, best])
        best_idx = ctx.emit1("SelectV2", [better, idx, best_idx])
    assert best is not None and best_idx is not None
    return [ctx.emit1("Identity", [best]), ctx.emit1("Identity", [best_idx])]


def _pool_taps(node: OnnxNode, ctx: ParseContext, x: Port, kind: str) -> Port:
    """N-D (dilated) pooling as one strided slice per kernel tap, following ONNX's reference
    geometry: output size (ceil mode drops a window starting past the padded input), extra
    padding for the ceil overflow, cells past the declared padding ignored."""
    dims = ctx.shape(x)
    sp = list(dims[2:])
    n = len(sp)
    kernel = list(node.attr("kernel_shape") or [])
    geo = _spatial(node, ctx, x, kernel)
    strides, dil = geo["strides"], geo["dilations"]
    pb, pe = geo["begin"], geo["end"]
    ceil_mode = bool(node.attr("ceil_mode", 0))
    if ceil_mode and node.attr("auto_pad", "NOTSET") != "NOTSET":
        raise ctx.error("ceil_mode is not supported with auto_pad")
    out, eb, ee = [], [], []
    for i in range(n):
        span = (kernel[i] - 1) * dil[i] + 1
        size = (sp[i] + pb[i] + pe[i] - span) / strides[i] + 1
        o = int(np.ceil(size)) if ceil_mode else int(np.floor(size))
        if ceil_mode and (o - 1) * strides[i] >= sp[i] + pb[i]:
            o -= 1
        if o <= 0:
            raise ctx.error("the pooling window is larger than the padded input", SHAPE_INVALID)
        extra = (o - 1) * strides[i] + span - sp[i] - pb[i] - pe[i]
        b, e = pb[i], pe[i]
        if extra > 0:
            b += extra // 2
            e += extra - extra // 2
        out.append(o)
        eb.append(b)
        ee.append(e)
    dt = ctx.dtype(x)
    if kind == "max":
        fill = -np.inf if dt in FLOATS else np.iinfo(dt.np_dtype).min
    else:
        if dt not in FLOATS:
            raise ctx.unsupported(f"AveragePool of {dt.short_name}")
        fill = 0
    padded = x
    if any(eb) or any(ee):
        pads = [0, 0, 0, 0] + [v for i in range(n) for v in (eb[i], ee[i])]
        padded = ctx.emit1(
            "PadV3",
            [x, ctx.const(np.array(pads, np.int64)), ctx.scalar(fill, dt)],
            {"mode": "constant", "paddings_contiguous": True},
        )
    limit = [sp[i] + pb[i] + pe[i] for i in range(n)]
    include_pad = bool(node.attr("count_include_pad", 0))
    # The window is separable: reduce the taps of one spatial axis at a time (k₁+k₂+… slices
    # instead of k₁·k₂·…). Cells at or past the declared padding (ceil-mode overflow) are
    # masked out; the average divides by the per-axis counts' product.
    cur = padded
    ctx.reserve(8 * int(np.prod(out, dtype=object)), "AveragePool counts")
    count = np.ones(out, dtype=np.float64)
    for i in range(n):
        axis = 2 + i
        dims_now = list(ctx.shape(cur))
        acc: Port | None = None
        axis_count = np.zeros(out[i], dtype=np.float64)
        for t in range(kernel[i]):
            start = t * dil[i]
            pos = start + strides[i] * np.arange(out[i])
            keep = pos < limit[i]
            data = (pos >= eb[i]) & (pos < eb[i] + sp[i])
            if not keep.any():
                continue
            axis_count += keep if include_pad else keep & data
            begin = [0] * len(dims_now)
            stop = list(dims_now)
            step = [1] * len(dims_now)
            begin[axis] = start
            stop[axis] = start + (out[i] - 1) * strides[i] + 1
            step[axis] = strides[i]
            piece = ctx.emit1(
                "StridedSlice",
                [
                    cur,
                    ctx.const(np.array(begin, np.int64)),
                    ctx.const(np.array(stop, np.int64)),
                    ctx.const(np.array(step, np.int64)),
                ],
            )
            if not keep.all():
                shape = [1] * len(dims_now)
                shape[axis] = out[i]
                piece = ctx.emit1(
                    "SelectV2", [ctx.const(keep.reshape(shape)), piece, ctx.scalar(fill, dt)]
                )
            acc = (
                piece
                if acc is None
                else ctx.emit1("Maximum" if kind == "max" else "Add", [acc, piece])
            )
        assert acc is not None
        cur = acc
        shape = [1] * n
        shape[i] = out[i]
        count = count * axis_count.reshape(shape)
    if kind == "max":
        return cur
    if (count == 0).any():
        raise ctx.unsupported("an average window with no cells to count")
    return ctx.emit1("RealDiv", [cur, ctx.const(count.reshape(1, 1, *out).astype(dt.np_dtype))])


def _global(node: OnnxNode, ctx: ParseContext, op: str) -> list[Port]:
    x = node.input(0)
    rank = ctx.rank(x)
    if rank < 3:
        raise ctx.error("input must be (N, C, spatial...)", SHAPE_INVALID)
    axes = ctx.const(np.arange(2, rank, dtype=np.int64))
    return [ctx.emit1(op, [x, axes], {"keep_dims": True, "noop_with_empty_axes": False})]


@onnx_op("GlobalAveragePool", needs=("ReduceMean",), attrs=(), inputs=1)
def global_average_pool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GlobalAveragePool → ReduceMean over the spatial axes (kept)."""
    return _global(node, ctx, "ReduceMean")


@onnx_op("GlobalMaxPool", needs=("ReduceMax",), attrs=(), inputs=1)
def global_max_pool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GlobalMaxPool → ReduceMax over the spatial axes (kept)."""
    return _global(node, ctx, "ReduceMax")


@onnx_op(
    "LpPool",
    needs=("Conv2D", "Abs", "Pow"),
    attrs=("auto_pad", "ceil_mode", "dilations", "kernel_shape", "p", "pads", "strides"),
    inputs=1,
)
def lp_pool(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LpPool → (depthwise Conv2D of |x|^p with a ones filter)^(1/p)."""
    x = node.input(0)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.unsupported(f"LpPool of {ctx.dtype(x).short_name}")
    kernel = list(node.attr("kernel_shape") or [])
    geo = _spatial(node, ctx, x, kernel)
    if node.attr("ceil_mode", 0):
        raise ctx.unsupported("LpPool with ceil_mode")
    p = float(node.attr("p", 2))
    x2, was = _to_2d(ctx, x)
    c = ctx.shape(x2)[1]
    k = _lift(kernel, 1)
    begin, end = _lift(geo["begin"], 0), _lift(geo["end"], 0)
    ax = ctx.emit1("Abs", [x2])
    if p == 1.0:
        powed = ax
    elif p == 2.0:
        powed = ctx.emit1("Mul", [ax, ax])
    else:
        powed = ctx.emit1("Pow", [ax, ctx.scalar(p, x)])
    ctx.reserve(c * k[0] * k[1] * ctx.dtype(x).np_dtype.itemsize, "the LpPool filter")
    ones = ctx.const(np.ones((c, 1, k[0], k[1]), dtype=ctx.dtype(x).np_dtype))
    s = ctx.emit1(
        "Conv2D",
        [powed, ones],
        {
            "strides": [1, 1, *_lift(geo["strides"], 1)],
            "dilations": [1, 1, *_lift(geo["dilations"], 1)],
            "pads": [begin[0], end[0], begin[1], end[1]],
            "groups": c,
            "data_format": "NCHW",
        },
    )
    if p == 1.0:
        y = s
    elif p == 2.0:
        y = ctx.emit1("Sqrt", [s])
    else:
        y = ctx.emit1("Pow", [s, ctx.scalar(1.0 / p, x)])
    return [_back(ctx, y, was)]


# ----- normalization --------------------------------------------------------------------------


@onnx_op(
    "BatchNormalization",
    needs=("BNInference",),
    attrs=("epsilon", "momentum", "training_mode", "is_test", "spatial"),
    inputs=5,
)
def batch_norm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """BatchNormalization (inference) → BNInference with scale and offset."""
    x, scale, bias, mean, var = (node.input(i) for i in range(5))
    if node.attr("training_mode", 0):
        return _batch_norm_training(node, ctx, x, scale, bias, mean, var)
    if node.attr("spatial", 1) != 1:
        raise ctx.unsupported("spatial=0 (per-activation statistics)")
    if any(node.wants_output(i) for i in range(1, 5)):
        raise ctx.unsupported("BatchNormalization's running statistics outputs")
    if ctx.rank(x) < 2:
        raise ctx.error("input must be at least 2-D", SHAPE_INVALID)
    dt = ctx.dtype(x)
    params = [ctx.cast(p, dt) for p in (mean, var, scale, bias)]
    momentum = ctx.scalar(1.0, dt)
    momentum = ctx.reshape(momentum, (1,))
    y = ctx.emit1(
        "BNInference",
        [x, params[0], params[1], momentum, params[2], params[3]],
        {"epsilon": float(node.attr("epsilon", 1e-5))},
    )
    return [y]


def _batch_norm_training(node: OnnxNode, ctx: ParseContext, x, scale, bias, mean, var) -> list:
    """training_mode=1: normalize with the batch's mean and (biased) variance over every axis
    but 1; the running statistics outputs blend the given ones with the batch's by momentum."""
    rank = ctx.rank(x)
    if rank < 2:
        raise ctx.error("input must be at least 2-D", SHAPE_INVALID)
    dt = ctx.dtype(x)
    axes = [a for a in range(rank) if a != 1]
    b_mean = ctx.emit1("ReduceMeanD", [x], {"axes": axes, "keep_dims": True})
    centered = ctx.emit1("Sub", [x, b_mean])
    b_var = ctx.emit1(
        "ReduceMeanD", [ctx.emit1("Mul", [centered, centered])], {"axes": axes, "keep_dims": True}
    )
    denom = ctx.emit1(
        "Sqrt", [ctx.emit1("Add", [b_var, ctx.scalar(node.attr("epsilon", 1e-5), dt)])]
    )
    per_channel = (-1,) + (1,) * (rank - 2)
    y = ctx.emit1("Div", [centered, denom])
    y = ctx.emit1("Mul", [y, ctx.reshape(ctx.cast(scale, dt), per_channel)])
    y = ctx.emit1("Add", [y, ctx.reshape(ctx.cast(bias, dt), per_channel)])
    momentum = float(node.attr("momentum", 0.9))
    outs: list = [y]
    for given, batch in ((mean, b_mean), (var, b_var)):
        flat = ctx.reshape(batch, (-1,))
        flat = ctx.cast(flat, ctx.dtype(given))
        kept = ctx.emit1("Mul", [given, ctx.scalar(momentum, given)])
        outs.append(
            ctx.emit1("Add", [kept, ctx.emit1("Mul", [flat, ctx.scalar(1 - momentum, given)])])
        )
    return outs[: max(node.num_outputs, 1)]


@onnx_op("InstanceNormalization", needs=("InstanceNorm",), attrs=("epsilon",), inputs=3)
def instance_norm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """InstanceNormalization → InstanceNorm (channel axis 1)."""
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    fmt = {3: "NCHW", 4: "NCHW", 5: "NCDHW"}.get(ctx.rank(x), "ND")
    y = ctx.emit(
        "InstanceNorm",
        [x, scale, bias],
        {"data_format": fmt, "epsilon": float(node.attr("epsilon", 1e-5))},
    )
    return [y[0]]


def _stash(ctx: ParseContext, node: OnnxNode, x: Port) -> tuple[Port, DataType]:
    """x in the stash type (float32 unless stash_type says otherwise) and x's own type."""
    dt = ctx.dtype(x)
    stash = node.attr("stash_type", 1)
    if stash == 1 and dt in (DataType.DT_FLOAT16,):
        return ctx.cast(x, F32), dt
    if stash not in (1, 11):
        raise ctx.unsupported(f"stash_type {stash}")
    if stash == 11 and dt != DataType.DT_DOUBLE:
        return ctx.cast(x, DataType.DT_DOUBLE), dt
    return x, dt


@onnx_op(
    "LayerNormalization", needs=("LayerNorm",), attrs=("axis", "epsilon", "stash_type"), inputs=3
)
def layer_norm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LayerNormalization → LayerNorm (+ Rsqrt for the InvStdDev output)."""
    x, scale, bias = node.input(0), node.input(1), node.opt(2)
    rank = ctx.rank(x)
    axis = norm_axis(ctx, node.attr("axis", -1), rank)
    eps = float(node.attr("epsilon", 1e-5))
    norm_shape = ctx.shape(x)[axis:]
    xs, dt = _stash(ctx, node, x)
    sdt = ctx.dtype(xs)
    if ctx.shape(scale) != norm_shape:
        scale = ctx.emit1("BroadcastTo", [scale, ctx.const(np.array(norm_shape, np.int64))])
    if bias is None:
        bias = ctx.const(np.zeros(norm_shape, dtype=sdt.np_dtype))
    elif ctx.shape(bias) != norm_shape:
        bias = ctx.emit1("BroadcastTo", [bias, ctx.const(np.array(norm_shape, np.int64))])
    y, mean, var = ctx.emit(
        "LayerNorm",
        [xs, ctx.cast(scale, sdt), ctx.cast(bias, sdt)],
        {"begin_norm_axis": axis, "begin_params_axis": axis, "epsilon": eps},
    )
    outs: list[Port | None] = [ctx.cast(y, dt)]
    if node.wants_output(1):
        outs.append(mean)
    else:
        outs.append(None)
    if node.wants_output(2):
        inv = ctx.emit1("Rsqrt", [ctx.emit1("Add", [var, ctx.scalar(eps, sdt)])])
        outs.append(inv)
    return outs


@onnx_op(
    "GroupNormalization",
    needs=("GroupNorm",),
    attrs=("epsilon", "num_groups", "stash_type"),
    inputs=3,
)
def group_norm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GroupNormalization → GroupNorm (opset 18 per-group scale/bias expanded to channels)."""
    x, scale, bias = node.input(0), node.input(1), node.input(2)
    dims = ctx.shape(x)
    g = node.attr("num_groups")
    c = dims[1]
    if not g or c % g:
        raise ctx.error(f"num_groups {g} must divide the {c} channels", SHAPE_INVALID)
    xs, dt = _stash(ctx, node, x)
    sdt = ctx.dtype(xs)
    if node.opset < 21 and ctx.shape(scale) == (g,) and g != c:
        picks = ctx.const(np.repeat(np.arange(g), c // g).astype(np.int64))
        axis0 = ctx.const(np.array(0, np.int32))
        scale = ctx.emit1("GatherV2", [scale, picks, axis0])
        bias = ctx.emit1("GatherV2", [bias, picks, axis0])
    y = ctx.emit(
        "GroupNorm",
        [xs, ctx.cast(scale, sdt), ctx.cast(bias, sdt)],
        {
            "num_groups": g,
            "data_format": "NCHW",
            "eps": float(node.attr("epsilon", 1e-5)),
            "is_training": True,
        },
    )
    return [ctx.cast(y[0], dt)]


@onnx_op(
    "RMSNormalization",
    needs=("ReduceMean", "Mul", "Add", "Rsqrt"),
    attrs=("axis", "epsilon", "stash_type"),
    inputs=2,
)
def rms_norm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """RMSNormalization → x · Rsqrt(ReduceMean(x², axes ≥ axis) + eps) · scale."""
    x, scale = node.input(0), node.input(1)
    rank = ctx.rank(x)
    axis = norm_axis(ctx, node.attr("axis", -1), rank)
    eps = float(node.attr("epsilon", 1e-5))
    xs, dt = _stash(ctx, node, x)
    sdt = ctx.dtype(xs)
    sq = ctx.emit1("Mul", [xs, xs])
    ms = ctx.emit1(
        "ReduceMean",
        [sq, ctx.const(np.arange(axis, rank, dtype=np.int64))],
        {"keep_dims": True, "noop_with_empty_axes": False},
    )
    inv = ctx.emit1("Rsqrt", [ctx.emit1("Add", [ms, ctx.scalar(eps, sdt)])])
    normed = ctx.cast(ctx.emit1("Mul", [xs, inv]), dt)
    return [ctx.emit1("Mul", [normed, scale])]


@onnx_op("LRN", needs=("LRN",), attrs=("alpha", "beta", "bias", "size"), inputs=1)
def lrn(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LRN (odd size) → LRN with depth_radius (size-1)/2 and alpha/size."""
    x = node.input(0)
    size = node.attr("size")
    if not size or size % 2 == 0:
        raise ctx.unsupported(f"LRN with an even size ({size}): the window is asymmetric")
    if ctx.rank(x) != 4:
        raise ctx.unsupported("LRN of a non-4-D input")
    attrs = {
        "depth_radius": (size - 1) // 2,
        "alpha": float(node.attr("alpha", 1e-4)) / size,
        "beta": float(node.attr("beta", 0.75)),
        "bias": float(node.attr("bias", 1.0)),
    }
    return [ctx.emit1("LRN", [x], attrs)]


@onnx_op(
    "LpNormalization",
    needs=("ReduceSum", "Abs", "RealDiv", "Sqrt", "Mul", "SelectV2"),
    attrs=("axis", "p"),
    inputs=1,
)
def lp_normalization(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LpNormalization → x / ReduceSum(|x|) (p=1) or x / Sqrt(ReduceSum(x²)) (p=2)."""
    x = node.input(0)
    axis = norm_axis(ctx, node.attr("axis", -1), ctx.rank(x))
    p = node.attr("p", 2)
    axes = ctx.const(np.array([axis], np.int64))
    kw = {"keep_dims": True, "noop_with_empty_axes": False}
    if p == 1:
        norm = ctx.emit1("ReduceSum", [ctx.emit1("Abs", [x]), axes], kw)
    elif p == 2:
        norm = ctx.emit1("Sqrt", [ctx.emit1("ReduceSum", [ctx.emit1("Mul", [x, x]), axes], kw)])
    else:
        raise ctx.error(f"p must be 1 or 2, got {p}")
    # A zero norm gives 0 (not NaN), as ONNX Runtime and the ONNX test data do.
    zero = ctx.emit1("Equal", [norm, ctx.scalar(0, x)])
    return [ctx.emit1("SelectV2", [zero, ctx.scalar(0, x), ctx.emit1("RealDiv", [x, norm])])]


@onnx_op(
    "MeanVarianceNormalization",
    needs=("ReduceMean", "Sub", "Mul", "Sqrt", "RealDiv"),
    attrs=("axes",),
    inputs=1,
)
def mean_variance_normalization(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """MeanVarianceNormalization → (x - mean) / (sqrt(mean(x²) - mean²) + 1e-9)."""
    x = node.input(0)
    rank = ctx.rank(x)
    axes = node.attr("axes", [0, 2, 3])
    axes_c = ctx.const(np.array([norm_axis(ctx, a, rank) for a in axes], np.int64))
    kw = {"keep_dims": True, "noop_with_empty_axes": False}
    mean = ctx.emit1("ReduceMean", [x, axes_c], kw)
    mean_sq = ctx.emit1("ReduceMean", [ctx.emit1("Mul", [x, x]), axes_c], kw)
    var = ctx.emit1("Sub", [mean_sq, ctx.emit1("Mul", [mean, mean])])
    std = ctx.emit1("Add", [ctx.emit1("Sqrt", [var]), ctx.scalar(1e-9, x)])
    return [ctx.emit1("RealDiv", [ctx.emit1("Sub", [x, mean]), std])]


# ----- matmul and friends ---------------------------------------------------------------------


def matmul(ctx: ParseContext, a: Port, b: Port) -> Port:
    """NumPy matmul semantics: 1-D operands promoted then squeezed; batch dims broadcast."""
    ad, bd = ctx.shape(a), ctx.shape(b)
    if not ad or not bd:
        raise ctx.error("MatMul operands must be at least 1-D", SHAPE_INVALID)
    a2 = ctx.reshape(a, (1, ad[0])) if len(ad) == 1 else a
    b2 = ctx.reshape(b, (bd[0], 1)) if len(bd) == 1 else b
    if ctx.rank(a2) == 2 and ctx.rank(b2) == 2:
        y = ctx.emit1("MatMulV2", [a2, b2])
    else:
        y = ctx.emit1("BatchMatMulV2", [a2, b2])
    yd = list(ctx.shape(y))
    if len(ad) == 1:
        del yd[-2]
    if len(bd) == 1:
        del yd[-1]
    return ctx.reshape(y, yd)


@onnx_op("MatMul", needs=("MatMulV2", "BatchMatMulV2"), attrs=(), inputs=2)
def matmul_op(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """MatMul → MatMulV2 (2-D) or BatchMatMulV2 (batched), 1-D operands promoted."""
    return [matmul(ctx, node.input(0), node.input(1))]


@onnx_op(
    "Gemm", needs=("MatMulV2", "Mul", "Add"), attrs=("alpha", "beta", "transA", "transB"), inputs=3
)
def gemm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Gemm → MatMulV2(transposes) · alpha + beta · C."""
    a, b, c = node.input(0), node.input(1), node.opt(2)
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    if ctx.rank(a) != 2 or ctx.rank(b) != 2:
        raise ctx.error("A and B must be 2-D", SHAPE_INVALID)
    y = ctx.emit1(
        "MatMulV2",
        [a, b],
        {
            "transpose_x1": bool(node.attr("transA", 0)),
            "transpose_x2": bool(node.attr("transB", 0)),
        },
    )
    if alpha != 1.0:
        y = ctx.emit1("Mul", [y, ctx.scalar(alpha, y)])
    if c is not None and beta != 0.0:
        if beta != 1.0:
            c = ctx.emit1("Mul", [c, ctx.scalar(beta, c)])
        product = y
        y = ctx.emit1("Add", [y, c])
        if ctx.shape(y) != ctx.shape(product):
            raise ctx.error("C must broadcast to the (M, N) result", SHAPE_INVALID)
    return [y]


# ----- softmax family ---------------------------------------------------------------------------


def _softmax_like(node: OnnxNode, ctx: ParseContext, op: str) -> list[Port]:
    x = node.input(0)
    dims = ctx.shape(x)
    rank = len(dims)
    if node.opset < 13:
        axis = norm_axis(ctx, node.attr("axis", 1), rank)
        rows = int(np.prod(dims[:axis], dtype=np.int64))
        cols = int(np.prod(dims[axis:], dtype=np.int64))
        flat = ctx.reshape(x, (rows, cols))
        y = _apply(ctx, op, flat, 1)
        return [ctx.reshape(y, dims) if ctx.shape(y) != dims else y]
    axis = norm_axis(ctx, node.attr("axis", -1), rank)
    return [_apply(ctx, op, x, axis)]


def _apply(ctx: ParseContext, op: str, x: Port, axis: int) -> Port:
    if op == "Hardmax":
        dims = ctx.shape(x)
        idx = ctx.emit1(
            "ArgMaxV2",
            [x, ctx.const(np.array([axis], np.int64))],
            {"dtype": int(DataType.DT_INT64)},
        )
        return ctx.emit1(
            "OneHot",
            [idx, ctx.const(np.array(dims[axis], np.int32)), ctx.scalar(1, x), ctx.scalar(0, x)],
            {"axis": axis},
        )
    return ctx.emit1(op, [x], {"axes": [axis]})


@onnx_op("Softmax", needs=("SoftmaxV2", "Reshape"), attrs=("axis",), inputs=1)
def softmax(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Softmax → SoftmaxV2 (before opset 13: on the 2-D view split at axis)."""
    return _softmax_like(node, ctx, "SoftmaxV2")


@onnx_op("LogSoftmax", needs=("LogSoftmaxV2", "Reshape"), attrs=("axis",), inputs=1)
def log_softmax(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LogSoftmax → LogSoftmaxV2 (before opset 13: on the 2-D view)."""
    return _softmax_like(node, ctx, "LogSoftmaxV2")


@onnx_op("Hardmax", needs=("ArgMaxV2", "OneHot", "Reshape"), attrs=("axis",), inputs=1)
def hardmax(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Hardmax → OneHot(ArgMaxV2(x)) (first maximum wins, as ONNX)."""
    return _softmax_like(node, ctx, "Hardmax")


@onnx_op(
    "Dropout",
    needs=("Identity",),
    shape_inputs=lambda v: (1, 2) if v >= 12 else (),
    attrs=("ratio", "seed", "is_test"),
    inputs=3,
)
def dropout(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Dropout in inference → Identity (mask: all true); training with ratio > 0 refused."""
    x = node.input(0)
    training = False
    if node.opset >= 12 and node.has_input(2):
        training = bool(ctx.require_value(node.input(2), "training_mode").reshape(-1)[0])
    elif node.opset < 7 and not node.attr("is_test", 0):
        training = True
    ratio = 0.5
    if node.opset >= 12 and node.has_input(1):
        ratio = float(ctx.require_value(node.input(1), "ratio").reshape(-1)[0])
    elif node.opset < 12:
        ratio = float(node.attr("ratio", 0.5))
    if training and ratio != 0.0:
        raise ctx.unsupported("Dropout in training mode (random masks)")
    outs: list[Port | None] = [ctx.emit1("Identity", [x])]
    if node.wants_output(1):
        ctx.reserve(int(np.prod(ctx.shape(x), dtype=object)), "the mask")
        mask = np.ones(ctx.shape(x), dtype=bool)
        outs.append(ctx.emit1("Identity", [ctx.const(mask)]))
    return outs
