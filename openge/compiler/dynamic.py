"""Dynamic-shape models: what the compiler stores when shapes are only known at run time.

A graph is dynamic when a graph input has unknown (-1) dims, when it holds deferred framework
nodes (FrameworkOp, from the ONNX parser), or when an output shape depends on a value that is
not a compile-time constant (a Reshape's shape fed as an input, NonZero, NonMaxSuppression …;
inference raises ``ValueNeededError``). Its compiled form is the graph itself — validated and
inferred as far as the static shapes allow — with no task list; the runtime
(``openge.runtime.dynamic``) re-runs this compiler with the concrete input shapes of each run and
caches the static plan it gets per input-shape signature.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from openge.errors import UNSUPPORTED, GeError
from openge.graph import Graph, Port, TensorDesc
from openge.graph.shape_range import RANGE_ATTR, decode_range, default_range, encode_range
from openge.om.plan import CompiledModel, IODesc
from openge.ops import Trait, get_schema, infer_node
from openge.ops.infer import propagate_value
from openge.version import PRODUCER

logger = logging.getLogger(__name__)

#: ``CompiledModel.stats`` key marking a dynamic-shape model (the graph is the plan).
DYNAMIC_STAT = "dynamic_shape"
#: ``CompiledModel.stats`` key: each input's flat ``[min0, max0, ...]`` range list.
RANGES_STAT = "input_ranges"
#: Options that make a gear model (built by the gear compiler, not as a dynamic-shape model).
GEAR_OPTIONS = ("ge.dynamicBatchSize", "ge.dynamicImageSize", "ge.dynamicDims")


def is_dynamic_graph(graph: Graph, options: Mapping[str, str]) -> bool:
    """True when ``graph`` must be compiled as a dynamic-shape model: an input with -1 dims or
    a deferred FrameworkOp (gear options leave -1 dims to the gear compiler)."""
    if any(options.get(k) for k in GEAR_OPTIONS):
        return False
    if any(not n.output_descs[0].is_static for n in graph.inputs):
        return True
    return any(n.op_type == "FrameworkOp" for n in graph.nodes)


def input_range(node) -> tuple[tuple[int, int], ...]:
    """The per-dim (min, max) of a Data node: its recorded range, else from its shape."""
    shape = node.output_descs[0].shape
    return decode_range(node.attrs.get(RANGE_ATTR), len(shape)) or default_range(shape)


def infer_leniently(graph: Graph) -> None:
    """Infer what static shapes allow; outputs that depend on run-time shapes or values keep
    their rank with unknown (-1) dims."""
    known: dict[Port, object] = {}
    for node in graph.topological_order():
        schema = get_schema(node.op_type)
        if (schema.has(Trait.SOURCE) and node.op_type != "Const") or schema.has(Trait.SINK):
            continue
        try:
            attrs, descs = infer_node(node, known)  # type: ignore[arg-type]
        except GeError:
            if node.op_type == "Const":
                raise
            node.output_descs = [
                TensorDesc(d.dtype, tuple(-1 for _ in d.shape), d.format) for d in node.output_descs
            ]
            continue
        node.output_descs = descs
        if node.op_type == "Const":
            known[node.output(0)] = attrs["value"].numpy()
            continue
        for i, value in enumerate(propagate_value(node, attrs, descs, known) or ()):  # type: ignore[arg-type]
            known[node.output(i)] = value


def output_names(graph: Graph) -> list[str]:
    """The graph outputs' names: the source model's, else ``node:index`` (as taskgen names)."""
    given = graph.attrs.get("onnx_output_names") or []
    if len(given) == len(graph.outputs) and len(set(given)) == len(given):
        return list(given)
    return [f"{p.node.name}:{p.index}" for p in graph.outputs]


def compile_dynamic(graph: Graph, options: Mapping[str, str]) -> CompiledModel:
    """The dynamic-shape CompiledModel of ``graph`` (a working copy the caller owns)."""
    if any(n.op_type == "Variable" for n in graph.nodes):
        raise GeError(
            UNSUPPORTED,
            f"graph {graph.name}: variables in a dynamic-shape graph are not supported; give "
            "the inputs static shapes (ge.inputShape) or bind shape inputs as constants",
        )
    if options.get("ge.externalWeight", "0") != "0":
        logger.warning(
            "graph %s is a dynamic-shape model: its weights stay inside the model "
            "(ge.externalWeight applies to static models)",
            graph.name,
        )
    infer_leniently(graph)
    inputs, ranges = [], []
    for node in graph.inputs:
        desc = node.output_descs[0]
        rng = input_range(node)
        inputs.append(IODesc(node.name, desc.dtype, desc.shape, desc.format, range=rng))
        ranges.append(encode_range(rng))
    outputs = [
        IODesc(name, p.desc.dtype, p.desc.shape, p.desc.format)
        for name, p in zip(output_names(graph), graph.outputs)
    ]
    logger.info(
        "graph %s is compiled as a dynamic-shape model (inputs %s): shapes are inferred and "
        "memory planned at run time, per input-shape signature",
        graph.name,
        ", ".join(f"{d.name}{list(d.shape)}" for d in inputs),
    )
    return CompiledModel(
        name=graph.name,
        graph=graph,
        tasks=[],
        inputs=inputs,
        outputs=outputs,
        options=dict(options),
        producer=PRODUCER,
        online=True,
        is_dynamic=True,
        stats={DYNAMIC_STAT: 1, RANGES_STAT: ranges},
    )


__all__ = [
    "DYNAMIC_STAT",
    "RANGES_STAT",
    "compile_dynamic",
    "infer_leniently",
    "input_range",
    "is_dynamic_graph",
    "output_names",
]
