"""Task generation: turn an optimized, fully inferred Graph into a CompiledModel.

Each compute node becomes one Task whose inputs and outputs are typed Slots: model inputs and
outputs by index, constants by offset in the weights blob, variables by index, everything else
by offset in the work arena (planned by ``memory.plan_memory``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from openge.compiler.memory import (
    Lifetime,
    MemoryPlan,
    align_up,
    can_run_in_place,
    plan_memory,
)
from openge.compiler.passes.cancel_inverse_ops import RESHAPE_LIKE
from openge.compiler.passes.rules import ORIGINAL_NAMES_ATTR
from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import Graph, Port, TensorDesc
from openge.om.plan import (
    NO_SLOT,
    WEIGHT_ALIGN,
    CompiledModel,
    ExternalWeight,
    IODesc,
    Slot,
    SlotKind,
    Task,
    VariableDef,
)
from openge.ops import Trait, get_schema, node_where, normalize_attrs
from openge.ops.exact_cube import EXACT_ACCUMULATION_ATTR
from openge.version import PRODUCER

#: Private option (set by the dynamic-shape runtime for its per-shape plans): lay the weights
#: out (offsets, ``const_offsets``) but leave the blob empty — the runtime resolves every WEIGHT
#: slot to the Const values it already holds (``runtime.weight_share``), so copying them into a
#: blob would only cost time and a transient copy of every weight.
WEIGHTS_BY_REFERENCE = "_openge.weightsByReference"


@dataclass
class _WeightsBuilder:
    blob: bytearray = field(default_factory=bytearray)
    by_reference: bool = False
    size: int = 0

    def add(self, array: np.ndarray, *, copy: bool = False) -> int:
        """The offset of ``array`` in the blob (its bytes copied there unless by reference;
        ``copy``: always, for a variable's initial value)."""
        offset = align_up(self.size, WEIGHT_ALIGN)
        self.size = offset + int(array.nbytes)
        if copy or not self.by_reference:
            self.blob.extend(b"\0" * (offset - len(self.blob)))
            self.blob.extend(np.ascontiguousarray(array).tobytes())
        return offset


def _static(desc: TensorDesc, where: str) -> tuple[int, ...]:
    if not desc.is_static:
        raise GeError(
            SHAPE_INVALID,
            f"{where} has unknown dims {list(desc.shape)} after shape inference; give the "
            "graph inputs static shapes (compile_graph(id, inputs) or option ge.inputShape)",
        )
    return desc.shape


def _concat_members(op_type: str, ins: list[Port | None], attrs: dict) -> tuple[list, int] | None:
    """The data inputs and the axis of a concatenation task (None when the axis is unknown)."""
    if op_type == "ConcatD":
        return list(ins), int(attrs["concat_dim"])
    if op_type == "ConcatV2" and ins and ins[-1] is not None and ins[-1].node.op_type == "Const":
        axis = np.asarray(ins[-1].node.attrs["value"].numpy()).reshape(-1)
        if axis.size == 1:
            return list(ins[:-1]), int(axis[0])
    return None


def _find_views(
    pending: list[tuple[str, str, list[Port | None], list[Port], dict]],
    free: Callable[[Port | None], bool],
) -> tuple[dict[Port, tuple[Port, int]], set[int]]:
    """Tensors that can live inside another one, and the tasks that then have nothing to do.

    * a reshape-like task's output is its input's bytes: a view at offset 0 of the input;
    * a concatenation whose output has only 1s before the axis is its inputs' bytes laid end to
      end: each input is produced straight into its place in the output (GE's "no-task"
      concat) — DenseNet's chains of concats become one buffer written once.

    Returns ``member → (host, byte offset)`` and the indexes of the tasks removed. ``free``
    says whether a port is an arena tensor that is not a graph output. A tensor is a member of
    at most one host; hosts may be members of others (chains).
    """
    views: dict[Port, tuple[Port, int]] = {}
    removed: set[int] = set()
    for t, (_, op_type, ins, outs, attrs) in enumerate(pending):
        if op_type in RESHAPE_LIKE:  # the output is the input's bytes under another shape
            x, y = ins[0], outs[0]
            if (
                free(x)
                and free(y)
                and x.desc.dtype == y.desc.dtype
                and x.desc.size_bytes == y.desc.size_bytes
            ):
                views[y] = (x, 0)  # y is x; readers of y read x
                removed.add(t)
            continue
        found = _concat_members(op_type, ins, attrs)
        if found is None:
            continue
        members, axis = found
        y = outs[0]
        shape = y.desc.shape
        axis %= max(len(shape), 1)
        if (
            not free(y)
            or any(d != 1 for d in shape[:axis])
            or len(set(members)) != len(members)
            or not all(free(m) and m not in views and m.desc.dtype == y.desc.dtype for m in members)
        ):
            continue
        offset = 0
        for m in members:
            views[m] = (y, offset)
            offset += m.desc.size_bytes
        removed.add(t)
    return views, removed


def _resolve(port: Port, views: dict[Port, tuple[Port, int]]) -> tuple[Port, int]:
    """The outermost host of ``port`` and ``port``'s byte offset inside it."""
    offset = 0
    while port in views:
        port, delta = views[port]
        offset += delta
    return port, offset


def generate(graph: Graph, options: dict[str, str], *, reuse_memory: bool = True) -> CompiledModel:
    """Build the task list, weights, variables, io descs and memory plan of ``graph``."""
    order = graph.topological_order()
    weights = _WeightsBuilder(by_reference=options.get(WEIGHTS_BY_REFERENCE) == "1")
    slots: dict[Port, Slot] = {}
    arena_keys: dict[Port, int] = {}
    arena_descs: list[tuple[Port, TensorDesc]] = []
    const_offsets: dict[str, list[int]] = {}
    variables: list[VariableDef] = []
    externals: list[ExternalWeight] = []
    pending: list[tuple[str, str, list[Port | None], list[Port], dict]] = []

    inputs_nodes = graph.inputs
    inputs = []
    for i, node in enumerate(inputs_nodes):
        desc = node.output_descs[0]
        shape = _static(desc, node_where(node))
        slots[Port(node, 0)] = Slot(SlotKind.INPUT, i, desc.dtype, shape)
        inputs.append(IODesc(node.name, desc.dtype, shape, desc.format))

    for node in order:
        schema = get_schema(node.op_type)
        where = node_where(node)
        if node.op_type == "Data" or schema.has(Trait.SINK):
            continue
        if node.op_type == "Const":
            value = node.attrs["value"].numpy()
            offset = weights.add(value)
            const_offsets[node.name] = [offset, int(value.nbytes)]
            desc = node.output_descs[0]
            slots[Port(node, 0)] = Slot(SlotKind.WEIGHT, offset, desc.dtype, desc.shape)
            continue
        if node.op_type == "FileConstant":
            attrs = normalize_attrs(schema, node.attrs, where)
            desc = node.output_descs[0]
            externals.append(
                ExternalWeight(
                    location=attrs["location"],
                    offset=attrs["offset"],
                    length=attrs["length"] or desc.size_bytes,
                    sha256=attrs["sha256"],
                    dtype=desc.dtype,
                    shape=desc.shape,
                    directory=str(node.attrs.get("_directory", "")),
                )
            )
            slots[Port(node, 0)] = Slot(
                SlotKind.EXTERNAL, len(externals) - 1, desc.dtype, desc.shape
            )
            continue
        if node.op_type == "Variable":
            desc = node.output_descs[0]
            shape = _static(desc, where)
            init = node.attrs.get("value")
            array = init.numpy() if init is not None else np.zeros(shape, dtype=desc.dtype.np_dtype)
            offset = weights.add(array, copy=True)
            variables.append(VariableDef(node.name, desc.dtype, shape, desc.format, offset))
            slots[Port(node, 0)] = Slot(SlotKind.VARIABLE, len(variables) - 1, desc.dtype, shape)
            continue
        if schema.has(Trait.SOURCE):
            raise GeError(PARAM_INVALID, f"{where}: source op cannot be compiled")
        attrs = normalize_attrs(schema, node.attrs, where)
        kernel_attrs = {k: attrs[k] for k in schema.kernel_attrs}
        if node.attrs.get(ORIGINAL_NAMES_ATTR):  # fused ops' source names, for data dumps
            kernel_attrs[ORIGINAL_NAMES_ATTR] = list(node.attrs[ORIGINAL_NAMES_ATTR])
        if node.attrs.get(EXACT_ACCUMULATION_ATTR):  # precision modes' cube ops
            kernel_attrs[EXACT_ACCUMULATION_ATTR] = True
        outs = [Port(node, i) for i in range(node.num_outputs)]
        for i, port in enumerate(outs):
            desc = node.output_descs[i]
            _static(desc, where)
            if schema.has(Trait.REF_OUTPUT) and i == 0:
                continue  # aliases input 0; bound below
            arena_keys[port] = len(arena_descs)
            arena_descs.append((port, desc))
        pending.append((node.name, node.op_type, list(node.inputs), outs, kernel_attrs))

    # Graph outputs: a task's own result is written straight into the caller's output buffer;
    # anything else (an input, a constant, a variable, a repeated output) gets a copy task.
    outputs: list[IODesc] = []
    output_of: dict[Port, int] = {}
    copies: list[tuple[int, Port]] = []
    # Output names: the source model's (ONNX) when the front end recorded them, else the
    # producing node and index ("Relu_1:0"), as GE names NetOutput inputs.
    given_names = graph.attrs.get("onnx_output_names") or []
    if len(given_names) != len(graph.outputs) or len(set(given_names)) != len(given_names):
        given_names = []
    for k, port in enumerate(graph.outputs):
        desc = port.desc
        shape = _static(desc, f"graph output {k} ({port!r})")
        name = given_names[k] if given_names else f"{port.node.name}:{port.index}"
        outputs.append(IODesc(name, desc.dtype, shape, desc.format))
        if port in arena_keys and port not in output_of:
            output_of[port] = k
        else:
            copies.append((k, port))

    # Views: tensors that live inside another (reshape outputs, concatenation inputs); their
    # tasks are removed. Only with memory reuse on: without it every tensor keeps its own bytes
    # and every task stays (the debugging layout).
    views: dict[Port, tuple[Port, int]] = {}
    removed: set[int] = set()
    if reuse_memory:
        views, removed = _find_views(
            pending, lambda p: p is not None and p in arena_keys and p not in output_of
        )
    grouped = set(views) | {host for host, _ in views.values()}

    # Lifetimes in task order (copy tasks come last), per buffer: a view's readers and writer
    # count for its outermost host.
    first: dict[Port, int] = {}
    last: dict[Port, int] = {}

    def touch(port: Port, t: int) -> None:
        root = _resolve(port, views)[0]
        first.setdefault(root, t)
        last[root] = max(last.get(root, t), t)

    for t, (_, _, ins, outs, _) in enumerate(pending):
        if t in removed:
            continue
        for port in outs:
            touch(port, t)
        for port in ins:
            if port is not None and port in arena_keys:
                touch(port, t)
    for j, (_, port) in enumerate(copies):
        if port in arena_keys:
            touch(port, len(pending) + j)
    lifetimes = [
        Lifetime(key, desc.size_bytes, first[port], last[port])
        for port, desc in arena_descs
        if port not in output_of and port not in views and port in first
        for key in (arena_keys[port],)
    ]
    # In place: an op that tolerates aliasing may write its output over an input of the same
    # byte size that dies at its task (the planner checks the lifetimes and sizes); never over
    # or into a view's buffer, whose bytes other tensors share.
    inplace: list[tuple[int, int]] = []
    for t, (_, op_type, ins, outs, _) in enumerate(pending):
        if t in removed or len(outs) != 1 or outs[0] not in arena_keys or outs[0] in grouped:
            continue
        if not can_run_in_place(op_type, outs[0].desc.dtype):
            continue
        if outs[0] in output_of:
            continue
        inplace.extend(
            (arena_keys[outs[0]], arena_keys[port])
            for port in ins
            if port is not None
            and port in arena_keys
            and port not in output_of
            and port not in grouped
        )
    plan: MemoryPlan = plan_memory(lifetimes, reuse=reuse_memory, inplace=inplace)

    for port, desc in arena_descs:
        if port in output_of:
            slots[port] = Slot(SlotKind.OUTPUT, output_of[port], desc.dtype, desc.shape)
        else:
            root, delta = _resolve(port, views)
            if arena_keys[root] not in plan.offsets:  # never read nor written (no task left)
                continue
            offset = plan.offsets[arena_keys[root]] + delta
            slots[port] = Slot(SlotKind.ARENA, offset, desc.dtype, desc.shape)

    tasks: list[Task] = []
    for t, (name, op_type, ins, outs, kernel_attrs) in enumerate(pending):
        if t in removed:
            continue
        in_slots = tuple(NO_SLOT if p is None else slots[p] for p in ins)
        if get_schema(op_type).has(Trait.REF_OUTPUT):
            if in_slots[0].kind != SlotKind.VARIABLE:
                raise GeError(
                    PARAM_INVALID,
                    f"node {name} ({op_type}): input 0 (ref) must come from a Variable",
                )
            slots[outs[0]] = in_slots[0]
        out_slots = tuple(slots[p] for p in outs)
        tasks.append(Task(name, op_type, in_slots, out_slots, kernel_attrs))
    for k, port in copies:
        src = slots[port]
        dst = Slot(SlotKind.OUTPUT, k, src.dtype, src.shape)
        tasks.append(Task(f"output_copy_{k}", "Identity", (src,), (dst,), {}))

    stats = {
        "const_offsets": const_offsets,
        "arena_lower_bound": plan.lower_bound,
        "arena_no_reuse": plan.no_reuse_size,
        "lifetimes": [(lt.key, lt.size, lt.first, lt.last) for lt in lifetimes],
        "arena_offsets": dict(plan.offsets),
        "arena_aliases": dict(plan.aliases),
        "arena_strategy": plan.strategy,
        "arena_views": len(views),
        "tasks_removed_by_views": len(removed),
    }
    return CompiledModel(
        name=graph.name,
        graph=graph,
        tasks=tasks,
        inputs=inputs,
        outputs=outputs,
        weights=weights.blob,
        variables=variables,
        external_weights=externals,
        memory_size=plan.arena_size,
        options=dict(options),
        producer=PRODUCER,
        online=True,
        stats=stats,
    )
