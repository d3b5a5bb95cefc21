"""Deferred ONNX nodes (FrameworkOp): made at parse time, converted once shapes are known.

``parse_onnx`` keeps a top-level ONNX node as a ``FrameworkOp`` when its conversion needs
shapes or values that are only known at run time (an input of unknown dims; a Reshape's shape,
Slice bounds, TopK's k ... fed as a graph input or computed from data). When the dynamic-shape
runtime knows them, :func:`expand_node` runs the node's regular mapping — the same code a static
parse runs — and splices the catalog nodes it emits in place of the FrameworkOp.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import MutableMapping
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Graph, Node, Port, TensorDesc
from openge.ops import Trait, get_schema, infer_node, node_where, normalize_attrs
from openge.ops.infer import propagate_value
from openge.parser.onnx_parser import (
    OnnxNode,
    ParseContext,
    _all_proto_nodes,
    _convert_nodes,
    _Scope,
    _value_type,
)
from openge.parser.validate import check_node_text

logger = logging.getLogger(__name__)

# ----- deferring (parse time) ------------------------------------------------------------------


def outer_names(proto_node: Any) -> list[str]:
    """Values the subgraphs of ``proto_node`` (If branches, Loop/Scan bodies) read from the
    enclosing graph, in first-use order."""
    import onnx

    found: dict[str, None] = {}

    def visit(g: Any, defined: set[str]) -> None:
        defined = defined | {v.name for v in g.input} | {t.name for t in g.initializer}
        for n in g.node:
            for name in n.input:
                if name and name not in defined:
                    found.setdefault(name)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g, defined)
            defined |= {o for o in n.output if o}

    for a in proto_node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            visit(a.g, set())
    return list(found)


def outer_ports(proto_node: Any, scope: Any) -> list[tuple[str, Port | None]]:
    return [(n, scope.get(n)) for n in outer_names(proto_node) if scope.defined(n)]


def _sanitized(proto: Any) -> Any:
    """A copy of ``proto`` that ONNX's C++ shape inference can take: negative dim values (invalid
    in ONNX, and one made its Slice inference abort the process on a clamp assertion) become
    unknown dims. The parser judges the original model; this copy only feeds the type hints."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)

    def clean(graph: Any) -> None:
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                for dim in vi.type.tensor_type.shape.dim:
                    if dim.HasField("dim_value") and dim.dim_value < 0:
                        dim.Clear()
        for node in graph.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    clean(a.g)
                for g in a.graphs:
                    clean(g)

    clean(copy.graph)
    return copy


#: Longest shape operand (an output rank) ONNX's shape inference is run with. A hostile
#: model's Expand to a declared 10⁸-element shape made it build 10⁸ dims (minutes, GBs).
MAX_INFERRED_RANK = 64
#: (op type, input index) of the operands ONNX's shape inference reads as an output shape.
_SHAPE_OPERANDS = frozenset({("Expand", 1), ("Reshape", 1), ("ConstantOfShape", 0)})


def _huge_shape_operand(graph: Any) -> bool:
    """Whether a node's shape operand is a 1-D value declared longer than MAX_INFERRED_RANK."""
    lengths: dict[str, int] = {}
    for vi in [*graph.input, *graph.value_info]:
        dims = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else ()
        if len(dims) == 1 and dims[0].HasField("dim_value"):
            lengths[vi.name] = dims[0].dim_value
    for init in graph.initializer:
        if len(init.dims) == 1:
            lengths[init.name] = init.dims[0]
    return any(
        (node.op_type, k) in _SHAPE_OPERANDS and lengths.get(name, 0) > MAX_INFERRED_RANK
        for node in _all_proto_nodes(graph)
        for k, name in enumerate(node.input)
    )


def _value_types(ctx: ParseContext) -> dict[str, tuple[DataType, list[int] | None]]:
    """dtype and dims of every value ONNX's shape inference knows (for deferred outputs)."""
    if ctx._value_types is None:
        import onnx

        types: dict[str, tuple[DataType, list[int] | None]] = {}
        try:
            if _huge_shape_operand(ctx.proto.graph):
                raise ValueError("a shape operand longer than MAX_INFERRED_RANK")
            inferred = onnx.shape_inference.infer_shapes(_sanitized(ctx.proto)).graph
        except Exception:  # inference is a hint only: fall back to the declared types
            inferred = ctx.proto.graph
        for vi in [*inferred.input, *inferred.value_info, *inferred.output]:
            with contextlib.suppress(GeError):
                if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                    types[vi.name] = _value_type(vi, f"value {vi.name}")
        ctx._value_types = types
    return ctx._value_types


def _consumed(ctx: ParseContext) -> set[str]:
    """Names the model reads: node inputs (subgraphs included) and graph outputs."""
    if ctx._consumed is None:
        graph = ctx.proto.graph
        ctx._consumed = {o.name for o in graph.output} | {
            name for n in _all_proto_nodes(graph) for name in n.input
        }
    return ctx._consumed


def defer_node(ctx: ParseContext, node: OnnxNode, proto_node: Any) -> list[Port | None]:
    """A FrameworkOp standing for ``proto_node``, converted when its inputs are known at run
    time; its outputs have ONNX's inferred dtype and rank with every dim unknown."""
    types = _value_types(ctx)
    descs = []
    for out_name in node.outputs:
        if out_name == "":
            descs.append(TensorDesc(DataType.DT_FLOAT, (-1,)))
            continue
        if out_name not in types and out_name not in _consumed(ctx):
            descs.append(TensorDesc(DataType.DT_FLOAT, (-1,)))  # an output nothing reads
            continue
        if out_name not in types:
            raise ctx.unsupported(
                f"output {out_name} depends on run-time shapes or values and its type is "
                "unknown; give the inputs static shapes (input_shape) or bind the values "
                "(constant_inputs)"
            )
        dtype, dims = types[out_name]
        descs.append(TensorDesc(dtype, (-1,) if dims is None else tuple(-1 for _ in dims)))
    opsets = [f"{dom}:{ver}" for dom, ver in sorted(ctx.opsets.items())]
    outer = outer_ports(proto_node, ctx.scope) if ctx.scope is not None else []
    extra: dict[str, Any] = {"outer_names": [n for n, _ in outer]} if outer else {}
    fw = ctx.graph.add_node(
        "FrameworkOp",
        [*node.inputs, *(p for _, p in outer)],
        name=ctx._name("FrameworkOp"),
        attrs={
            "original_type": node.op_type if not node.domain else f"{node.domain}::{node.op_type}",
            "node_def": proto_node.SerializeToString(),
            "opsets": opsets,
            "output_count": len(descs),
            **extra,
        },
        num_outputs=len(descs),
        output_descs=descs,
    )
    logger.debug("%s is converted at run time (FrameworkOp %s)", node.where, fw.name)
    return [fw.output(i) for i in range(len(descs))]


# ----- converting (run time) -------------------------------------------------------------------


def _opsets(node: Node, attrs: dict) -> dict[str, int]:
    opsets: dict[str, int] = {}
    for entry in attrs["opsets"]:
        dom, _, ver = str(entry).rpartition(":")
        try:
            opsets[dom] = int(ver)
        except ValueError:
            raise GeError(
                PARAM_INVALID, f"FrameworkOp {node.name}: bad opset entry {entry!r}"
            ) from None
    return opsets


def expand_node(graph: Graph, node: Node, values: MutableMapping[Port, np.ndarray]) -> list[Node]:
    """Convert the FrameworkOp ``node`` with its inputs' now-known descs and ``values``.

    The emitted nodes replace ``node`` (which is removed); they are returned in order, already
    inferred. Values the mapping computes are added to ``values``. Raises ``ValueNeededError``
    when a value the conversion needs is still unknown, GeError when it cannot be converted.
    """
    import onnx

    attrs = normalize_attrs(get_schema(node.op_type), node.attrs, node_where(node))
    try:
        proto = onnx.NodeProto.FromString(attrs["node_def"])
    except Exception as err:  # a corrupt record in an untrusted file
        raise GeError(
            PARAM_INVALID, f"FrameworkOp {node.name}: its node_def does not decode: {err}"
        ) from err
    check_node_text(proto, f"FrameworkOp {node.name}: node_def")
    names = [*proto.input, *attrs["outer_names"]]
    if len(names) != len(node.inputs) or len(proto.output) != node.num_outputs:
        raise GeError(
            PARAM_INVALID,
            f"FrameworkOp {node.name}: node_def has {len(names)} inputs (with the values its "
            f"subgraphs read) and {len(proto.output)} outputs; the node has {len(node.inputs)} "
            f"and {node.num_outputs}",
        )
    ctx = ParseContext(graph, _opsets(node, attrs))
    ctx.values = values  # type: ignore[assignment]
    scope = _Scope(ctx, None, {}, None)
    ctx.scope = scope
    for name, port in zip(names, node.inputs):
        if name and port is not None:
            scope.values[name] = port
    count = len(graph)
    _convert_nodes(ctx, [proto], scope, "")
    added = graph.nodes[count:]
    for i, name in enumerate(proto.output):
        if name and name in scope.values:
            graph.replace_all_uses(node.output(i), scope.values[name])
    graph.remove_node(node)
    return added


def expand_all(graph: Graph, values: MutableMapping[Port, np.ndarray]) -> int:
    """Infer every node of ``graph`` (whose inputs have concrete shapes) in order, converting
    each FrameworkOp on the way; returns how many were converted. Known values (Consts and small
    results) are recorded in ``values``."""
    converted = 0
    for node in graph.topological_order():
        if node.op_type == "FrameworkOp":
            expand_node(graph, node, values)
            converted += 1
            continue
        schema = get_schema(node.op_type)
        if schema.has(Trait.SINK):
            continue
        attrs, descs = infer_node(node, values)
        node.output_descs = descs
        if node.op_type == "Const":
            values[node.output(0)] = attrs["value"].numpy()
            continue
        for i, value in enumerate(propagate_value(node, attrs, descs, values) or ()):
            values[node.output(i)] = value
    return converted


def has_deferred(graph: Graph) -> bool:
    """True when ``graph`` holds FrameworkOp nodes."""
    return any(n.op_type == "FrameworkOp" for n in graph.nodes)


__all__ = ["defer_node", "expand_all", "expand_node", "has_deferred", "outer_names", "outer_ports"]
