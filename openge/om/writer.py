"""Write a CompiledModel as .om bytes (OM_FORMAT.md): header, table, four partitions.

Layer: om. The writer owns the layout of WEIGHTS_DATA: it is ``CompiledModel.weights`` as the
compiler made it (tensors 64-byte aligned; WEIGHT slots and variable init offsets point into
it), followed, when needed, by the value of every ``Const`` that the compiler's
``stats["const_offsets"]`` (node name → ``[offset, nbytes]``) does not place, each 64-byte
aligned. TASK_INFO is zero-padded so that WEIGHTS_DATA starts at a file offset multiple of 4096.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from openge.errors import INTERNAL_ERROR, PARAM_INVALID, GeError
from openge.graph import DataType, Graph, Tensor
from openge.om import container as ct
from openge.om.modeldef import WeightRef, build_model_def, serialize_model_def, tensor_bytes
from openge.om.plan import WEIGHT_ALIGN, CompiledModel, IODesc
from openge.om.taskinfo import PlanData, encode_task_info, validate_plan
from openge.ops import has_op
from openge.version import OM_FORMAT_VERSION, PRODUCER


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _byte_view(data: Any) -> memoryview:
    try:
        view = memoryview(data)
        return view if view.format == "B" and view.ndim == 1 else view.cast("B")
    except TypeError:
        raise GeError(
            PARAM_INVALID,
            "CompiledModel.weights must be a contiguous bytes-like object, got "
            f"{type(data).__name__}",
        ) from None


def layout_weights(
    model: CompiledModel,
) -> tuple[list[memoryview], int, dict[str, WeightRef], dict[str, WeightRef]]:
    """Place every top-level Const (and Variable initial value) in WEIGHTS_DATA.

    Returns the pieces of WEIGHTS_DATA (to be joined), its total size, the Const refs and the
    Variable refs (node name → WeightRef).
    """
    blob = _byte_view(model.weights)
    given = model.stats.get("const_offsets") or {}
    if not isinstance(given, Mapping):
        raise GeError(
            PARAM_INVALID, "stats['const_offsets'] must map Const name -> [offset, nbytes]"
        )
    pieces: list[memoryview] = [blob] if len(blob) else []
    size = len(blob)
    consts: dict[str, WeightRef] = {}
    placed: dict[bytes, WeightRef] = {}
    for node in model.graph.nodes:
        if node.op_type != "Const":
            continue
        value = node.attrs.get("value")
        if not isinstance(value, (Tensor, np.ndarray)):
            raise GeError(
                PARAM_INVALID, f"Const {node.name} has no Tensor 'value' attr (got {value!r})"
            )
        data = tensor_bytes(value)
        if node.name in given:
            consts[node.name] = _given_ref(node.name, given[node.name], data, blob)
            continue
        if data.nbytes == 0:
            consts[node.name] = WeightRef(0, 0)
            continue
        key = hashlib.sha256(data).digest() + data.nbytes.to_bytes(8, "little")
        if key in placed:
            consts[node.name] = placed[key]
            continue
        start = _align(size, WEIGHT_ALIGN)
        if start > size:
            pieces.append(memoryview(bytes(start - size)))
        pieces.append(data)
        size = start + data.nbytes
        placed[key] = consts[node.name] = WeightRef(start, data.nbytes)
    variables = _variable_refs(model.graph, model, blob)
    return pieces, size, consts, variables


def _given_ref(name: str, entry: Any, data: memoryview, blob: memoryview) -> WeightRef:
    try:
        offset, nbytes = (int(v) for v in entry)
    except (TypeError, ValueError):
        raise GeError(
            INTERNAL_ERROR, f"stats['const_offsets'][{name!r}] = {entry!r} is not [offset, nbytes]"
        ) from None
    if nbytes != data.nbytes:
        raise GeError(
            INTERNAL_ERROR,
            f"Const {name}: const_offsets says {nbytes} bytes but its value has {data.nbytes}",
        )
    if offset < 0 or offset % WEIGHT_ALIGN or offset + nbytes > len(blob):
        raise GeError(
            INTERNAL_ERROR,
            f"Const {name}: const_offsets offset {offset} (+{nbytes} bytes) must be a multiple "
            f"of {WEIGHT_ALIGN} inside the weights ({len(blob)} bytes)",
        )
    stored = np.frombuffer(blob, np.uint8, nbytes, offset)
    if not np.array_equal(stored, np.frombuffer(data, np.uint8)):
        raise GeError(
            INTERNAL_ERROR,
            f"Const {name}: the weights at const_offsets {offset} differ from its value",
        )
    return WeightRef(offset, nbytes)


def _variable_refs(graph: Graph, model: CompiledModel, blob: memoryview) -> dict[str, WeightRef]:
    """Variable nodes whose ``value`` equals their VariableDef's initial bytes: stored by ref."""
    by_name = {v.name: v for v in model.variables}
    refs: dict[str, WeightRef] = {}
    for node in graph.nodes:
        var = by_name.get(node.name)
        value = node.attrs.get("value")
        if node.op_type != "Variable" or var is None or not isinstance(value, Tensor):
            continue
        if value.dtype != var.dtype or value.shape != var.shape:
            continue
        data = tensor_bytes(value)
        end = var.init_offset + data.nbytes
        if data.nbytes and end <= len(blob) and blob[var.init_offset : end] == data:
            refs[node.name] = WeightRef(var.init_offset, data.nbytes)
    return refs


def _inout_desc(d: IODesc) -> ct.InOutDesc:
    static = all(x >= 0 for x in d.shape) and d.dtype not in (DataType.DT_STRING, DataType.DT_BF16)
    ranges = d.range or tuple((x, x) if x >= 0 else (0, -1) for x in d.shape)
    return ct.InOutDesc(
        name=d.name,
        size=d.size if static else 0,
        format=int(d.format),
        dtype=int(d.dtype),
        dims=tuple(d.shape),
        dims_v2=tuple(d.shape),
        shape_range=ranges,
    )


def serialize(model: CompiledModel, *, online: bool) -> bytes:
    """The .om bytes of ``model`` (``online``: genmode 1, a get_compiled_model buffer).

    Raises GeError when the model cannot be stored: an op type missing from the catalog, a slot
    outside the arena or weights, an attr value of an unsupported type, a bad const offset.
    """
    pieces, weight_size, const_refs, var_refs = layout_weights(model)
    validate_plan(
        model.tasks,
        num_inputs=len(model.inputs),
        num_outputs=len(model.outputs),
        variables=model.variables,
        num_external=len(model.external_weights),
        memory_size=model.memory_size,
        weight_size=weight_size,
        known_op=has_op,
    )
    producer = model.producer or PRODUCER
    stats = dict(model.stats)
    stats["const_offsets"] = {k: [r.offset, r.nbytes] for k, r in const_refs.items()}
    plan = PlanData(
        format_major=OM_FORMAT_VERSION[0],
        format_minor=OM_FORMAT_VERSION[1],
        name=model.name,
        producer=producer,
        online=online,
        is_dynamic=model.is_dynamic,
        memory_size=model.memory_size,
        weight_size=weight_size,
        tasks=model.tasks,
        inputs=model.inputs,
        outputs=model.outputs,
        variables=model.variables,
        external_weights=model.external_weights,
        options=dict(model.options),
        stats=stats,
    )
    task_info = encode_task_info(plan)
    model_def = serialize_model_def(
        build_model_def(
            model.graph,
            name=model.name,
            weight_refs={**var_refs, **const_refs},
            memory_size=model.memory_size,
            weight_size=weight_size,
            producer=producer,
            format_version=OM_FORMAT_VERSION,
            online=online,
            options=model.options,
        )
    )
    try:
        inout = ct.pack_inout_info(
            [_inout_desc(d) for d in model.inputs], [_inout_desc(d) for d in model.outputs]
        )
    except UnicodeError as err:
        raise GeError(PARAM_INVALID, f"an input/output name is not valid text: {err}") from err
    if weight_size:
        count = sum(1 for p in (inout, model_def, task_info) if p) + 1
        before = ct.data_start(count) + len(inout) + len(model_def) + len(task_info)
        task_info += bytes(-before % ct.WEIGHTS_FILE_ALIGN)
    header = ct.OmHeader(
        name=model.name,
        genmode=1 if online else 0,
        ops=len(model.tasks),
        platform_version=PRODUCER,
        is_unknow_model=1 if model.is_dynamic else 0,
    )
    return ct.pack_container(
        header,
        [
            (ct.PartitionType.MODEL_INOUT_INFO, inout),
            (ct.PartitionType.MODEL_DEF, model_def),
            (ct.PartitionType.TASK_INFO, task_info),
            (ct.PartitionType.WEIGHTS_DATA, pieces),
        ],
    )


__all__ = ["layout_weights", "serialize"]
