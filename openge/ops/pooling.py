"""Op family nn, pooling: MaxPoolV3 and AvgPoolV2 (incl. global pooling) (ops layer)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import TensorDesc
from openge.ops.common import (
    FLOAT_TYPES,
    check_dtype,
    desc_like,
)
from openge.ops.nn_common import (
    _FORMATS_2D,
    _MAXPOOL_TYPES,
    _acc_dtype,
    _hw_axes,
    _hw_pair,
    _known,
    _pads4,
    _Phases,
    _rank,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

# ----- pooling --------------------------------------------------------------------------------


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, ceil_mode: bool) -> int:
    span = size + p0 + p1 - k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p0:  # the last window must start inside the input
        out -= 1
    return out


def _pool_geometry(
    h: int,
    w: int,
    ksize: Sequence[int],
    strides: Sequence[int],
    padding_mode: str,
    pads: Sequence[int],
    fmt: str,
    global_pooling: bool,
    ceil_mode: bool,
) -> tuple[int, int, int, int, int, int, int, int, int, int]:
    """(kh, kw, sh, sw, top, bottom, left, right, oh, ow) of a validated pooling node."""
    if global_pooling:
        return h, w, 1, 1, 0, 0, 0, 0, 1, 1
    ha, wa = _hw_axes(fmt)
    kh, kw, sh, sw = ksize[ha], ksize[wa], strides[ha], strides[wa]
    if padding_mode == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        th = max((oh - 1) * sh + kh - h, 0)
        tw = max((ow - 1) * sw + kw - w, 0)
        return kh, kw, sh, sw, th // 2, th - th // 2, tw // 2, tw - tw // 2, oh, ow
    if padding_mode == "VALID":
        pt = pb = pl = pr = 0
    else:
        pt, pb, pl, pr = pads
    oh = _pool_out(h, kh, sh, pt, pb, ceil_mode)
    ow = _pool_out(w, kw, sw, pl, pr, ceil_mode)
    return kh, kw, sh, sw, pt, pb, pl, pr, oh, ow


def _infer_pool(ctx: InferContext) -> Sequence[TensorDesc]:
    allowed = _MAXPOOL_TYPES if ctx.op_type == "MaxPoolV3" else FLOAT_TYPES
    check_dtype(ctx, 0, allowed)
    x = _rank(ctx, 0, 4, "x")
    a = ctx.attrs
    fmt, mode = a["data_format"], a["padding_mode"]
    ha, wa = _hw_axes(fmt)
    h, w = x[ha], x[wa]
    if a["global_pooling"]:
        oh = ow = 1
    else:
        kh, kw = _hw_pair(ctx, "ksize", fmt, 1)
        _hw_pair(ctx, "strides", fmt, 1)
        pt, pb, pl, pr = _pads4(ctx)
        if a["ceil_mode"] and mode != "CALCULATED":
            raise ctx.error(f"ceil_mode=True needs padding_mode CALCULATED, not {mode}")
        if mode == "CALCULATED" and (max(pt, pb) >= kh or max(pl, pr) >= kw):
            raise ctx.error(
                f"pads {list(a['pads'])} must be smaller than the kernel ({kh}, {kw}); a window "
                "that covers only padding has no value"
            )
        if ctx.op_type == "AvgPoolV2" and a["divisor_override"] < 0:
            raise ctx.error(f"attr divisor_override = {a['divisor_override']} must be ≥ 0")
        oh = ow = -1
        if _known(h, w):
            if mode == "CALCULATED":
                eff_h, eff_w = h + pt + pb, w + pl + pr
            elif mode == "VALID":
                eff_h, eff_w = h, w
            else:
                eff_h, eff_w = kh, kw  # SAME pads as needed
            if eff_h < kh or eff_w < kw:
                raise ctx.error(
                    f"the kernel ({kh}, {kw}) is larger than the padded input "
                    f"({eff_h}, {eff_w}) with padding_mode {mode}",
                    SHAPE_INVALID,
                )
            geo = _pool_geometry(
                h, w, a["ksize"], a["strides"], mode, a["pads"], fmt, False, a["ceil_mode"]
            )
            oh, ow = geo[8], geo[9]
        elif h >= 0 or w >= 0:
            raise ctx.error("pooling needs both H and W known (or both unknown)", SHAPE_INVALID)
    shape = list(x)
    shape[ha], shape[wa] = oh, ow
    return [desc_like(ctx, 0, shape=tuple(shape))]


def _max_pool_kernel(
    inputs,
    outputs,
    *,
    ksize,
    strides,
    padding_mode,
    pads,
    data_format,
    global_pooling,
    ceil_mode,
):
    x, y = inputs[0], outputs[0]
    ha, wa = _hw_axes(data_format)
    if global_pooling:
        _store(y, np.max(x, axis=(ha, wa), keepdims=True))
        return
    kh, kw, sh, sw, pt, _, pl, _, oh, ow = _pool_geometry(
        x.shape[ha],
        x.shape[wa],
        ksize,
        strides,
        padding_mode,
        pads,
        data_format,
        False,
        ceil_mode,
    )
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    if data_format == "NCHW" and y.size:
        _store(y, _pool_flat(x, (kh, kw), (sh, sw), pt, pl, oh, ow, fill, x.dtype, np.maximum))
        return
    _store(
        y,
        _separable_pool(x, data_format, kh, kw, sh, sw, pt, pl, oh, ow, fill, x.dtype, np.maximum),
    )


@functools.lru_cache(maxsize=256)
def _pool_counts(
    h: int,
    w: int,
    k: tuple[int, int],
    s: tuple[int, int],
    pads: tuple[int, int, int, int],
    out: tuple[int, int],
    exclusive: bool,
    dtype: np.dtype,
) -> np.ndarray:
    """The (oh, ow) divisors of an average pooling (read-only, cached per geometry)."""
    ch = _axis_counts(h, k[0], s[0], pads[0], pads[1], out[0], exclusive)
    cw = _axis_counts(w, k[1], s[1], pads[2], pads[3], out[1], exclusive)
    counts = np.multiply.outer(ch, cw).astype(dtype)
    counts.flags.writeable = False
    return counts


def _pool_flat(
    x: np.ndarray,
    k: tuple[int, int],
    s: tuple[int, int],
    top: int,
    left: int,
    oh: int,
    ow: int,
    fill: float | int,
    dtype: np.dtype,
    op: np.ufunc,
) -> np.ndarray:
    """NCHW ``op``-reduction over the kh×kw window at *every* position of the ``fill``-padded
    input, flattened (each step one long 1-D ufunc call: along W, then along H), returned as the
    strided (N, C, oh, ow) view of the windows the pooling keeps. Windows that run past a row's
    end wrap into the next row; none of those is kept."""
    (kh, kw), (sh, sw) = k, s
    n, c, h, w = x.shape
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw  # the padded extent the windows cover
    if top == left == 0 and hp <= h and wp <= w and x.dtype == dtype:
        src = np.ascontiguousarray(x).reshape(-1)  # the windows lie inside x: no padding
        hp, width = h, w
    else:
        width = max(wp, left + w)
        hp = max(hp, top + h)
        buf = np.full((n, c, hp, width), fill, dtype=dtype)
        buf[:, :, top : top + h, left : left + w] = x
        src = buf.reshape(-1)
    size = src.size
    row = src
    if kw > 1:
        row = op(src[: size - kw + 1], src[1 : size - kw + 2])
        for j in range(2, kw):
            op(row, src[j : size - kw + 1 + j], out=row)
    length = row.size - (kh - 1) * width
    res = np.empty(size, dtype=dtype)
    out = res[:length]
    if kh > 1:
        op(row[:length], row[width : width + length], out=out)
        for i in range(2, kh):
            op(out, row[i * width : i * width + length], out=out)
    else:
        out[...] = row[:length]
    grid = res.reshape(n, c, hp, width)
    return grid[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def _separable_pool(
    x: np.ndarray,
    fmt: str,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pt: int,
    pl: int,
    oh: int,
    ow: int,
    fill: float | int,
    dtype: np.dtype,
    op: np.ufunc,
) -> np.ndarray:
    """``op``-reduction over every kh×kw window: along W per row phase, then along H."""
    ph = _Phases(x, fmt, pt, pl, oh, ow, (kh, kw), (sh, sw), (1, 1), fill, dtype)
    span = ph.length + (kh - 1) // sh * ph.wq
    rows: dict[int, np.ndarray] = {}
    for a in sorted({i % sh for i in range(kh)}):
        acc = ph.tap(a, 0, span) if kw == 1 else op(ph.tap(a, 0, span), ph.tap(a, 1, span))
        for j in range(2, kw):
            op(acc, ph.tap(a, j, span), out=acc)
        rows[a] = acc
    n = x.shape[0]
    c = x.shape[1] if fmt == "NCHW" else x.shape[3]
    res = ph.grid((n, c), dtype)
    out = ph.valid(res)
    views = []
    for i in range(kh):
        start = (i // sh) * ph.wq
        src = rows[i % sh]
        views.append(
            src[..., start : start + ph.length]
            if fmt == "NCHW"
            else (src[:, start : start + ph.length])
        )
    if kh == 1:
        np.copyto(out, views[0])
    else:
        op(views[0], views[1], out=out)
    for view in views[2:]:
        op(out, view, out=out)
    return ph.crop(res)


def _axis_counts(
    size: int, k: int, s: int, p0: int, p1: int, n: int, exclusive: bool
) -> np.ndarray:
    start = np.arange(n, dtype=np.int64) * s - p0
    end = start + k
    if exclusive:
        return np.minimum(end, size) - np.maximum(start, 0)
    return np.minimum(end, size + p1) - start


def _avg_pool_kernel(
    inputs,
    outputs,
    *,
    ksize,
    strides,
    padding_mode,
    pads,
    data_format,
    global_pooling,
    ceil_mode,
    exclusive,
    divisor_override,
):
    x, y = inputs[0], outputs[0]
    ha, wa = _hw_axes(data_format)
    acc = _acc_dtype(x.dtype)
    if global_pooling:
        total = np.sum(x, axis=(ha, wa), keepdims=True, dtype=acc)
        div = divisor_override or x.shape[ha] * x.shape[wa]
        _store(y, total / div)
        return
    h, w = x.shape[ha], x.shape[wa]
    kh, kw, sh, sw, pt, pb, pl, pr, oh, ow = _pool_geometry(
        h, w, ksize, strides, padding_mode, pads, data_format, False, ceil_mode
    )
    pads4 = (pt, pb, pl, pr)
    if data_format == "NCHW" and y.size:
        if divisor_override > 0:
            div: np.ndarray | int = divisor_override
        else:
            div = _pool_counts(h, w, (kh, kw), (sh, sw), pads4, (oh, ow), exclusive, acc)
        total = _pool_flat(x, (kh, kw), (sh, sw), pt, pl, oh, ow, 0, acc, np.add)
        np.divide(total, div, out=y, casting="unsafe")
        return
    total = _separable_pool(x, data_format, kh, kw, sh, sw, pt, pl, oh, ow, 0, acc, np.add)
    if divisor_override > 0:
        total /= divisor_override
    else:
        ch = _axis_counts(h, kh, sh, pt, pb, oh, exclusive)
        cw = _axis_counts(w, kw, sw, pl, pr, ow, exclusive)
        counts = np.multiply.outer(ch, cw).astype(acc)
        total /= counts if data_format == "NCHW" else counts[:, :, None]
    _store(y, total)


def _windows_nonempty(size: int, k: int, s: int, p: int, out: int) -> bool:
    starts = np.arange(out) * s - p
    return bool(np.all(np.maximum(starts, 0) < np.minimum(starts + k, size)))


#: Bytes of one work item's phase scratch up to which the compiled kernels run (a hostile or
#: odd geometry — huge pads and windows — keeps the NumPy kernel instead of a huge scratch).
MAX_SCRATCH = 64 << 20
#: Window taps (output elements × kh·kw) from which openge's threads share a pooling: the
#: team hands parts out in a few atomic operations, so a 13×13×256 3×3 pooling (~0.1 ms on a
#: core) is worth two.
TEAM_WORK = 1 << 18
#: Planes (N·C) from which a row-by-row pooling's threads share its planes, each part every
#: output row of its planes; fewer planes share bands of output rows of every plane. Bands
#: had two threads write each output plane, one cache line per plane passing between the
#: cores at the boundary (AVX-512 Zen 4 VM, two threads, medians of whole models against
#: bands in one process: squeezenet 0.94-0.95×, inception_v1 0.96-0.99×, inception_v2 0.98×,
#: resnet50, resnet18 and densenet121 0.99-1.00×; 128 × 55² → 27² 3×3 stride-2 max pooling
#: alone 100 → 66 µs, one thread 107 µs).
PLANES_SHARED = 16


def _compiled_pool(inputs, outputs, a: dict, average: bool) -> Callable[[], None] | None:
    """The compiled NCHW max / average pooling (openge.kernels.pooling's row kernels) bound
    to these arrays, or None (another layout or dtype, global pooling, a window holding only
    padding, or a scratch over MAX_SCRATCH)."""
    from openge.ops.compiled import launcher, load, warm, warm_drive

    x, y = inputs[0], outputs[0]
    if (
        a["data_format"] != "NCHW"
        or a["global_pooling"]
        or x is None
        or x.ndim != 4
        or x.dtype not in (np.float32, np.float64)
        or y.dtype != x.dtype
        or not x.flags.c_contiguous
        or not y.flags.c_contiguous
        or not y.size
    ):
        return None
    h, w = x.shape[2], x.shape[3]
    kh, kw, sh, sw, pt, pb, pl, pr, oh, ow = _pool_geometry(
        h,
        w,
        a["ksize"],
        a["strides"],
        a["padding_mode"],
        a["pads"],
        "NCHW",
        False,
        a["ceil_mode"],
    )
    if (oh, ow) != y.shape[2:] or not (
        _windows_nonempty(h, kh, sh, pt, oh) and _windows_nonempty(w, kw, sw, pl, ow)
    ):
        return None
    if min(kh, kw, sh, sw) < 1 or min(pt, pl) < 0:
        return None
    module = load("pooling")
    if module is None or module.scratch_bytes(oh, ow, kh, kw, sh, sw, x.itemsize) > MAX_SCRATCH:
        return None
    planes = x.shape[0] * x.shape[1]
    by_rows = module.row_path(h, w, oh, ow, kh, kw, sh, sw, pt, pl) and oh > 1
    if not average:
        args = (x, y, kh, kw, sh, sw, pt, pl)
    else:
        if a["divisor_override"] > 0:
            div = np.full((oh, ow), float(a["divisor_override"]), x.dtype)
        else:
            counts = (h, w, (kh, kw), (sh, sw), (pt, pb, pl, pr), (oh, ow))
            div = _pool_counts(*counts, a["exclusive"], x.dtype)
        div = np.ascontiguousarray(div, x.dtype)
        args = (x, y, div, kh, kw, sh, sw, pt, pl)
    # (kernel, its drive form sharing bands of rows, ... sharing whole planes): the row
    # kernels, their loops compiled for 3×3 windows at stride 2 where they apply, else the
    # plane-range kernels (which share planes)
    kind = "avg" if average else "max"
    if by_rows:
        rows = f"{kind}_pool_rows" + ("_3x3s2" if module.specialized(kh, kw, sh, sw) else "")
        names = (rows, rows + "_drive", rows + "_planes_drive")
    else:
        names = (f"{kind}_pool_range", None, f"{kind}_pool_drive")
    fn, bands_drive, planes_drive = (None if n is None else getattr(module, n) for n in names)
    if not by_rows:  # ranges of planes
        drive, total, whole_items = planes_drive, planes, (0, planes)
    elif planes >= PLANES_SHARED:  # whole planes per part, every row of each
        drive, total, whole_items = planes_drive, planes, (0, planes, 0, oh)
    else:  # bands of output rows of every plane
        drive, total, whole_items = bands_drive, oh, (0, oh)
        args = (*args, 0, planes)
    if not (warm(fn, *args, *whole_items) and warm_drive(drive, *args, total)):
        return None

    def whole(*call: Any) -> None:
        fn(*call, *whole_items)

    big = y.size * kh * kw >= TEAM_WORK and total > 1
    return launcher(whole, big, *args, driven=(drive, total))


def _worth_compiling(x: np.ndarray | None) -> bool:
    """A small model does not import numba for its poolings alone."""
    from openge.ops.compiled import worth_compiling

    return x is not None and worth_compiling(x.size)


def _prepare_max_pool(inputs, outputs, constant, **attrs):
    """MaxPoolV3's ``prepare``: the compiled NCHW kernel, or None."""
    if not _worth_compiling(inputs[0]):
        return None
    return _compiled_pool(inputs, outputs, attrs, average=False)


def _prepare_avg_pool(inputs, outputs, constant, **attrs):
    """AvgPoolV2's ``prepare``: the compiled NCHW kernel, or None."""
    if not _worth_compiling(inputs[0]):
        return None
    return _compiled_pool(inputs, outputs, attrs, average=True)


_POOL_ATTRS = (
    Attr("ksize", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("strides", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("padding_mode", AttrType.STR, "CALCULATED", choices=("CALCULATED", "SAME", "VALID")),
    Attr("pads", AttrType.LIST_INT, [0, 0, 0, 0], doc="[top, bottom, left, right]"),
    Attr("data_format", AttrType.STR, "NCHW", choices=_FORMATS_2D),
    Attr("global_pooling", AttrType.BOOL, False),
    Attr("ceil_mode", AttrType.BOOL, False),
)

SCHEMAS = [
    OpSchema(
        "MaxPoolV3",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=_POOL_ATTRS,
        infer=_infer_pool,
        kernel=_max_pool_kernel,
        prepare=_prepare_max_pool,
        doc="2-D max pooling; padded cells never win; ceil_mode drops a last window that would "
        "start in the end padding.",
        onnx="MaxPool / GlobalMaxPool",
    ),
    OpSchema(
        "AvgPoolV2",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            *_POOL_ATTRS,
            Attr(
                "exclusive",
                AttrType.BOOL,
                True,
                doc="True: padded cells are not counted in the divisor",
            ),
            Attr("divisor_override", AttrType.INT, 0, doc="> 0: fixed divisor"),
        ),
        infer=_infer_pool,
        kernel=_avg_pool_kernel,
        prepare=_prepare_avg_pool,
        doc="2-D average pooling; exclusive=True divides by the number of real cells, False "
        "by the window clipped to the padded input (PyTorch count_include_pad).",
        onnx="AveragePool / GlobalAveragePool",
    ),
]

__all__ = ["SCHEMAS"]
