"""A device graph as an openge Graph, when every node can run on openge; else the reasons.

Layer: om. The graph is rebuilt in the origin layouts: each tensor gets its ``origin_format``
and ``origin_shape``, Const weights are decoded back to them (weights.py), TransData becomes an
Identity (or a Reshape when ATC merged a reshape into it), Cast stays a Cast, and device-only
bookkeeping ops (Send / Recv / AtomicAddrClean …) are dropped. A node cannot run when it is
a fused node (its merged ops' attributes are gone), an AICPU ``FrameworkOp``, an op type
openge has no kernel for (kernel-only), an op with a subgraph, or an op missing a required
attribute; ``to_graph`` then raises one GeError listing every such node and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openge.errors import UNSUPPORTED, GeError
from openge.graph import DataType, Format, Graph, Tensor, TensorDesc
from openge.om.device.nodes import fusion_reason, original_ops
from openge.om.device.protojson import unknown_fields
from openge.om.device.reader import DeviceOm
from openge.om.device.weights import CONST_TYPES, attr_ints, attr_text, origin_array
from openge.om.device.weights_layout import DEVICE_FORMATS
from openge.om.modeldef import from_proto_dtype
from openge.ops import Trait, get_schema, has_op
from openge.ops.schema import AttrType

#: Device-only ops with no effect on values (stream sync, memory zeroing): dropped.
BOOKKEEPING = frozenset(
    {"Send", "Recv", "AtomicAddrClean", "MemcpyAsync", "StreamActive", "StreamSwitch", "LabelSet"}
)
#: Attrs that name axes or positions: their meaning changes when GE runs an op in a blocked
#: layout, so such an op is not rebuilt in origin layouts.
AXIS_ATTRS = frozenset(
    {"axes", "axis", "dim", "dims", "concat_dim", "split_dim", "perm", "begin", "end", "size"}
    | {"offsets", "multiples", "shape", "paddings", "block_shape", "crops"}
)
#: Ops read as the graph's inputs / outputs.
DATA_TYPES = ("Data", "RefData")
_LIST_TYPES = {AttrType.LIST_INT, AttrType.LIST_FLOAT, AttrType.LIST_BOOL, AttrType.LIST_STR}


class Refusal(list):
    """``(node, op type, reason)`` for every node that cannot run."""

    def text(self, limit: int = 50) -> str:
        """One line per node (at most ``limit``)."""
        lines = [f"  {name} ({op_type}): {why}" for name, op_type, why in self[:limit]]
        if len(self) > limit:
            lines.append(f"  … and {len(self) - limit} more")
        return "\n".join(lines)


def _format(text: str) -> Format | None:
    try:
        return Format.from_layout_name(text) if text else Format.FORMAT_ND
    except GeError:
        return None


def origin_desc(td: Any) -> TensorDesc | None:
    """A tensor's origin description (dtype, origin shape and format), None when openge lacks
    the dtype or layout."""
    shape = attr_ints(td.attr, "origin_shape")
    if shape is None:
        shape = tuple(td.shape.dim)
    fmt = _format(attr_text(td.attr, "origin_format") or td.layout)
    try:
        dtype = from_proto_dtype(td.dtype)
    except GeError:
        return None
    if fmt is None:
        return None
    return TensorDesc(dtype, tuple(shape), fmt)


def _attr_value(a: Any, spec_type: AttrType) -> Any:
    kind = a.WhichOneof("value")
    if kind == "list":
        lst = a.list
        if spec_type == AttrType.LIST_STR:
            return [s.decode("utf-8", "replace") for s in lst.s]
        if spec_type == AttrType.LIST_FLOAT:
            return list(lst.f)
        if spec_type == AttrType.LIST_BOOL:
            return list(lst.b)
        return list(lst.i)
    if kind == "s":
        return a.s.decode("utf-8", "replace")
    if kind == "dt":
        return from_proto_dtype(a.dt)
    if kind in ("i", "f", "b"):
        value = getattr(a, kind)
        if spec_type == AttrType.TYPE and kind == "i":
            return DataType(value)  # GE writes DstT-style attrs as the API's enum value
        return value
    return None


def _op_attrs(op: Any, op_type: str) -> tuple[dict[str, Any], list[str]]:
    """The attrs openge's schema declares, and the required ones the node lacks."""
    schema = get_schema(op_type)
    attrs: dict[str, Any] = {}
    missing = []
    for spec in schema.attrs:
        if spec.name in op.attr:
            try:
                value = _attr_value(op.attr[spec.name], spec.type)
            except (GeError, ValueError):
                value = None
            if value is not None:
                attrs[spec.name] = value
                continue
        if spec.required:
            missing.append(spec.name)
    return attrs, missing


def _why_not(op: Any) -> str:
    """Why ``op`` cannot run on openge ("" when it can)."""
    if op.type == "FrameworkOp":
        original = attr_text(op.attr, "original_type") or "a framework op"
        return f"AICPU FrameworkOp ({original}) runs TensorFlow's kernel on the device's AICPU"
    reason = fusion_reason(op)
    if reason:
        merged = original_ops(op)
        what = f"fused node ({reason})" + (f" merging {', '.join(merged)}" if merged else "")
        if has_op(op.type):
            _, missing = _op_attrs(op, op.type)
            if missing:
                return f"{what}; missing {', '.join(missing)}"
        return f"{what}: the merged ops' attributes are not kept"
    if "subgraph_name" in unknown_fields(op):
        return "has subgraphs (control flow / partitioned call): openge does not run them"
    if op.type == "TransData":
        return ""
    if not has_op(op.type):
        return f"kernel-only op: openge has no kernel for {op.type}"
    if get_schema(op.type).has(Trait.SOURCE):  # FileConstant, Variable: state outside the file
        return (
            f"{op.type} holds its value outside the model file (external weight or device "
            "variable): openge runs device models whose weights are Const nodes"
        )
    blocked = sorted({d.layout for d in op.input_desc if d.layout in DEVICE_FORMATS})
    axis_attrs = sorted(AXIS_ATTRS & set(op.attr))
    if blocked and axis_attrs:
        return (
            f"runs in device layout {', '.join(blocked)} with layout-dependent attr "
            f"{', '.join(axis_attrs)} (GE rewrites such attrs for the device layout)"
        )
    _, missing = _op_attrs(op, op.type)
    if missing:
        return f"missing {', '.join(missing)}"
    return ""


def refusals(om: DeviceOm, index: int = 0) -> Refusal:
    """Every node of model ``index`` that cannot run on openge, with the reason."""
    out = Refusal()
    h = om.header
    if om.nested:
        name = om.flow_name or h.name or (om.model_def(index).name if om.has_model_def() else "")
        out.append((name, h.modeltype_name, f"a {h.modeltype_name.lower()} model of nested oms"))
        return out
    md = om.model_def(index)
    if len(md.graph) != 1:
        out.append((md.name, "ModelDef", f"{len(md.graph)} graphs (a root model with subgraphs)"))
    if not md.graph:
        return out
    for op in md.graph[0].op:
        if op.type in CONST_TYPES and "value" in op.attr:
            layout = op.attr["value"].t.desc.layout or "ND"
            if layout not in DEVICE_FORMATS and _format(layout) is None:
                out.append(
                    (op.name, op.type, f"weight in layout {layout}, which openge does not convert")
                )
            continue
        if op.type in BOOKKEEPING or op.type in CONST_TYPES or op.type in DATA_TYPES:
            continue
        if op.type == "NetOutput":
            continue
        why = _why_not(op)
        if why:
            out.append((op.name, op.type, why))
    return out


def _ref(text: str) -> tuple[str, int]:
    name, _, index = text.rpartition(":")
    try:
        return name, int(index)
    except ValueError:
        return text, 0


def to_graph(om: DeviceOm, index: int = 0) -> Graph:
    """Model ``index`` as an openge Graph in origin layouts (GeError listing what cannot run)."""
    problems = refusals(om, index)
    if problems:
        name = om.flow_name or om.header.name or om.model_def(index).name
        raise GeError(
            UNSUPPORTED,
            f"device model {name!r} cannot run on openge: {len(problems)} node(s) "
            f"need the Ascend device:\n{problems.text()}\n(inspect it with `openge atc "
            "--mode=6`, get its weights with `openge om weights`, or convert the source model "
            "with `openge atc`)",
        )
    md = om.model_def(index)
    try:
        return _build(om, md, index)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise GeError(
            UNSUPPORTED, f"device model {md.name!r}: its graph is not consistent ({err!r})"
        ) from None


def _build(om: DeviceOm, md: Any, index: int) -> Graph:
    gd = md.graph[0]
    graph = Graph(gd.name or md.name or "device_graph")
    weights = om.weights(index)
    dropped: dict[str, str] = {}
    outputs = []
    nodes = {}
    for op in gd.op:
        if op.type in BOOKKEEPING:
            dropped[op.name] = op.type
    for op in gd.op:
        if op.name in dropped:
            continue
        where = f"node {op.name!r} ({op.type})"
        if op.type in CONST_TYPES:
            const = origin_array(op.attr["value"].t, weights, where)
            fmt = _format(const.origin_format) or Format.FORMAT_ND
            value = Tensor(np.ascontiguousarray(const.array), format=fmt)
            nodes[op.name] = graph.add_node("Const", name=op.name, attrs={"value": value})
        elif op.type in DATA_TYPES:
            desc = origin_desc(op.output_desc[0]) if op.output_desc else None
            if desc is None:
                raise GeError(UNSUPPORTED, f"{where}: its dtype or layout is not one openge has")
            index_attr = op.attr["index"].i if "index" in op.attr else len(graph.inputs)
            nodes[op.name] = graph.add_node(
                "Data", name=op.name, attrs={"index": index_attr}, output_descs=[desc]
            )
        elif op.type == "NetOutput":
            outputs = [t for t in op.input if t and not t.endswith(":-1")]
        elif op.type == "TransData":
            nodes[op.name] = _trans_data(graph, op)
        else:
            attrs, _ = _op_attrs(op, op.type)
            nodes[op.name] = graph.add_node(
                op.type, name=op.name, attrs=attrs, num_outputs=max(len(op.output_desc), 1)
            )
    for op in gd.op:
        node = nodes.get(op.name)
        if node is None or op.type in CONST_TYPES or op.type in DATA_TYPES:
            continue
        extra = node.attrs.pop("_openge_shape", None)
        for i, text in enumerate(op.input):
            if not text:
                if i < len(op.input_desc) and op.input_desc[i].layout == "FORMAT_RESERVED":
                    graph.add_input(node, None)
                    continue
                graph.add_input(node, None)
                continue
            name, idx = _ref(text)
            if idx < 0 or name in dropped:
                continue  # control edges and edges from dropped bookkeeping ops
            if op.type == "TransData" and i > 0:
                continue
            graph.add_input(node, nodes[name].output(idx))
        if extra is not None:
            shape = graph.add_node(
                "Const",
                name=graph.unique_name(f"{op.name}/shape"),
                attrs={"value": Tensor(np.asarray(extra, dtype=np.int64))},
            )
            graph.add_input(node, shape.output(0))
        while len(node.inputs) > 1 and node.inputs[-1] is None:
            node._inputs.pop()  # trailing omitted optional inputs
    graph.set_outputs([nodes[_ref(t)[0]].output(_ref(t)[1]) for t in outputs])
    return graph


def _trans_data(graph: Graph, op: Any) -> Any:
    """TransData in origin space: Identity, or Reshape when ATC merged a reshape into it."""
    src = origin_desc(op.input_desc[0]) if op.input_desc else None
    dst = origin_desc(op.output_desc[0]) if op.output_desc else None
    if src is None or dst is None or src.shape == dst.shape:
        return graph.add_node("Identity", name=op.name)
    return graph.add_node("Reshape", name=op.name, attrs={"_openge_shape": list(dst.shape)})


__all__ = ["BOOKKEEPING", "Refusal", "origin_desc", "refusals", "to_graph"]
