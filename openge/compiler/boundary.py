"""The model boundary ATC lets users change before compilation: ``--out_nodes``
(``ge.outputNodeName``), ``--input_fp16_nodes`` (``ge.INPUT_NODES_SET_FP16``),
``--output_type`` (``ge.outputDatatype``) and ``--insert_op_conf`` (``ge.insertOpFile``: AIPP).

Applied to the compiler's working copy of the graph before the pass pipeline, so the inserted
Casts and Aipp nodes are compiled (and fused) like any other node.
"""

from __future__ import annotations

from collections.abc import Mapping

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Graph, Node, Port, TensorDesc

OUT_NODES = "ge.outputNodeName"
INPUT_FP16_NODES = "ge.INPUT_NODES_SET_FP16"
OUTPUT_TYPE = "ge.outputDatatype"
INSERT_OP_FILE = "ge.insertOpFile"
#: graph attr the ONNX parser fills: "onnx_node:index=graph_node:index" entries
ONNX_NODE_OUTPUTS = "onnx_node_outputs"

OUTPUT_TYPES = {
    "FP32": DataType.DT_FLOAT,
    "FP16": DataType.DT_FLOAT16,
    "INT8": DataType.DT_INT8,
    "UINT8": DataType.DT_UINT8,
    "INT32": DataType.DT_INT32,
    "INT64": DataType.DT_INT64,
    "BF16": DataType.DT_BF16,
}


def insert_after(
    graph: Graph,
    port: Port,
    op_type: str,
    name: str,
    attrs: dict,
    desc: TensorDesc,
    extra_inputs: tuple[Port, ...] = (),
) -> Node:
    """A new node reading ``port`` (then ``extra_inputs``) that takes over every use of it
    (consumers and graph outputs)."""
    users = list(port.node.users(port.index))
    outputs = list(graph.outputs)
    node = graph.add_node(
        op_type,
        [port, *extra_inputs],
        name=graph.unique_name(name),
        attrs=attrs,
        output_descs=[desc],
    )
    for user, index in users:
        graph.set_input(user, index, node.output(0))
    if port in outputs:
        graph.set_outputs([node.output(0) if p == port else p for p in outputs])
    return node


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(";") if p.strip()]


def _parse_port_name(text: str, option: str) -> tuple[str, int]:
    name, sep, index = text.rpartition(":")
    if not sep or not index.strip().isdigit() or not name:
        raise GeError(PARAM_INVALID, f'{option} entry {text!r}: write "node_name:output_index"')
    return name, int(index)


def _resolve_port(graph: Graph, name: str, index: int, option: str) -> Port:
    for entry in graph.attrs.get(ONNX_NODE_OUTPUTS) or []:
        src, _, dst = entry.partition("=")
        if src == f"{name}:{index}":
            node_name, _, dst_index = dst.rpartition(":")
            if graph.has_node(node_name):
                return graph.node(node_name).output(int(dst_index))
    if graph.has_node(name):
        node = graph.node(name)
        if index < node.num_outputs:
            return node.output(index)
        raise GeError(PARAM_INVALID, f"{option}: node {name} has {node.num_outputs} outputs")
    raise GeError(
        PARAM_INVALID,
        f"{option}: the model has no node {name!r} (name an ONNX node, e.g. the producer of "
        "the tensor, with its output index)",
    )


def apply_out_nodes(graph: Graph, text: str) -> list[str]:
    """``--out_nodes="a:0;b:1"``: these become the outputs, in order; returns their names."""
    entries = [_parse_port_name(p, "--out_nodes") for p in _split(text)]
    ports = [_resolve_port(graph, n, i, "--out_nodes") for n, i in entries]
    graph.set_outputs(ports)
    names = [f"{n}:{i}" for n, i in entries]
    graph.attrs["onnx_output_names"] = names
    return names


def apply_input_fp16(graph: Graph, text: str) -> None:
    """``--input_fp16_nodes="a;b"``: these float inputs take float16 (a Cast after the Data)."""
    data = {n.name: n for n in graph.inputs}
    for name in _split(text):
        node = data.get(name)
        if node is None:
            raise GeError(
                PARAM_INVALID,
                f"--input_fp16_nodes names {name!r}; the inputs are {', '.join(data)}",
            )
        desc = node.output_descs[0]
        if desc.dtype == DataType.DT_FLOAT16:
            continue
        if desc.dtype not in (DataType.DT_FLOAT, DataType.DT_DOUBLE, DataType.DT_BF16):
            raise GeError(
                PARAM_INVALID,
                f"--input_fp16_nodes: input {name} is {desc.dtype.short_name}, not a float",
            )
        node.output_descs = [TensorDesc(DataType.DT_FLOAT16, desc.shape, desc.format)]
        insert_after(
            graph, node.output(0), "Cast", f"{name}_fp16_cast", {"dst_type": desc.dtype}, desc
        )


def apply_output_type(graph: Graph, text: str, out_names: list[str]) -> None:
    """``--output_type=FP32`` (every output) or ``"node:0:FP16;..."`` (named outputs, as
    listed in ``--out_nodes``): a Cast before each output whose type differs."""
    outputs = list(graph.outputs)
    targets: dict[int, DataType] = {}
    if ":" not in text:
        dtype = _output_dtype(text.strip())
        targets = dict.fromkeys(range(len(outputs)), dtype)
    else:
        for entry in _split(text):
            port_name, _, type_name = entry.rpartition(":")
            if port_name not in out_names:
                raise GeError(
                    PARAM_INVALID,
                    f"--output_type entry {entry!r}: {port_name} is not one of --out_nodes "
                    f"({'; '.join(out_names) or 'not given'})",
                )
            targets[out_names.index(port_name)] = _output_dtype(type_name)
    new = []
    for k, port in enumerate(outputs):
        dtype = targets.get(k)
        desc = port.desc
        if dtype is None or desc.dtype == dtype:
            new.append(port)
            continue
        cast = graph.add_node(
            "Cast",
            [port],
            name=graph.unique_name(f"{port.node.name}_output_cast"),
            attrs={"dst_type": dtype},
            output_descs=[TensorDesc(dtype, desc.shape, desc.format)],
        )
        new.append(cast.output(0))
    graph.set_outputs(new)


def _output_dtype(name: str) -> DataType:
    dtype = OUTPUT_TYPES.get(name.upper())
    if dtype is None:
        raise GeError(
            PARAM_INVALID,
            f"--output_type {name!r} is not valid; accepted: {', '.join(OUTPUT_TYPES)}",
        )
    return dtype


def apply_boundary_options(graph: Graph, options: Mapping[str, str]) -> None:
    """Apply the boundary options found in ``options`` to ``graph`` (in place)."""
    out_names: list[str] = []
    if options.get(OUT_NODES):
        out_names = apply_out_nodes(graph, options[OUT_NODES])
    graph.attrs.pop(ONNX_NODE_OUTPUTS, None)
    if options.get(INSERT_OP_FILE):
        from openge.compiler.aipp_config import read_aipp_config
        from openge.compiler.insert_aipp import insert_aipp

        insert_aipp(graph, read_aipp_config(options[INSERT_OP_FILE]))
    if options.get(INPUT_FP16_NODES):
        apply_input_fp16(graph, options[INPUT_FP16_NODES])
    if options.get(OUTPUT_TYPE):
        apply_output_type(graph, options[OUTPUT_TYPE], out_names)
