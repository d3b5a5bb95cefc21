"""The TASK_INFO partition: the compiled plan as ``openge.task.TaskList`` (OM_FORMAT.md §5).

Layer: om. The partition is ``u32 magic 'OTSK'; u32 format_major; u64 body_length;`` then the
protobuf body, then zero padding (added by the writer). Decoding builds only plain data
(Task, Slot, IODesc, …) and checks it: every op type is in the catalog and every slot lies
inside the arena, the weights or the io / variable / external-weight tables. Nothing from the
file is ever executed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Format, Tensor
from openge.om import gears as gear_table
from openge.om import task_pb2 as tp
from openge.om.container import MAX_DIMS, MAX_NAME_BYTES, TASK_INFO_HEAD, TASK_INFO_MAGIC
from openge.om.limits import MAX_ARRAY_SPAN
from openge.om.modeldef import check_name, check_rank
from openge.om.plan import (
    ExternalWeight,
    IODesc,
    Slot,
    SlotKind,
    Task,
    VariableDef,
)

logger = logging.getLogger(__name__)

#: Largest task count accepted from a file.
MAX_TASKS = 1 << 22
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_K = tp.AttrList


def _invalid(message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om TASK_INFO: {message}")


# ----- attr values --------------------------------------------------------------------------


def _int64(value: Any, where: str) -> int:
    v = int(value)
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise GeError(PARAM_INVALID, f"{where}: {v} does not fit in int64")
    return v


def _scalar_kind(v: Any) -> int | None:
    if isinstance(v, (bool, np.bool_)):
        return _K.BOOL
    if isinstance(v, DataType):
        return _K.DATA_TYPE
    if isinstance(v, (int, np.integer)):
        return _K.INT
    if isinstance(v, (float, np.floating)):
        return _K.FLOAT
    if isinstance(v, str):
        return _K.STRING
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _K.BYTES
    return None


def value_to_proto(value: Any, where: str, out: Any = None) -> Any:
    """A kernel attr value as an ``openge.task.AttrValue`` (GeError for unsupported types)."""
    a = tp.AttrValue() if out is None else out
    if value is None:
        return a
    if isinstance(value, (bool, np.bool_)):
        a.b = bool(value)
    elif isinstance(value, DataType):
        a.dt = int(value)
    elif isinstance(value, (int, np.integer)):
        a.i = _int64(value, where)
    elif isinstance(value, (float, np.floating)):
        a.f = float(value)
    elif isinstance(value, str):
        a.s = value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        a.bt = bytes(value)
    elif isinstance(value, (Tensor, np.ndarray)):
        _tensor_to_proto(value, where, a.t)
    elif isinstance(value, Mapping):
        a.map.SetInParent()  # an empty dict is still a dict, not None
        for key, item in value.items():
            if not isinstance(key, str):
                raise GeError(PARAM_INVALID, f"{where}: dict key {key!r} is not a str")
            entry = a.map.attr.add()
            entry.name = key
            value_to_proto(item, f"{where}[{key!r}]", entry.value)
    elif isinstance(value, (list, tuple)):
        _list_to_proto(value, where, a.list)
    else:
        raise GeError(
            PARAM_INVALID,
            f"{where}: a {type(value).__name__} value cannot be stored in an .om task list "
            "(supported: None, bool, int, float, str, bytes, DataType, Tensor, ndarray, dict, "
            "list, tuple)",
        )
    return a


def _list_to_proto(items: Sequence[Any], where: str, lst: Any) -> None:
    lst.SetInParent()  # an empty list is still a list, not None
    lst.tuple = isinstance(items, tuple)
    if not items:
        lst.kind = _K.EMPTY
        return
    kinds = {_scalar_kind(v) for v in items}
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is None:
        lst.kind = _K.VALUE
        for i, v in enumerate(items):
            value_to_proto(v, f"{where}[{i}]", lst.v.add())
        return
    lst.kind = kind
    if kind == _K.INT:
        lst.i.extend(_int64(v, where) for v in items)
    elif kind == _K.FLOAT:
        lst.f.extend(float(v) for v in items)
    elif kind == _K.BOOL:
        lst.b.extend(bool(v) for v in items)
    elif kind == _K.STRING:
        lst.s.extend(items)
    elif kind == _K.BYTES:
        lst.bt.extend(bytes(v) for v in items)
    else:
        lst.dt.extend(int(v) for v in items)


def _tensor_to_proto(value: Tensor | np.ndarray, where: str, out: Any) -> None:
    tensor = value if isinstance(value, Tensor) else Tensor(value)
    check_rank(tensor.shape, where)
    array = np.ascontiguousarray(tensor.numpy())
    out.dtype = int(tensor.dtype)
    out.shape.extend(array.shape)
    out.data = array.tobytes()
    out.format = int(tensor.format)
    out.ndarray = not isinstance(value, Tensor)


def _dtype(value: int, where: str) -> DataType:
    try:
        return DataType(value)
    except ValueError:
        raise _invalid(f"{where}: {value} is not a GE DataType") from None


def _shape(dims: Sequence[int], where: str, *, allow_unknown: bool = False) -> tuple[int, ...]:
    if len(dims) > MAX_DIMS:
        raise _invalid(f"{where}: {len(dims)} dims; at most {MAX_DIMS}")
    low = -1 if allow_unknown else 0
    if any(d < low for d in dims):
        raise _invalid(f"{where}: shape {list(dims)} has a negative dim")
    return tuple(dims)


def _fmt(value: int, where: str) -> Format:
    try:
        return Format(value)
    except ValueError:
        raise _invalid(f"{where}: {value} is not a GE Format") from None


def _name(text: str, where: str) -> str:
    if len(text) > MAX_NAME_BYTES or len(text.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        raise _invalid(f"{where}: a name longer than {MAX_NAME_BYTES} bytes")
    return text


def _tensor_from_proto(t: Any, where: str) -> Tensor | np.ndarray:
    dtype = _dtype(t.dtype, where)
    shape = _shape(t.shape, where)
    try:
        np_dtype = dtype.np_dtype
    except GeError:
        raise _invalid(f"{where}: a {dtype.name} tensor cannot hold data") from None
    count = 1
    for d in shape:
        count *= d
    if count * np_dtype.itemsize != len(t.data):
        raise _invalid(f"{where}: {len(t.data)} bytes for a {dtype.name}{list(shape)} tensor")
    try:
        array = np.frombuffer(t.data, dtype=np_dtype).reshape(shape)
    except ValueError as err:
        raise _invalid(f"{where}: {err}") from None
    if t.ndarray:
        return array
    return Tensor(array, format=_fmt(t.format, where))


def value_from_proto(a: Any, where: str) -> Any:
    """The Python value of an ``openge.task.AttrValue`` (inverse of ``value_to_proto``)."""
    kind = a.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("i", "f", "b", "s", "bt"):
        return getattr(a, kind)
    if kind == "dt":
        return _dtype(a.dt, where)
    if kind == "t":
        return _tensor_from_proto(a.t, where)
    if kind == "map":
        return {e.name: value_from_proto(e.value, f"{where}[{e.name!r}]") for e in a.map.attr}
    lst = a.list
    items: list[Any]
    if lst.kind == _K.EMPTY:
        items = []
    elif lst.kind == _K.INT:
        items = list(lst.i)
    elif lst.kind == _K.FLOAT:
        items = list(lst.f)
    elif lst.kind == _K.BOOL:
        items = list(lst.b)
    elif lst.kind == _K.STRING:
        items = list(lst.s)
    elif lst.kind == _K.BYTES:
        items = list(lst.bt)
    elif lst.kind == _K.DATA_TYPE:
        items = [_dtype(v, where) for v in lst.dt]
    elif lst.kind == _K.VALUE:
        items = [value_from_proto(v, f"{where}[{i}]") for i, v in enumerate(lst.v)]
    else:
        raise _invalid(f"{where}: unknown list kind {lst.kind}")
    return tuple(items) if lst.tuple else items


# ----- the task list ------------------------------------------------------------------------


@dataclass
class PlanData:
    """The plain-data content of a TASK_INFO body."""

    format_major: int
    format_minor: int
    name: str
    producer: str
    online: bool
    is_dynamic: bool
    memory_size: int
    weight_size: int
    tasks: list[Task]
    inputs: list[IODesc]
    outputs: list[IODesc]
    variables: list[VariableDef]
    external_weights: list[ExternalWeight]
    options: dict[str, str]
    stats: dict[str, Any] = field(default_factory=dict)
    gears: gear_table.GearSet | None = None


def _slot_to_proto(slot: Slot, out: Any, where: str) -> None:
    check_rank(slot.shape, where)
    out.kind = int(slot.kind)
    out.offset = slot.offset
    out.dtype = int(slot.dtype)
    out.shape.extend(slot.shape)


def encode_task_info(plan: PlanData) -> bytes:
    """The TASK_INFO payload (head + body, no padding) of ``plan``."""
    tl = tp.TaskList()
    try:
        tl.format_major = plan.format_major
        tl.format_minor = plan.format_minor
        tl.name = plan.name
        tl.producer = plan.producer
        tl.online = plan.online
        tl.is_dynamic = plan.is_dynamic
        tl.memory_size = plan.memory_size
        tl.weight_size = plan.weight_size
        for src, dst in ((plan.inputs, tl.inputs), (plan.outputs, tl.outputs)):
            for d in src:
                check_name(d.name, "model input/output")
                check_rank(d.shape, f"model input/output {d.name}")
                io = dst.add()
                io.name = d.name
                io.dtype = int(d.dtype)
                io.shape.extend(d.shape)
                io.format = int(d.format)
        for v in plan.variables:
            check_name(v.name, "variable")
            check_rank(v.shape, f"variable {v.name}")
            var = tl.variables.add()
            var.name = v.name
            var.dtype = int(v.dtype)
            var.shape.extend(v.shape)
            var.format = int(v.format)
            var.init_offset = v.init_offset
        for w in plan.external_weights:
            check_name(w.location, "external weight")
            check_name(w.directory, "external weight directory")
            check_rank(w.shape, f"external weight {w.location}")
            ext = tl.external_weights.add()
            ext.location = w.location
            ext.offset = w.offset
            ext.length = w.length
            ext.sha256 = w.sha256
            ext.dtype = int(w.dtype)
            ext.shape.extend(w.shape)
            ext.directory = w.directory
        for key, value in plan.options.items():
            opt = tl.options.add()
            opt.key = str(key)
            opt.value = str(value)
        for task in plan.tasks:
            check_name(task.name, "task")
            check_name(task.op_type, f"task {task.name}")
            t = tl.tasks.add()
            t.name = task.name
            t.op_type = task.op_type
            where = f"task {task.name} ({task.op_type})"
            for key, value in task.attrs.items():
                entry = t.attrs.add()
                entry.name = key
                value_to_proto(value, f"{where} attr {key!r}", entry.value)
            for j, slot in enumerate(task.inputs):
                _slot_to_proto(slot, t.inputs.add(), f"{where} input {j}")
            for j, slot in enumerate(task.outputs):
                _slot_to_proto(slot, t.outputs.add(), f"{where} output {j}")
        for key, value in plan.stats.items():
            entry = tp.Attr(name=str(key))
            try:
                value_to_proto(value, f"stats[{key!r}]", entry.value)
            except GeError as err:
                logger.debug("stats entry %r not stored in the om: %s", key, err.message)
                continue
            tl.stats.append(entry)
        if plan.gears is not None:
            gear_table.to_proto(plan.gears, tl.gear_table)
        body = tl.SerializeToString(deterministic=True)
    except (ValueError, TypeError) as err:  # protobuf refusing a value (range, encoding)
        raise GeError(PARAM_INVALID, f"cannot write the task list of {plan.name}: {err}") from err
    return TASK_INFO_HEAD.pack(TASK_INFO_MAGIC, plan.format_major, len(body)) + body


def _io_from_proto(d: Any, where: str) -> IODesc:
    return IODesc(
        _name(d.name, where),
        _dtype(d.dtype, where),
        _shape(d.shape, where, allow_unknown=True),
        _fmt(d.format, where),
    )


def _slot_from_proto(s: Any, where: str, cache: dict[tuple[Any, ...], Slot]) -> Slot:
    key = (s.kind, s.offset, s.dtype, *s.shape)
    slot = cache.get(key)
    if slot is None:
        slot = cache[key] = _new_slot(s, where)
    return slot


def _new_slot(s: Any, where: str) -> Slot:
    try:
        kind = SlotKind(s.kind)
    except ValueError:
        raise _invalid(f"{where}: slot kind {s.kind} is unknown") from None
    return Slot(kind, s.offset, _dtype(s.dtype, where), _shape(s.shape, where))


def decode_task_info(body: Any) -> PlanData:
    """Decode a TASK_INFO body into plain data (structure only; see ``validate_plan``)."""
    try:
        tl = tp.TaskList.FromString(body)
    except Exception as err:  # DecodeError, or the runtime's own recursion/size limits
        raise _invalid(f"the task list does not decode: {err}") from err
    if len(tl.tasks) > MAX_TASKS:
        raise _invalid(f"{len(tl.tasks)} tasks; at most {MAX_TASKS}")
    tasks = []
    slots: dict[tuple[Any, ...], Slot] = {}  # a tensor's slot is shared by producer and users
    for i, t in enumerate(tl.tasks):
        where = f"task {i} ({_name(t.name, 'task')}, {_name(t.op_type, 'op type')})"
        attrs = {}
        for entry in t.attrs:
            attrs[_name(entry.name, where)] = value_from_proto(
                entry.value, f"{where} attr {entry.name!r}"
            )
        tasks.append(
            Task(
                t.name,
                t.op_type,
                tuple(_slot_from_proto(s, where, slots) for s in t.inputs),
                tuple(_slot_from_proto(s, where, slots) for s in t.outputs),
                attrs,
            )
        )
    variables = [
        VariableDef(
            _name(v.name, "variable"),
            _dtype(v.dtype, f"variable {v.name}"),
            _shape(v.shape, f"variable {v.name}"),
            _fmt(v.format, f"variable {v.name}"),
            v.init_offset,
        )
        for v in tl.variables
    ]
    external = [
        ExternalWeight(
            _name(w.location, "external weight"),
            w.offset,
            w.length,
            _name(w.sha256, "external weight sha256"),
            _dtype(w.dtype, f"external weight {w.location}"),
            _shape(w.shape, f"external weight {w.location}"),
            _name(w.directory, "external weight directory"),
        )
        for w in tl.external_weights
    ]
    stats = {e.name: value_from_proto(e.value, f"stats[{e.name!r}]") for e in tl.stats}
    return PlanData(
        format_major=tl.format_major,
        format_minor=tl.format_minor,
        name=_name(tl.name, "model name"),
        producer=_name(tl.producer, "producer"),
        online=tl.online,
        is_dynamic=tl.is_dynamic,
        memory_size=tl.memory_size,
        weight_size=tl.weight_size,
        tasks=tasks,
        inputs=[_io_from_proto(d, f"input {i}") for i, d in enumerate(tl.inputs)],
        outputs=[_io_from_proto(d, f"output {i}") for i, d in enumerate(tl.outputs)],
        variables=variables,
        external_weights=external,
        options={_name(o.key, "option"): o.value for o in tl.options},
        stats=stats,
        gears=gear_table.from_proto(tl.gear_table, MAX_DIMS),
    )


def _nbytes(dtype: DataType, shape: Sequence[int], where: str) -> int:
    try:
        n = dtype.itemsize
    except GeError:
        raise _invalid(f"{where}: {dtype.name} has no storage in openge") from None
    for d in shape:
        n *= d
    return n


def validate_plan(
    tasks: Sequence[Task],
    *,
    num_inputs: int,
    num_outputs: int,
    variables: Sequence[VariableDef],
    num_external: int,
    memory_size: int,
    weight_size: int,
    known_op: Any,
) -> None:
    """Check every task's op type (``known_op(op_type)``) and slot bounds; GeError otherwise."""
    bounds = {
        SlotKind.INPUT: (num_inputs, "model inputs"),
        SlotKind.OUTPUT: (num_outputs, "model outputs"),
        SlotKind.VARIABLE: (len(variables), "variables"),
        SlotKind.EXTERNAL: (num_external, "external weights"),
    }
    for i, task in enumerate(tasks):
        where = f"task {i} ({task.name}, {task.op_type})"
        if not known_op(task.op_type):
            raise GeError(
                PARAM_INVALID,
                f"{where}: op type {task.op_type!r} is not in this openge's op catalog; the "
                "model was made by an openge with more ops: upgrade openge or recompile it",
            )
        for label, slots in (("input", task.inputs), ("output", task.outputs)):
            for j, slot in enumerate(slots):
                _check_slot(slot, f"{where} {label} {j}", bounds, memory_size, weight_size)
    for v in variables:
        _check_span(v.dtype, v.shape, f"variable {v.name}")
        end = v.init_offset + _nbytes(v.dtype, v.shape, f"variable {v.name}")
        if end > weight_size:
            raise _invalid(
                f"variable {v.name}: initial value at bytes {v.init_offset}..{end} is outside "
                f"the weights ({weight_size} bytes)"
            )


def _check_span(dtype: DataType, shape: Sequence[int], where: str) -> None:
    """Refuse a shape NumPy could not describe even when it is empty (such as
    [0, 3, 2^62]): its zero dims counted as 1, the bytes must stay within MAX_ARRAY_SPAN."""
    try:
        span = dtype.itemsize
    except GeError:
        raise _invalid(f"{where}: {dtype.name} has no storage in openge") from None
    for d in shape:
        span *= max(int(d), 1)
    if span > MAX_ARRAY_SPAN:
        raise _invalid(f"{where}: shape {list(shape)} describes no array (its dims are too big)")


def _check_slot(
    slot: Slot,
    where: str,
    bounds: Mapping[SlotKind, tuple[int, str]],
    memory_size: int,
    weight_size: int,
) -> None:
    kind = slot.kind
    if kind == SlotKind.NONE:
        return
    _check_span(slot.dtype, slot.shape, where)
    if kind in (SlotKind.ARENA, SlotKind.WEIGHT):
        limit, what = (
            (memory_size, "work arena") if kind == SlotKind.ARENA else (weight_size, "weights")
        )
        end = slot.offset + _nbytes(slot.dtype, slot.shape, where)
        if end > limit:
            raise _invalid(
                f"{where}: bytes {slot.offset}..{end} are outside the {what} ({limit} bytes)"
            )
        return
    count, what = bounds[kind]
    if slot.offset >= count:
        raise _invalid(f"{where}: index {slot.offset} but the model has {count} {what}")


__all__ = [
    "MAX_TASKS",
    "PlanData",
    "decode_task_info",
    "encode_task_info",
    "validate_plan",
    "value_from_proto",
    "value_to_proto",
]
