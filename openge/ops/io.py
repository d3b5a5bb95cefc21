"""Graph-boundary ops: Data, Const, FileConstant, NetOutput and Identity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID
from openge.graph import DataType, TensorDesc
from openge.ops.common import ALL_TYPES, check_dtype
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output, Trait


def _infer_data(ctx: InferContext) -> Sequence[TensorDesc]:
    if ctx.attrs["index"] < 0:
        raise ctx.error(f"attr index = {ctx.attrs['index']} must be ≥ 0")
    if not ctx.current_outputs:
        raise ctx.error("Data node has no output description; set its dtype and shape")
    return [ctx.current_outputs[0]]


def _infer_const(ctx: InferContext) -> Sequence[TensorDesc]:
    value = ctx.attrs["value"]
    fmt = ctx.current_outputs[0].format if ctx.current_outputs else value.desc.format
    return [TensorDesc(value.dtype, value.shape, fmt)]


def _infer_file_constant(ctx: InferContext) -> Sequence[TensorDesc]:
    shape = ctx.attrs["shape"]
    if any(d < 0 for d in shape):
        raise ctx.error(f"attr shape {shape} must be static")
    dtype = ctx.attrs["dtype"]
    try:
        itemsize = dtype.itemsize
    except Exception:
        raise ctx.error(f"dtype {dtype.name} cannot be stored", DATATYPE_INVALID) from None
    expected = int(np.prod(shape, dtype=np.int64)) * itemsize
    if ctx.attrs["length"] not in (0, expected):
        raise ctx.error(f"attr length {ctx.attrs['length']} != {expected} bytes of {shape}")
    return [TensorDesc(dtype, tuple(shape))]


def _infer_identity(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    d = ctx.input(0)
    return [TensorDesc(d.dtype, d.shape, d.format, d.origin_format)]


def _identity_kernel(inputs, outputs):
    np.copyto(outputs[0], inputs[0])


SCHEMAS = [
    OpSchema(
        "Data",
        inputs=(),
        outputs=(Output("y"),),
        attrs=(Attr("index", AttrType.INT, 0, doc="position among the graph inputs"),),
        infer=_infer_data,
        doc="A graph input; its dtype, shape and format are the node's output description.",
        onnx="graph input",
        traits={Trait.SOURCE},
    ),
    OpSchema(
        "Const",
        inputs=(),
        outputs=(Output("y"),),
        attrs=(Attr("value", AttrType.TENSOR, doc="the constant's value"),),
        infer=_infer_const,
        doc="A constant tensor stored with the model's weights.",
        onnx="initializer / Constant",
        traits={Trait.SOURCE},
    ),
    OpSchema(
        "FileConstant",
        inputs=(),
        outputs=(Output("y"),),
        attrs=(
            Attr("shape", AttrType.LIST_INT),
            Attr("dtype", AttrType.TYPE),
            Attr("location", AttrType.STR, "", doc="weight file name (no folder)"),
            Attr("file_path", AttrType.STR, ""),
            Attr("offset", AttrType.INT, 0),
            Attr("length", AttrType.INT, 0),
            Attr("sha256", AttrType.STR, ""),
        ),
        infer=_infer_file_constant,
        doc="A constant whose bytes live in an external weight file (ge.externalWeight).",
        onnx="initializer with external data",
        traits={Trait.SOURCE},
    ),
    OpSchema(
        "NetOutput",
        inputs=(Input("x", dynamic=True),),
        outputs=(),
        doc="Collects the graph outputs, in order (appears in the serialized ModelDef).",
        onnx="graph output",
        traits={Trait.SINK},
    ),
    OpSchema(
        "Identity",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        infer=_infer_identity,
        kernel=_identity_kernel,
        doc="y = x (a copy).",
        onnx="Identity",
        traits={Trait.ELEMENTWISE},
    ),
]

__all__ = ["SCHEMAS", "DataType"]
