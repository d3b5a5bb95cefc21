"""Node-level inference and evaluation on top of the schemas (used by builder, compiler, parser)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import Node, Port, TensorDesc
from openge.ops.exact_cube import task_kernel
from openge.ops.registry import get_schema
from openge.ops.schema import InferContext, OpSchema, Trait, ValueNeededError, normalize_attrs


def node_where(node: Node) -> str:
    """``node NAME (OpType)`` for error messages."""
    return f"node {node.name} ({node.op_type})"


def check_input_count(schema: OpSchema, inputs: Sequence[Any], where: str) -> None:
    """GeError when the number of inputs, or a missing required input, does not fit the schema."""
    n = len(inputs)
    dynamic, fixed, required = _input_rules(schema)
    if dynamic:
        if n < fixed + 1:
            raise GeError(
                PARAM_INVALID,
                f"{where}: takes inputs ({_input_names(schema)}) — at least {fixed + 1}, got {n}",
            )
        return
    if n > len(schema.inputs):
        raise GeError(
            PARAM_INVALID,
            f"{where}: takes at most {len(schema.inputs)} inputs ({_input_names(schema)}), got {n}",
        )
    for i in required:
        if i >= n or inputs[i] is None:
            raise GeError(
                PARAM_INVALID,
                f"{where}: required input {i} ({schema.inputs[i].name}) is not connected; "
                f"inputs are ({_input_names(schema)})",
            )


#: Per schema: (has a dynamic input, fixed input count, required input indices).
_RULES: dict[int, tuple[OpSchema, bool, int, tuple[int, ...]]] = {}


def _input_rules(schema: OpSchema) -> tuple[bool, int, tuple[int, ...]]:
    """The schema's input rules, derived once (a parse checks every node against them)."""
    entry = _RULES.get(id(schema))
    if entry is None or entry[0] is not schema:
        dynamic = any(spec.dynamic for spec in schema.inputs)
        fixed = sum(1 for spec in schema.inputs if not spec.dynamic)
        required = tuple(i for i, s in enumerate(schema.inputs) if not s.optional)
        entry = _RULES[id(schema)] = (schema, dynamic, fixed, required)
    return entry[1], entry[2], entry[3]


def _input_names(schema: OpSchema) -> str:
    return ", ".join(
        s.name + ("*" if s.dynamic else "?" if s.optional else "") for s in schema.inputs
    )


def infer_node(
    node: Node, const_values: Mapping[Port, np.ndarray] | None = None
) -> tuple[dict[str, Any], list[TensorDesc]]:
    """Normalized attrs and the inferred output descs of ``node`` (GeError naming the node)."""
    schema = get_schema(node.op_type)
    where = node_where(node)
    attrs = normalize_attrs(schema, node.attrs, where)
    check_input_count(schema, node.inputs, where)
    if schema.infer is None:
        return attrs, list(node.output_descs)
    const_values = const_values or {}
    ctx = InferContext(
        node.name,
        node.op_type,
        [None if p is None else p.desc for p in node.inputs],
        attrs,
        [None if p is None else const_values.get(p) for p in node.inputs],
        node.output_descs,
    )
    try:
        descs = list(schema.infer(ctx))
    except ValueNeededError as err:
        if err.port is None and 0 <= err.index < len(node.inputs):
            err.port = node.inputs[err.index]
        raise
    expected = schema.output_count(attrs, len(node.inputs))
    if len(descs) != expected:
        raise GeError(
            PARAM_INVALID, f"{where}: inference gave {len(descs)} outputs, expected {expected}"
        )
    return attrs, descs


def evaluate(
    schema: OpSchema,
    attrs: Mapping[str, Any],
    inputs: Sequence[np.ndarray | None],
    output_descs: Sequence[TensorDesc],
) -> list[np.ndarray]:
    """Run the op's kernel on NumPy inputs into fresh outputs (constant folding, tests)."""
    outputs = [np.empty(d.shape, dtype=d.dtype.np_dtype) for d in output_descs]
    kwargs = {k: attrs[k] for k in schema.kernel_attrs}
    dtypes = [a.dtype if isinstance(a, np.ndarray) else None for a in (*inputs, *outputs)]
    kernel = task_kernel(schema.kernel, attrs, dtypes) or schema.kernel  # type: ignore[arg-type]
    kernel(list(inputs), outputs, **kwargs)
    return outputs


#: Results with at most this many elements are computed at compile/build time when all their
#: inputs are known (shape arithmetic such as Shape → Gather → Concat → Reshape).
MAX_PROPAGATED_ELEMENTS = 4096


def propagate_value(
    node: Node,
    attrs: Mapping[str, Any],
    descs: Sequence[TensorDesc],
    known: Mapping[Port, np.ndarray],
) -> list[np.ndarray] | None:
    """The output values of ``node`` when they can be known before running the graph.

    Known when every input value is known (or, for a SHAPE_ONLY op, every input shape is
    static), the op is foldable and the result is small. Used by the graph builder and by the
    compiler's shape inference, so both agree on what is a compile-time constant.
    """
    schema = get_schema(node.op_type)
    if (
        schema.kernel is None
        or schema.has(Trait.NO_FOLD)
        or schema.has(Trait.STATEFUL)
        or not descs
        or not all(d.is_static for d in descs)
        or sum(d.numel for d in descs) > MAX_PROPAGATED_ELEMENTS
    ):
        return None
    shape_only = schema.has(Trait.SHAPE_ONLY)
    values: list[np.ndarray | None] = []
    for port in node.inputs:
        if port is None:
            values.append(None)
        elif port in known:
            values.append(known[port])
        elif shape_only and port.desc.is_static:
            # Only the shape matters: a zero-strided array costs no memory.
            values.append(
                np.broadcast_to(np.zeros((), dtype=port.desc.dtype.np_dtype), port.desc.shape)
            )
        else:
            return None
    return evaluate(schema, attrs, values, descs)
