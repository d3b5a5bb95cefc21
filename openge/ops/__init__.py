"""The op catalog: one definition per op type (schema, inference, NumPy kernel) and a registry.

Each family module exposes ``SCHEMAS``; they are registered here, explicitly and once.
"""

from openge.ops import (
    aipp,
    data_dependent,
    detection,
    elementwise,
    fused,
    image,
    io,
    layout,
    misc,
    nn,
    reduce,
    shape,
    state,
    text,
)
from openge.ops.infer import evaluate, infer_node, node_where
from openge.ops.registry import all_schemas, get_schema, has_op, register
from openge.ops.schema import (
    REQUIRED,
    Attr,
    AttrType,
    InferContext,
    Input,
    OpSchema,
    Output,
    Trait,
    normalize_attrs,
)

FAMILIES = (
    io,
    state,
    elementwise,
    nn,
    reduce,
    shape,
    layout,
    image,
    misc,
    fused,
    aipp,
    data_dependent,
    detection,
    text,
)
for _family in FAMILIES:
    register(_family.SCHEMAS)

__all__ = [
    "FAMILIES",
    "REQUIRED",
    "Attr",
    "AttrType",
    "InferContext",
    "Input",
    "OpSchema",
    "Output",
    "Trait",
    "all_schemas",
    "evaluate",
    "get_schema",
    "has_op",
    "infer_node",
    "node_where",
    "normalize_attrs",
]
