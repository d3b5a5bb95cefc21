"""Checks of an untrusted ONNX ModelProto before it is converted (parser layer).

protobuf hands back a proto2 ``string`` field holding invalid UTF-8 as ``bytes``; every name the
parser reads (graph, node, value, attribute, initializer, opset domain) is checked to be text
first, so a bad name is a GeError naming where it is rather than a TypeError later. The graph's
outputs must be distinct: the same value listed twice as a model output is refused (GE and ONNX
Runtime users address outputs by name, and two outputs of one name are ambiguous).
"""

from __future__ import annotations

from typing import Any

from openge.errors import PARAM_INVALID, GeError


def _bad(where: str, value: Any) -> GeError:
    shown = bytes(value[:40]) if isinstance(value, (bytes, bytearray)) else value
    return GeError(PARAM_INVALID, f"{where} is not valid UTF-8 text: {shown!r}")


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _bad(where, value)


def _texts(values: Any, where: str) -> None:
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise _bad(f"{where} {i}", value)


def _check_tensor_names(tensors: Any, where: str) -> None:
    for i, t in enumerate(tensors):
        _text(t.name, f"{where} #{i} name")
        for e in t.external_data:
            _text(e.key, f"{where} #{i} external data key")
            _text(e.value, f"{where} #{i} external data value")


def check_graph_text(graph: Any, where: str = "ONNX graph") -> None:
    """GeError when a name in ``graph`` (or a subgraph of it) is not valid UTF-8."""

    _text(graph.name, f"{where} name")
    for kind, infos in (("input", graph.input), ("output", graph.output)):
        for i, vi in enumerate(infos):
            _text(vi.name, f"{where} {kind} #{i} name")
    for i, vi in enumerate(graph.value_info):
        _text(vi.name, f"{where} value_info #{i} name")
    _check_tensor_names(graph.initializer, f"{where} initializer")
    for i, sp in enumerate(graph.sparse_initializer):
        _text(sp.values.name, f"{where} sparse initializer #{i} name")
    for i, node in enumerate(graph.node):
        check_node_text(node, f"{where} node #{i}")


def check_node_text(node: Any, here: str) -> None:
    """GeError when a name in the NodeProto ``node`` (or its subgraphs) is not valid UTF-8:
    also for a node decoded on its own (a dynamic model's deferred node, from an .om)."""
    import onnx

    _text(node.name, f"{here} name")
    _text(node.op_type, f"{here} op_type")
    _text(node.domain, f"{here} domain")
    _texts(node.input, f"{here} input")
    _texts(node.output, f"{here} output")
    for attr in node.attribute:
        _text(attr.name, f"{here} attribute name")
        if attr.type == onnx.AttributeProto.GRAPH:
            check_graph_text(attr.g, f"{here} attribute {attr.name}")
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for k, sub in enumerate(attr.graphs):
                check_graph_text(sub, f"{here} attribute {attr.name}[{k}]")
        elif attr.type == onnx.AttributeProto.TENSOR:
            _check_tensor_names([attr.t], f"{here} attribute {attr.name}")


def check_model(proto: Any) -> None:
    """GeError for invalid names anywhere and for duplicate graph outputs."""
    for i, opset in enumerate(proto.opset_import):
        _text(opset.domain, f"ONNX opset_import #{i} domain")
    check_graph_text(proto.graph)
    seen: dict[str, int] = {}
    for i, vi in enumerate(proto.graph.output):
        first = seen.setdefault(vi.name, i)
        if first != i:
            raise GeError(
                PARAM_INVALID,
                f"ONNX graph lists output {vi.name!r} twice (outputs #{first} and #{i}); "
                "model outputs must be distinct values (add an Identity node for a copy)",
            )


__all__ = ["check_graph_text", "check_model"]
