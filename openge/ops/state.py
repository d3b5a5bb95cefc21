"""Stateful ops: Variable and the ops that update it in place (Assign, AssignAdd, AssignSub)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import TensorDesc
from openge.ops.common import ALL_TYPES, NUMBER_TYPES, check_dtype, same_dtype
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output, Trait


def _infer_variable(ctx: InferContext) -> Sequence[TensorDesc]:
    value = ctx.attrs.get("value")
    if value is not None:
        fmt = ctx.current_outputs[0].format if ctx.current_outputs else value.desc.format
        desc = TensorDesc(value.dtype, value.shape, fmt)
        if ctx.current_outputs and ctx.current_outputs[0].shape not in ((), desc.shape):
            declared = ctx.current_outputs[0]
            if declared.is_static and declared.shape != desc.shape:
                raise ctx.error(
                    f"initial value has shape {list(desc.shape)} but the variable is declared "
                    f"{list(declared.shape)}",
                    SHAPE_INVALID,
                )
        return [desc]
    if not ctx.current_outputs or not ctx.current_outputs[0].is_static:
        raise ctx.error("a Variable needs a static output description or an initial value")
    return [ctx.current_outputs[0]]


def _infer_assign(ctx: InferContext) -> Sequence[TensorDesc]:
    allowed = ALL_TYPES if ctx.op_type == "Assign" else NUMBER_TYPES
    check_dtype(ctx, 0, allowed)
    same_dtype(ctx, [0, 1])
    ref, value = ctx.input(0), ctx.input(1)
    if ctx.op_type == "Assign" and ctx.attrs.get("validate_shape", True):
        if ref.shape != value.shape:
            raise ctx.error(
                f"value shape {list(value.shape)} differs from the variable's {list(ref.shape)}",
                SHAPE_INVALID,
            )
    else:
        try:
            np.broadcast_shapes(value.shape, ref.shape)
            ok = np.broadcast_shapes(value.shape, ref.shape) == ref.shape
        except ValueError:
            ok = False
        if not ok:
            raise ctx.error(
                f"value shape {list(value.shape)} does not broadcast to the variable's "
                f"{list(ref.shape)}",
                SHAPE_INVALID,
            )
    return [TensorDesc(ref.dtype, ref.shape, ref.format, ref.origin_format)]


def _assign_kernel(inputs, outputs):
    np.copyto(inputs[0], inputs[1])


def _assign_add_kernel(inputs, outputs):
    np.add(inputs[0], inputs[1], out=inputs[0])


def _assign_sub_kernel(inputs, outputs):
    np.subtract(inputs[0], inputs[1], out=inputs[0])


_STATE = {Trait.STATEFUL, Trait.REF_OUTPUT, Trait.NO_FOLD}

SCHEMAS = [
    OpSchema(
        "Variable",
        inputs=(),
        outputs=(Output("y"),),
        attrs=(
            Attr("index", AttrType.INT, 0),
            Attr("value", AttrType.TENSOR, None, doc="initial value (zeros when absent)"),
        ),
        infer=_infer_variable,
        doc="A named tensor whose value lives in the session and persists across runs; graphs "
        "of one session that use the same variable name share it.",
        onnx="(training state; no ONNX inference equivalent)",
        traits={Trait.SOURCE, Trait.STATEFUL, Trait.NO_FOLD},
    ),
    OpSchema(
        "Assign",
        inputs=(Input("ref"), Input("value")),
        outputs=(Output("ref"),),
        attrs=(
            Attr("validate_shape", AttrType.BOOL, True),
            Attr("use_locking", AttrType.BOOL, False),
        ),
        infer=_infer_assign,
        kernel=_assign_kernel,
        doc="ref = value, in place; the output is the updated variable.",
        onnx="(none)",
        traits=_STATE,
    ),
    OpSchema(
        "AssignAdd",
        inputs=(Input("ref"), Input("value")),
        outputs=(Output("ref"),),
        attrs=(Attr("use_locking", AttrType.BOOL, False),),
        infer=_infer_assign,
        kernel=_assign_add_kernel,
        doc="ref += value, in place (value broadcasts to ref).",
        onnx="(none)",
        traits=_STATE,
    ),
    OpSchema(
        "AssignSub",
        inputs=(Input("ref"), Input("value")),
        outputs=(Output("ref"),),
        attrs=(Attr("use_locking", AttrType.BOOL, False),),
        infer=_infer_assign,
        kernel=_assign_sub_kernel,
        doc="ref -= value, in place (value broadcasts to ref).",
        onnx="(none)",
        traits=_STATE,
    ),
]
