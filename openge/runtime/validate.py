"""Validate a compiled model before anything is allocated or prepared (docs/security.md).

Layer: runtime. A loaded model is untrusted: its sizes, its io descriptors and every task's
attributes come from the file. ``check_sizes`` runs first, before the work arena or any output
is allocated: arena and io bytes, task count, io dims. ``check_tasks`` then checks every task
against its op's schema the way the compiler checked the node it came from: the attrs the kernel
reads are coerced to their declared types and choices (unknown ones refused; the attrs only
inference reads come from the ModelDef node of the same name, else their defaults), the input
count fits, and the op's own shape/dtype inference, run on the task's input slots (with the
weights as constant values), must give exactly the task's output slots. So a kernel's
``prepare`` and ``run`` only ever see attrs and shapes the op's inference accepted (groups
dividing channels, strides of the right length, pads and shapes sane). Every model output
must be written by some task, so no output returns memory nothing wrote. Any failure is a
GeError naming the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from openge.errors import LOAD_MODEL, GeError
from openge.graph import TensorDesc
from openge.om.limits import MAX_ARRAY_SPAN, LoadLimits
from openge.om.plan import CompiledModel, IODesc, Slot, SlotKind, Task
from openge.ops import Trait, get_schema, has_op
from openge.ops.infer import check_input_count
from openge.ops.schema import REQUIRED, InferContext, OpSchema, coerce_attr

#: Attrs holding a fused op's JSON program (ops/fused.py): length, nesting and steps checked.
_PROGRAM_ATTRS = ("epilogue", "program")


def _refuse(message: str) -> GeError:
    return GeError(LOAD_MODEL, f"cannot load the model: {message}")


def _io_bytes(desc: IODesc, kind: str, dynamic: bool, gears: bool = False) -> int:
    dims = tuple(desc.shape)
    try:  # checked first: a dynamic model's io too (the caller makes arrays of this type)
        n = desc.dtype.itemsize
    except GeError:
        raise _refuse(
            f"{kind} {desc.name!r} has type {desc.dtype.name}, which has no storage"
        ) from None
    span = n
    for d in dims:
        span *= max(d, 1)
    if span > MAX_ARRAY_SPAN:
        # NumPy cannot describe such an array, even an empty or a dynamic one: no caller
        # could pass or receive it
        raise _refuse(
            f"{kind} {desc.name!r} has dims {list(dims)}: their product is beyond any array"
        )
    if any(d < 0 for d in dims):
        if gears and all(d >= -1 for d in dims) and desc.size > 0:
            return desc.size  # a gear model: its largest gear (the range maxima)
        if dynamic and all(d >= -1 for d in dims):
            return 0  # sized per call by the dynamic-shape runtime
        raise _refuse(f"{kind} {desc.name!r} has negative dims {list(dims)}")
    for d in dims:
        n *= d
    return n


def check_sizes(compiled: CompiledModel, limits: LoadLimits) -> None:
    """Sizes against ``limits`` before any allocation: task count, arena + io bytes, io dims."""
    limits.check("max_tasks", len(compiled.tasks), "the model's task count")
    memory = int(compiled.memory_size)
    if memory < 0:
        raise _refuse(f"negative work memory size {memory}")
    dynamic = bool(compiled.is_dynamic)
    gears = compiled.gears is not None
    io = sum(_io_bytes(d, "input", dynamic, gears) for d in compiled.inputs) + sum(
        _io_bytes(d, "output", dynamic, gears) for d in compiled.outputs
    )
    limits.check(
        "max_arena_bytes", memory + io, "the model's work memory plus input and output bytes"
    )


def check_outputs_written(compiled: CompiledModel) -> None:
    """Every model output is written by at least one task (else it would return garbage) — by
    every gear's task list in a gear model. A dynamic-shape model has no task list: each plan
    it makes at run time is a static model checked like any other."""
    if compiled.is_dynamic and not compiled.tasks and compiled.stats.get("dynamic_shape"):
        return
    if compiled.gears is None:
        ranges = [("", compiled.tasks)]
    else:
        ranges = [
            (f" in gear {i}", compiled.tasks[g.task_begin : g.task_end])
            for i, g in enumerate(compiled.gears.gears)
        ]
    for where, tasks in ranges:
        written = {
            slot.offset for task in tasks for slot in task.outputs if slot.kind == SlotKind.OUTPUT
        }
        for i, desc in enumerate(compiled.outputs):
            if i not in written:
                raise _refuse(
                    f"no task writes output {i} ({desc.name!r}){where}: it would return memory "
                    "nothing wrote"
                )


def _depth(value: Any, limit: int, level: int = 0) -> int:
    """Nesting depth of lists/tuples/dicts in ``value`` (stops counting past ``limit``)."""
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((_depth(v, limit, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, (list, tuple)):
        return max((_depth(v, limit, level + 1) for v in value), default=level + 1)
    return level


def _text_depth(text: str) -> int:
    """Bracket nesting depth of a JSON text, without parsing it."""
    depth = best = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _check_program(text: Any, where: str, limits: LoadLimits) -> None:
    if not isinstance(text, str):
        return  # coerce_attr reports the type
    depth = _text_depth(text)
    if depth > limits.max_nesting:
        limits.check("max_nesting", depth, f"{where}: the nesting depth of its program")
    # Each step is at least ~40 characters of JSON; count them cheaply before decoding.
    steps = text.count('"op"')
    if steps > limits.max_program_steps:
        limits.check("max_program_steps", steps, f"{where}: the steps of its program")


def _attrs(
    task: Task, schema: OpSchema, where: str, limits: LoadLimits, node_attrs: dict[str, Any]
) -> dict[str, Any] | None:
    """The task's attrs (the kernel's) and, for the others inference reads, its graph node's or
    the defaults, coerced by the schema (None when a required one is in neither: the task is
    then checked without inference)."""
    kernel = set(schema.kernel_attrs)
    missing = [k for k in kernel if k not in task.attrs]
    if missing:
        raise _refuse(f"{where} lacks attr {missing[0]!r}")
    known = {spec.name for spec in schema.attrs}
    for key, value in task.attrs.items():
        if key not in known and not key.startswith("_"):
            raise _refuse(f"{where} has attr {key!r}, which op {task.op_type} does not have")
        depth = _depth(value, limits.max_nesting)
        if depth > limits.max_nesting:
            limits.check("max_nesting", depth, f"{where}: attr {key!r} nesting depth")
    given = {**node_attrs, **task.attrs}
    attrs: dict[str, Any] = {}
    complete = True
    for spec in schema.attrs:
        if spec.name in given:
            value = given[spec.name]
            if spec.name in _PROGRAM_ATTRS:
                _check_program(value, where, limits)
            if value is None and spec.default is None:
                attrs[spec.name] = None
            else:
                attrs[spec.name] = coerce_attr(spec, value, where)
        elif spec.default is REQUIRED:
            complete = False
        else:
            d = spec.default
            attrs[spec.name] = list(d) if isinstance(d, (list, tuple)) else d
    return attrs if complete else None


def _desc(slot: Slot) -> TensorDesc | None:
    if slot.kind == SlotKind.NONE:
        return None
    return TensorDesc(slot.dtype, slot.shape)


def _check_task(
    task: Task,
    index: int,
    constants: Sequence[np.ndarray | None],
    limits: LoadLimits,
    node_attrs: dict[str, Any],
) -> None:
    where = f"task {index} ({task.name}, {task.op_type})"
    if not has_op(task.op_type):
        raise _refuse(f"{where}: op type {task.op_type!r} is not in this openge's op catalog")
    schema = get_schema(task.op_type)
    if schema.kernel is None or schema.infer is None:
        raise _refuse(f"{where}: op {task.op_type} cannot run as a task (no kernel)")
    for label, slots in (("input", task.inputs), ("output", task.outputs)):
        for j, slot in enumerate(slots):
            if slot.kind == SlotKind.NONE:
                continue
            try:
                slot.dtype.np_dtype  # noqa: B018 - raises for a type without storage
            except GeError:
                raise _refuse(
                    f"{where} {label} {j}: type {slot.dtype.name} has no storage"
                ) from None
    attrs = _attrs(task, schema, where, limits, node_attrs)
    check_input_count(schema, [None if s.kind == SlotKind.NONE else s for s in task.inputs], where)
    outputs = [TensorDesc(s.dtype, s.shape) for s in task.outputs]
    if schema.has(Trait.REF_OUTPUT) and (not task.inputs or task.outputs[:1] != task.inputs[:1]):
        raise _refuse(f"{where}: output 0 must be input 0 (a variable updated in place)")
    if attrs is None:
        return
    expected = schema.output_count(attrs, len(task.inputs))
    if expected != len(task.outputs):
        raise _refuse(f"{where}: has {len(task.outputs)} outputs; its attrs give {expected}")
    ctx = InferContext(
        task.name,
        task.op_type,
        [_desc(s) for s in task.inputs],
        attrs,
        constants,
        outputs,
    )
    inferred = list(schema.infer(ctx))
    if len(inferred) != len(outputs):
        raise _refuse(
            f"{where}: inference gives {len(inferred)} outputs, the task has {len(outputs)}"
        )
    for j, (got, have) in enumerate(zip(inferred, outputs)):
        if got.dtype != have.dtype or tuple(got.shape) != tuple(have.shape):
            raise _refuse(
                f"{where}: output {j} is {have.type_str()} but the op's inference on the "
                f"task's inputs and attrs gives {got.type_str()}"
            )
    if task.op_type in PADDED_OPS:
        _check_padded_extent(task, attrs, where, limits)


#: Ops whose kernels may materialize their zero- or -inf-padded input (NumPy paths) or a padded
#: scratch of that extent (compiled paths): the padded size is counted at load.
PADDED_OPS = frozenset({"Conv2D", "FusedConv2D", "MaxPoolV3", "AvgPoolV2"})


def _check_padded_extent(task: Task, attrs: dict[str, Any], where: str, limits: LoadLimits) -> None:
    """Refuse a 4-D convolution or pooling whose input, with its pads, would take more than
    ``max_arena_bytes`` (pads of a million rows are valid ONNX, and a 1 KB model made a
    kernel materialize 731 MB)."""
    x = task.inputs[0] if task.inputs else None
    pads = attrs.get("pads")
    if x is None or x.kind == SlotKind.NONE or len(x.shape) != 4 or not pads or len(pads) != 4:
        return
    fmt = attrs.get("data_format", "NCHW")
    h_axis, w_axis = (1, 2) if fmt == "NHWC" else (2, 3)
    n = x.dtype.itemsize
    for axis, dim in enumerate(x.shape):
        if axis == h_axis:
            dim += max(int(pads[0]), 0) + max(int(pads[1]), 0)
        elif axis == w_axis:
            dim += max(int(pads[2]), 0) + max(int(pads[3]), 0)
        n *= max(int(dim), 1)
    limits.check("max_arena_bytes", n, f"{where}: its input with pads {list(pads)}")


def check_tasks(
    compiled: CompiledModel,
    limits: LoadLimits,
    constant_of: Any,
) -> None:
    """Check every task against its op's schema (``constant_of(slot)``: the array of a WEIGHT or
    EXTERNAL slot, None otherwise). GeError naming the first bad task."""
    check_outputs_written(compiled)
    graph = compiled.graph
    for i, task in enumerate(compiled.tasks):
        constants = [constant_of(s) for s in task.inputs]
        node = graph.node(task.name) if graph.has_node(task.name) else None
        node_attrs = node.attrs if node is not None and node.op_type == task.op_type else {}
        try:
            _check_task(task, i, constants, limits, node_attrs)
        except GeError as err:
            where = f"task {i} ({task.name}, {task.op_type})"
            if err.message.startswith("cannot load the model"):
                raise
            if err.message.startswith(where):
                raise _refuse(err.message) from err
            raise _refuse(f"{where}: {err.message}") from err
        except Exception as err:  # an inference function tripping on hostile values
            raise _refuse(
                f"task {i} ({task.name}, {task.op_type}): its attrs or shapes are invalid "
                f"({type(err).__name__}: {err})"
            ) from err


__all__ = ["PADDED_OPS", "check_outputs_written", "check_sizes", "check_tasks"]
