"""Ops whose output shape depends on input values: NonZero, Unique, NonMaxSuppression — and
FrameworkOp, an original (ONNX) node converted only when its shapes are known at run time.

Inference reads the deciding input's value (``ctx.require_const``): in a static compile the
value is a constant; in a dynamic-shape model it is known when the runtime plans the shape (or
runs the node). When it is not known, inference raises ``ValueNeededError`` and the compiler makes
the model dynamic. Kernels recompute the result and check it fits the planned output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import INTERNAL_ERROR, SHAPE_INVALID, GeError
from openge.graph import DataType, TensorDesc
from openge.ops.common import ALL_TYPES, FLOAT_TYPES, INDEX_TYPES, check_dtype, normalize_axis
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output, Trait

# ----- helpers ---------------------------------------------------------------------------------


def _store(outputs: Sequence[np.ndarray | None], results: Sequence[np.ndarray], op: str) -> None:
    """Write data-dependent results into the planned outputs (GeError when a shape differs:
    the plan was made for other values)."""
    for out, res in zip(outputs, results):
        if out is None:
            continue
        if out.shape != res.shape:
            raise GeError(
                SHAPE_INVALID,
                f"{op}: the result has shape {list(res.shape)} but {list(out.shape)} was planned "
                "(the input values changed after planning)",
            )
        out[...] = res


# ----- NonZero ---------------------------------------------------------------------------------


def _nonzero(x: np.ndarray) -> np.ndarray:
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


def _infer_nonzero(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    if len(x.shape) == 0:
        raise ctx.error("x must have rank ≥ 1", SHAPE_INVALID)
    value = np.asarray(ctx.require_const(0, "x (the output size depends on its values)"))
    return [TensorDesc(DataType.DT_INT64, (len(x.shape), int(np.count_nonzero(value))))]


def _nonzero_kernel(inputs, outputs):
    _store(outputs, [_nonzero(inputs[0])], "NonZero")


# ----- Unique ----------------------------------------------------------------------------------


def unique(x: np.ndarray, axis: int | None, sort: bool) -> list[np.ndarray]:
    """ONNX Unique: (y, indices, inverse_indices, counts); ``sort`` False keeps first-occurrence
    order."""
    if axis is None:
        y, idx, inv, counts = np.unique(x, True, True, True)
    else:
        y, idx, inv, counts = np.unique(x, True, True, True, axis=axis)
    inv = np.asarray(inv).reshape(-1)
    if not sort:
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        idx = idx[order]
        y = np.take(x.reshape(-1) if axis is None else x, idx, axis=0 if axis is None else axis)
        inv = rank[inv]
        counts = counts[order]
    return [
        np.ascontiguousarray(y, dtype=x.dtype),
        idx.astype(np.int64),
        inv.astype(np.int64),
        counts.astype(np.int64),
    ]


def _infer_unique(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    x = ctx.input(0)
    axis = ctx.attrs["axis"]
    axis = None if axis is None else normalize_axis(ctx, axis, len(x.shape))
    value = np.asarray(ctx.require_const(0, "x (the output size depends on its values)"))
    y, idx, inv, counts = unique(value, axis, bool(ctx.attrs["sorted"]))
    return [
        TensorDesc(x.dtype, y.shape),
        TensorDesc(DataType.DT_INT64, idx.shape),
        TensorDesc(DataType.DT_INT64, inv.shape),
        TensorDesc(DataType.DT_INT64, counts.shape),
    ]


def _unique_kernel(inputs, outputs, *, axis, sorted):
    x = inputs[0]
    ax = None if axis is None else axis % max(x.ndim, 1)
    _store(outputs, unique(x, ax, bool(sorted)), "Unique")


# ----- NonMaxSuppression -----------------------------------------------------------------------


def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(x_min, x_max, y_min, y_max) per box, in the boxes' dtype."""
    if center_point_box == 0:  # [y1, x1, y2, x2], corners in any order
        y1, x1, y2, x2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
        return np.minimum(x1, x2), np.maximum(x1, x2), np.minimum(y1, y2), np.maximum(y1, y2)
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    hw, hh = w / boxes.dtype.type(2), h / boxes.dtype.type(2)
    return cx - hw, cx + hw, cy - hh, cy + hh


def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_per_class: np.ndarray | None,
    iou_threshold: np.ndarray | None,
    score_threshold: np.ndarray | None,
    center_point_box: int,
) -> np.ndarray:
    """ONNX NonMaxSuppression: selected [batch, class, box] rows (int64 [n, 3]).

    Per batch and class: boxes whose score passes ``score_threshold`` (strictly greater), by
    score descending (ties: lower index first), kept unless their IoU with a kept box is above
    ``iou_threshold``, at most ``max_per_class``.
    """
    limit = 0
    if max_per_class is not None and max_per_class.size:
        limit = max(int(max_per_class.reshape(-1)[0]), 0)
    iou_t = iou_threshold.reshape(-1)[0] if iou_threshold is not None and iou_threshold.size else 0
    has_score_t = score_threshold is not None and score_threshold.size > 0
    score_t = score_threshold.reshape(-1)[0] if has_score_t else None
    rows: list[tuple[int, int, int]] = []
    if limit == 0:
        return np.zeros((0, 3), dtype=np.int64)
    for b in range(boxes.shape[0]):
        x_min, x_max, y_min, y_max = _corners(boxes[b], center_point_box)
        area = (x_max - x_min) * (y_max - y_min)
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = np.arange(s.shape[0])
            if has_score_t:
                cand = cand[s > score_t]
            order = cand[np.lexsort((cand, -s[cand].astype(np.float64)))]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                if kept:
                    k = np.asarray(kept)
                    ix_min = np.maximum(x_min[i], x_min[k])
                    ix_max = np.minimum(x_max[i], x_max[k])
                    iy_min = np.maximum(y_min[i], y_min[k])
                    iy_max = np.minimum(y_max[i], y_max[k])
                    inter = (ix_max - ix_min) * (iy_max - iy_min)
                    union = area[i] + area[k] - inter
                    with np.errstate(all="ignore"):
                        iou = inter / union
                    overlap = (
                        (ix_max > ix_min)
                        & (iy_max > iy_min)
                        & (inter > 0)
                        & (area[i] > 0)
                        & (area[k] > 0)
                        & (union > 0)
                        & (iou > iou_t)
                    )
                    if overlap.any():
                        continue
                kept.append(int(i))
                rows.append((b, c, int(i)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _nms_inputs(values: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    return [None if v is None else np.asarray(v) for v in values]


def _infer_nms(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, FLOAT_TYPES)
    check_dtype(ctx, 1, FLOAT_TYPES)
    boxes, scores = ctx.input(0), ctx.input(1)
    if len(boxes.shape) != 3 or boxes.shape[2] not in (4, -1):
        raise ctx.error(f"boxes must be [batch, boxes, 4], got {list(boxes.shape)}", SHAPE_INVALID)
    if len(scores.shape) != 3:
        raise ctx.error(
            f"scores must be [batch, classes, boxes], got {list(scores.shape)}", SHAPE_INVALID
        )
    if ctx.attrs["center_point_box"] not in (0, 1):
        raise ctx.error("attr center_point_box must be 0 or 1")
    if ctx.has_input(2):
        check_dtype(ctx, 2, INDEX_TYPES)
    for i in (3, 4):
        if ctx.has_input(i):
            check_dtype(ctx, i, FLOAT_TYPES)
    what = "(the number of selected boxes depends on the values)"
    values = [ctx.require_const(i, what) if ctx.has_input(i) else None for i in range(5)]
    b, s = np.asarray(values[0]), np.asarray(values[1])
    if b.shape[0] != s.shape[0] or b.shape[1] != s.shape[2]:
        raise ctx.error(
            f"boxes {list(b.shape)} and scores {list(s.shape)} disagree on batch or box count",
            SHAPE_INVALID,
        )
    rows = non_max_suppression(*_nms_inputs(values), ctx.attrs["center_point_box"])
    return [TensorDesc(DataType.DT_INT64, rows.shape)]


def _nms_kernel(inputs, outputs, *, center_point_box):
    values = _nms_inputs(list(inputs) + [None] * (5 - len(inputs)))
    _store(outputs, [non_max_suppression(*values, center_point_box)], "NonMaxSuppression")


# ----- FrameworkOp -----------------------------------------------------------------------------


def _infer_framework(ctx: InferContext) -> list[TensorDesc]:
    n = ctx.attrs["output_count"]
    current = ctx.current_outputs
    if len(current) == n:
        return [TensorDesc(d.dtype, tuple(-1 for _ in d.shape), d.format) for d in current]
    return [TensorDesc(DataType.DT_FLOAT, (-1,)) for _ in range(n)]


def _framework_kernel(inputs, outputs, *, original_type):
    raise GeError(
        INTERNAL_ERROR,
        f"FrameworkOp ({original_type}) reached a kernel: it must be converted first",
    )


SCHEMAS = [
    OpSchema(
        "NonZero",
        inputs=[Input("x")],
        outputs=[Output("y")],
        infer=_infer_nonzero,
        kernel=_nonzero_kernel,
        onnx="NonZero",
        doc="Indices of the non-zero elements, int64 [rank, count] (data-dependent shape).",
    ),
    OpSchema(
        "Unique",
        inputs=[Input("x")],
        outputs=[Output("y"), Output("indices"), Output("inverse_indices"), Output("counts")],
        attrs=[Attr("axis", AttrType.INT, None), Attr("sorted", AttrType.INT, 1)],
        infer=_infer_unique,
        kernel=_unique_kernel,
        onnx="Unique",
        doc="Unique values (flattened, or slices along axis), first indices, inverse indices "
        "and counts (data-dependent shapes).",
    ),
    OpSchema(
        "NonMaxSuppression",
        inputs=[
            Input("boxes"),
            Input("scores"),
            Input("max_output_boxes_per_class", optional=True),
            Input("iou_threshold", optional=True),
            Input("score_threshold", optional=True),
        ],
        outputs=[Output("selected_indices")],
        attrs=[Attr("center_point_box", AttrType.INT, 0)],
        infer=_infer_nms,
        kernel=_nms_kernel,
        onnx="NonMaxSuppression",
        doc="Greedy per-class box selection by IoU, int64 [n, 3] rows [batch, class, box] "
        "(data-dependent shape).",
    ),
    OpSchema(
        "FrameworkOp",
        inputs=[Input("x", dynamic=True)],
        outputs=[Output("y", dynamic=True)],
        attrs=[
            Attr("original_type", AttrType.STR),
            Attr("node_def", AttrType.BYTES),
            Attr("opsets", AttrType.LIST_STR, []),
            Attr("output_count", AttrType.INT),
            Attr("outer_names", AttrType.LIST_STR, []),
        ],
        infer=_infer_framework,
        kernel=_framework_kernel,
        traits={Trait.NO_FOLD},
        num_outputs=lambda attrs, n: int(attrs.get("output_count", 1)),
        doc="An original framework (ONNX) node whose conversion needs run-time shapes or "
        "values; the dynamic-shape runtime converts it once they are known.",
    ),
]
