"""Run-time conversion of deferred ONNX nodes (FrameworkOp) once their shapes are known.

``parse_onnx`` keeps a top-level ONNX node as a ``FrameworkOp`` when its conversion needs
shapes or values that are only known at run time (an input of unknown dims; a Reshape's shape,
Slice bounds, TopK's k ... fed as a graph input or computed from data). When the dynamic-shape
runtime knows them, :func:`expand_node` runs the node's regular mapping — the same code a static
parse runs — and splices the catalog nodes it emits in place of the FrameworkOp.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import Graph, Node, Port
from openge.ops import Trait, get_schema, infer_node, node_where, normalize_attrs
from openge.ops.infer import propagate_value
from openge.parser.onnx_parser import ParseContext, _convert_nodes, _Scope


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


__all__ = ["expand_all", "expand_node", "has_deferred"]
