"""Op family nn, padding: PadV3 (ops layer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import TensorDesc
from openge.ops.common import (
    ALL_TYPES,
    INDEX_TYPES,
    as_int_list,
    check_dtype,
    desc_like,
)
from openge.ops.nn_common import (
    _opt,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

# ----- PadV3 --------------------------------------------------------------------------------

_NP_PAD_MODE = {"reflect": "reflect", "edge": "edge", "symmetric": "symmetric", "circular": "wrap"}


def _pad_pairs(values: Sequence[int], rank: int, contiguous: bool) -> list[tuple[int, int]]:
    if contiguous:
        return [(values[2 * i], values[2 * i + 1]) for i in range(rank)]
    return [(values[i], values[rank + i]) for i in range(rank)]


def _infer_pad_v3(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x = ctx.input(0).shape
    rank = len(x)
    values = as_int_list(ctx, ctx.require_const(1, "paddings"), "paddings")
    if len(values) != 2 * rank:
        raise ctx.error(
            f"paddings has {len(values)} values; a rank-{rank} x needs {2 * rank} "
            "(a begin and an end per axis)",
            SHAPE_INVALID,
        )
    mode = ctx.attrs["mode"]
    if ctx.has_input(2):
        check_dtype(ctx, 2, ALL_TYPES)
        if ctx.input(2).numel not in (1, -1):
            raise ctx.error(
                f"constant_values must hold one value, got shape {list(ctx.input(2).shape)}",
                SHAPE_INVALID,
            )
    out = []
    for axis, (b, e) in enumerate(_pad_pairs(values, rank, ctx.attrs["paddings_contiguous"])):
        d = x[axis]
        if d < 0:
            out.append(-1)
            continue
        if d + b + e < 0 or d + min(b, 0) + min(e, 0) < 0:
            raise ctx.error(
                f"paddings ({b}, {e}) on axis {axis} crop more than its {d} elements",
                SHAPE_INVALID,
            )
        kept = d + min(b, 0) + min(e, 0)
        grow = max(b, 0), max(e, 0)
        limit = {"reflect": kept - 1, "symmetric": kept, "circular": kept}.get(mode)
        if limit is not None and max(grow) > limit:
            raise ctx.error(
                f"mode {mode} can pad at most {max(limit, 0)} on axis {axis} (size {kept}); "
                f"got ({b}, {e})",
                SHAPE_INVALID,
            )
        if mode == "edge" and kept == 0 and max(grow) > 0:
            raise ctx.error(f"mode edge cannot pad the empty axis {axis}", SHAPE_INVALID)
        out.append(d + b + e)
    return [desc_like(ctx, 0, shape=tuple(out))]


def _pad_v3_kernel(inputs, outputs, *, mode, paddings_contiguous):
    x, y = inputs[0], outputs[0]
    pairs = _pad_pairs(
        [int(v) for v in np.asarray(inputs[1]).reshape(-1)], x.ndim, paddings_contiguous
    )
    crop = tuple(
        slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(x.shape, pairs, strict=True)
    )
    xc = x[crop]
    grow = [(max(b, 0), max(e, 0)) for b, e in pairs]
    if mode == "constant":
        values = _opt(inputs, 2)
        y.fill(0 if values is None else np.asarray(values).reshape(-1)[0])
        inner = tuple(slice(b, b + d) for d, (b, _) in zip(xc.shape, grow, strict=True))
        y[inner] = xc
    else:
        _store(y, np.pad(xc, grow, mode=_NP_PAD_MODE[mode]))


SCHEMAS = [
    OpSchema(
        "PadV3",
        inputs=(
            Input("x"),
            Input("paddings", doc="constant int tensor, 2 values per axis"),
            Input("constant_values", optional=True),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr(
                "mode",
                AttrType.STR,
                "constant",
                choices=("constant", "reflect", "edge", "symmetric", "circular"),
            ),
            Attr(
                "paddings_contiguous",
                AttrType.BOOL,
                True,
                doc="True: [b0, e0, b1, e1, …]; False: [b0, b1, …, e0, e1, …]",
            ),
        ),
        infer=_infer_pad_v3,
        kernel=_pad_v3_kernel,
        doc="Pads (negative values crop) each axis with a constant, a reflection, the edge "
        "value, a symmetric copy or wrap-around (circular).",
        onnx="Pad",
    ),
]

__all__ = ["SCHEMAS"]
