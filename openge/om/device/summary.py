"""What ``atc --mode=6`` / ``--mode=1`` show for a device om (plain dicts and text).

Layer: om. ``describe`` gathers, per model block: name, producer (``atc_version``),
soc_version, framework, header version and table form, partitions, memory and weight sizes,
inputs and outputs (from MODEL_INOUT_INFO, else from the graph's Data / NetOutput ops), op-type
counts, fused-node count and kernel count; nested oms are described recursively.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from openge.graph import DataType, Format
from openge.om.device.inout import IoInfo, IoTensor
from openge.om.device.nodes import fusion_reason
from openge.om.device.partitions import DevicePartition
from openge.om.device.protojson import message_to_dict
from openge.om.device.reader import DeviceOm
from openge.om.device.weights import attr_ints, dtype_name

#: GE's framework numbering (``framework_type`` model attr / ATC ``--framework``).
FRAMEWORKS = {0: "Caffe", 1: "MindSpore", 3: "TensorFlow", 5: "ONNX"}


def _enum(enum: type, value: int) -> str:
    try:
        member = enum(value)
    except ValueError:
        return str(value)
    return member.layout_name if isinstance(member, Format) else member.name


def _attr(md: Any, key: str) -> Any:
    if key not in md.attr:
        return None
    a = md.attr[key]
    kind = a.WhichOneof("value")
    if kind == "s":
        return a.s.decode("utf-8", "replace")
    if kind in ("i", "b", "f"):
        return getattr(a, kind)
    return None


def _io_from_info(t: IoTensor) -> dict[str, Any]:
    return {
        "name": t.name,
        "dtype": _enum(DataType, t.dtype),
        "format": _enum(Format, t.format),
        "shape": list(t.dims),
        "size": t.size,
        "range": [list(r) for r in t.shape_range],
    }


def _io_from_desc(name: str, desc: Any) -> dict[str, Any]:
    return {
        "name": name,
        "dtype": dtype_name(desc.dtype),
        "format": desc.layout or "ND",
        "shape": list(desc.shape.dim),
        "origin_shape": list(attr_ints(desc.attr, "origin_shape") or desc.shape.dim),
    }


def graph_io(md: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs (Data ops by ``index``) and outputs (NetOutput's inputs) of the main graph."""
    if not md.graph:
        return [], []
    graph = md.graph[0]
    data = [op for op in graph.op if op.type in ("Data", "RefData")]
    data.sort(key=lambda op: op.attr["index"].i if "index" in op.attr else 0)
    inputs = [_io_from_desc(op.name, op.output_desc[0]) for op in data if op.output_desc]
    outputs = []
    for op in graph.op:
        if op.type == "NetOutput":
            for i, desc in enumerate(op.input_desc):
                src = op.input[i] if i < len(op.input) else f"output_{i}"
                outputs.append(_io_from_desc(src, desc))
    return inputs, outputs


def _partitions(parts: list[DevicePartition]) -> list[dict[str, Any]]:
    return [{"type": p.name, "offset": p.offset, "size": p.size} for p in parts]


def _gears(io: IoInfo | None) -> dict[str, Any]:
    if io is None:
        return {}
    out: dict[str, Any] = {}
    if io.dynamic_batch:
        out["dynamic_batch"] = io.dynamic_batch
    if io.dynamic_hw:
        out["dynamic_hw"] = io.dynamic_hw
    if io.dynamic_dims:
        out["dynamic_dims"] = io.dynamic_dims
    return out


def describe_model(om: DeviceOm, index: int) -> dict[str, Any]:
    """The summary of model block ``index``."""
    md = om.model_def(index)
    types = Counter(op.type for g in md.graph for op in g.op)
    fused = sum(1 for g in md.graph for op in g.op if fusion_reason(op))
    kernels = om.kernels(index)
    io = om.io_info(index)
    if io is not None and (io.inputs or io.outputs):
        inputs = [_io_from_info(t) for t in io.inputs]
        outputs = [_io_from_info(t) for t in io.outputs]
    else:
        inputs, outputs = graph_io(md)
    framework = _attr(md, "framework_type")
    if isinstance(framework, int) or (isinstance(framework, str) and framework.isdigit()):
        framework = FRAMEWORKS.get(int(framework), str(framework))
    return {
        "name": md.name or om.header.name,
        "producer": _attr(md, "atc_version") or _attr(md, "opp_version") or "",
        "soc_version": _attr(md, "soc_version") or "",
        "target_type": _attr(md, "target_type") or "",
        "framework": framework or "",
        "partitions": _partitions(om.models[index].partitions),
        "memory_size": _attr(md, "memory_size") or 0,
        "weight_size": _attr(md, "weight_size") or 0,
        "graphs": [g.name for g in md.graph],
        "inputs": inputs,
        "outputs": outputs,
        "gears": _gears(io),
        "ops": sum(types.values()),
        "op_types": dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
        "fused_nodes": fused,
        "kernels": len(kernels),
        "kernel_list": [{"store": k.store, "name": k.name, "size": k.size} for k in kernels],
        "compressed_attrs_restored": om.restored_attrs(index),
    }


def describe(om: DeviceOm) -> dict[str, Any]:
    """The whole file: header, table form, every model block, nested oms."""
    h = om.header
    return {
        "header": {
            "version": h.version_text,
            "modeltype": h.modeltype_name,
            "genmode": h.genmode,
            "name": h.name,
            "ops": h.ops,
            "om_ir_version": h.om_ir_version,
            "model_num": h.model_num,
            "platform_version": h.platform_version,
            "platform_type": h.platform_type,
            "length": h.length,
            "model_length": h.model_length,
            "is_unknow_model": h.is_unknow_model,
            "checksum_set": h.checksum_set,
        },
        "table_form": om.table_form,
        "flow_model": om.flow_name or None,
        "bundle_var_size": om.var_size,
        "models": [describe_model(om, i) for i in range(len(om.models)) if om.has_model_def(i)],
        "nested": [
            {
                "kind": n.kind,
                "name": n.name,
                "model_type": n.model_type,
                "size": n.size,
                "note": n.note,
                "om": describe(n.om) if n.om is not None else None,
            }
            for n in om.nested
        ],
    }


def model_def_json(om: DeviceOm, index: int, shapes: bool) -> dict[str, Any]:
    """Model ``index``'s ModelDef as ATC's --mode=1 JSON (op tensor descs only with shapes)."""
    d = message_to_dict(om.model_def(index))
    if not shapes:
        for g in d.get("graph", []):
            for op in g.get("op", []):
                op.pop("input_desc", None)
                op.pop("output_desc", None)
    return d


def to_json(om: DeviceOm, shapes: bool = False) -> dict[str, Any]:
    """The ``--mode=1`` document: header, partitions, per-model summary (io, sizes, kernels),
    every ModelDef, nested oms."""
    info = describe(om)
    return {
        "header": info["header"],
        "table_form": om.table_form,
        "summary": [
            {k: v for k, v in m.items() if k not in ("partitions", "op_types")}
            for m in info["models"]
        ],
        "partitions": [_partitions(m.partitions) for m in om.models],
        "model_def": [
            model_def_json(om, i, shapes) for i in range(len(om.models)) if om.has_model_def(i)
        ],
        "nested": [
            {"kind": n.kind, "name": n.name, "model_type": n.model_type, "note": n.note}
            | ({"om": to_json(n.om, shapes)} if n.om is not None else {})
            for n in om.nested
        ],
    }


def _io_line(kind: str, i: int, d: dict[str, Any]) -> str:
    extra = f" range {d['range']}" if d.get("range") else ""
    return f"{f'{kind} {i}:':<17}{d['name']} {d['dtype']} {d['format']} {d['shape']}{extra}"


def describe_text(info: dict[str, Any], indent: str = "") -> str:
    """``describe``'s dict as the --mode=6 text."""
    h = info["header"]
    lines = [
        f"header:          version {h['version']}, modeltype {h['modeltype']}, "
        f"{info['table_form']} partition table, om_ir_version {h['om_ir_version']}, "
        f"platform {h['platform_version'] or '-'}",
    ]
    if info["flow_model"]:
        lines.append(f"flow model:      {info['flow_model']}")
    if info["bundle_var_size"] is not None:
        lines.append(f"bundle vars:     {info['bundle_var_size']} bytes")
    for m in info["models"]:
        if len(info["models"]) > 1:
            lines.append(f"--- model {info['models'].index(m)}")
        parts = ", ".join(f"{p['type']} {p['size']}" for p in m["partitions"])
        types = ", ".join(f"{t} {n}" for t, n in m["op_types"].items())
        lines += [
            f"name:            {m['name']}",
            "openge model:    no (device om made by Ascend ATC / GE)",
            f"producer:        {m['producer'] or '-'}",
            f"soc_version:     {m['soc_version'] or '-'} (target {m['target_type'] or '-'})",
            f"framework:       {m['framework'] or '-'}",
            f"partitions:      {parts}",
            f"work memory:     {m['memory_size']} bytes",
            f"weight memory:   {m['weight_size']} bytes",
        ]
        lines += [_io_line("input", i, d) for i, d in enumerate(m["inputs"])]
        lines += [_io_line("output", i, d) for i, d in enumerate(m["outputs"])]
        if m["gears"]:
            lines.append(f"gears:           {m['gears']}")
        lines += [
            f"ops:             {m['ops']} ({types})",
            f"fused nodes:     {m['fused_nodes']}",
            f"kernels:         {m['kernels']}",
        ]
        if m["compressed_attrs_restored"]:
            lines.append(f"compressed attrs restored: {m['compressed_attrs_restored']}")
    for n in info["nested"]:
        lines.append(f"{n['kind']}: {n['name']} ({n['model_type'] or '-'}, {n['size']} bytes)")
        if n["om"] is not None:
            lines.append(describe_text(n["om"], indent + "  "))
        elif n["note"]:
            lines.append(f"  {n['note']}")
    return "\n".join(indent + line for line in "\n".join(lines).split("\n"))


__all__ = ["FRAMEWORKS", "describe", "describe_model", "describe_text", "graph_io", "to_json"]
