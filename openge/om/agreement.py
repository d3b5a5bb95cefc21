"""The three descriptions of a model's interface must agree (untrusted .om, docs/security.md).

Layer: om. An .om describes its inputs and outputs three times: MODEL_INOUT_INFO (what
``--mode=6`` and ``aclmdlGetDesc``-style tools show), the ModelDef graph (Data nodes and graph
outputs) and the task list (what actually runs). A file in which they disagree would show one
signature and run another, or load and run but fail only at ``save_model``; it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openge.errors import PARAM_INVALID, GeError
from openge.graph import Graph
from openge.om.container import InOutDesc
from openge.om.limits import LoadLimits
from openge.om.plan import IODesc


def _refuse(message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om: {message}; the file was altered or is corrupt")


def _size(d: IODesc) -> int | None:
    if any(x < 0 for x in d.shape):
        return None
    try:
        return d.size
    except GeError:  # a dtype without a storage size (string)
        return None


def check_inout_info(
    info_in: Sequence[InOutDesc],
    info_out: Sequence[InOutDesc],
    inputs: Sequence[IODesc],
    outputs: Sequence[IODesc],
) -> None:
    """MODEL_INOUT_INFO must describe exactly the task list's inputs and outputs."""
    for kind, records, descs in (("input", info_in, inputs), ("output", info_out, outputs)):
        if len(records) != len(descs):
            raise _refuse(
                f"MODEL_INOUT_INFO lists {len(records)} {kind}s, the task list {len(descs)}"
            )
        for i, (rec, d) in enumerate(zip(records, descs)):
            size = _size(d)
            same = (
                rec.name == d.name
                and rec.dtype == int(d.dtype)
                and tuple(rec.dims) == tuple(d.shape)
                and rec.format == int(d.format)
                and (size is None or rec.size == size)
            )
            if not same:
                raise _refuse(
                    f"MODEL_INOUT_INFO {kind} {i} ({rec.name!r}, dtype {rec.dtype}, dims "
                    f"{list(rec.dims)}, {rec.size} bytes) differs from the task list's "
                    f"({d.name!r}, {d.dtype.name}, {list(d.shape)})"
                )


def _dims_agree(graph_dims: Sequence[int], task_dims: Sequence[int]) -> bool:
    """Same rank and dims; a -1 in the task list (a gear or dynamic dim) matches any graph dim
    (a gear model's root graph carries its largest gear's dims, as GE's does)."""
    return len(graph_dims) == len(task_dims) and all(
        t == g or t == -1 for g, t in zip(graph_dims, task_dims)
    )


def check_graph(graph: Graph, inputs: Sequence[IODesc], outputs: Sequence[IODesc]) -> None:
    """The ModelDef graph's Data nodes and outputs must match the task list's io descs."""
    data = graph.inputs
    if len(data) != len(inputs):
        raise _refuse(f"the ModelDef graph has {len(data)} inputs, the task list {len(inputs)}")
    for i, (node, d) in enumerate(zip(data, inputs)):
        desc = node.output_descs[0] if node.output_descs else None
        if (
            node.name != d.name
            or desc is None
            or desc.dtype != d.dtype
            or not _dims_agree(desc.shape, d.shape)
        ):
            raise _refuse(
                f"input {i}: the ModelDef graph has {node.name!r} "
                f"{desc.type_str() if desc is not None else '(no desc)'}, the task list "
                f"{d.name!r} {d.dtype.name}{list(d.shape)}"
            )
    ports = graph.outputs
    if len(ports) != len(outputs):
        raise _refuse(f"the ModelDef graph has {len(ports)} outputs, the task list {len(outputs)}")
    for i, (port, d) in enumerate(zip(ports, outputs)):
        desc = port.desc
        if desc.dtype != d.dtype or not _dims_agree(desc.shape, d.shape):
            raise _refuse(
                f"output {i}: the ModelDef graph gives {desc.type_str()}, the task list "
                f"{d.dtype.name}{list(d.shape)}"
            )


def _subgraphs(graph_def: Any) -> list[Any]:
    """The GraphDefs held in the attrs of ``graph_def``'s ops (one level)."""
    found = []
    for op in graph_def.op:
        for attr in op.attr.values():
            kind = attr.WhichOneof("value")
            if kind == "g":
                found.append(attr.g)
            elif kind == "list" and len(attr.list.g):
                found.extend(attr.list.g)
    return found


def count_graph_ops(graph_def: Any, limits: LoadLimits) -> int:
    """Ops of a GraphDef and of every graph nested in its attrs (each becomes a node when
    decoded), checked against ``limits.max_tasks`` before any is decoded."""
    total = 0
    pending = [graph_def]
    while pending:
        gd = pending.pop()
        total += len(gd.op)
        limits.check("max_tasks", total, "the ModelDef's graph ops (nested graphs included)")
        pending.extend(_subgraphs(gd))
    return total


def decode_graph_checked(
    graph_def: Any,
    decode: Any,
    inputs: Sequence[IODesc],
    outputs: Sequence[IODesc],
    limits: LoadLimits,
) -> Graph:
    """Decode the ModelDef graph now (``decode()``), refusing any failure as a GeError and a
    graph that disagrees with the task list; its op count is checked first."""
    count_graph_ops(graph_def, limits)
    try:
        graph = decode()
    except GeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as err:
        raise GeError(
            PARAM_INVALID, f"invalid om ModelDef: the graph does not decode ({type(err).__name__})"
        ) from err
    check_graph(graph, inputs, outputs)
    return graph


__all__ = ["check_graph", "check_inout_info", "decode_graph_checked"]
