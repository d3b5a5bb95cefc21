"""Task generation: turn an optimized, fully inferred Graph into a CompiledModel.

Each compute node becomes one Task whose inputs and outputs are typed Slots: model inputs and
outputs by index, constants by offset in the weights blob, variables by index, everything else
by offset in the work arena (planned by ``memory.plan_memory``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openge.compiler.memory import (
    Lifetime,
    MemoryPlan,
    align_up,
    can_run_in_place,
    plan_memory,
)
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
from openge.version import PRODUCER


@dataclass
class _WeightsBuilder:
    blob: bytearray = field(default_factory=bytearray)

    def add(self, array: np.ndarray) -> int:
        offset = align_up(len(self.blob), WEIGHT_ALIGN)
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


def generate(graph: Graph, options: dict[str, str], *, reuse_memory: bool = True) -> CompiledModel:
    """Build the task list, weights, variables, io descs and memory plan of ``graph``."""
    order = graph.topological_order()
    weights = _WeightsBuilder()
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
            offset = weights.add(array)
            variables.append(VariableDef(node.name, desc.dtype, shape, desc.format, offset))
            slots[Port(node, 0)] = Slot(SlotKind.VARIABLE, len(variables) - 1, desc.dtype, shape)
            continue
        if schema.has(Trait.SOURCE):
            raise GeError(PARAM_INVALID, f"{where}: source op cannot be compiled")
        attrs = normalize_attrs(schema, node.attrs, where)
        kernel_attrs = {k: attrs[k] for k in schema.kernel_attrs}
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

    # Lifetimes in task order (copy tasks come last).
    first: dict[Port, int] = {}
    last: dict[Port, int] = {}
    for t, (_, _, ins, outs, _) in enumerate(pending):
        for port in outs:
            first.setdefault(port, t)
            last.setdefault(port, t)
        for port in ins:
            if port is not None:
                last[port] = t
    for j, (_, port) in enumerate(copies):
        last[port] = len(pending) + j
    lifetimes = [
        Lifetime(key, desc.size_bytes, first[port], last[port])
        for port, desc in arena_descs
        if port not in output_of
        for key in (arena_keys[port],)
    ]
    # In place: an op that tolerates aliasing may write its output over an input of the same
    # byte size that dies at its task (the planner checks the lifetimes and sizes).
    inplace: list[tuple[int, int]] = []
    for _, op_type, ins, outs, _ in pending:
        if len(outs) != 1 or outs[0] not in arena_keys:
            continue
        if not can_run_in_place(op_type, outs[0].desc.dtype):
            continue
        if outs[0] in output_of:
            continue
        inplace.extend(
            (arena_keys[outs[0]], arena_keys[port])
            for port in ins
            if port is not None and port in arena_keys and port not in output_of
        )
    plan: MemoryPlan = plan_memory(lifetimes, reuse=reuse_memory, inplace=inplace)

    for port, desc in arena_descs:
        if port in output_of:
            slots[port] = Slot(SlotKind.OUTPUT, output_of[port], desc.dtype, desc.shape)
        else:
            offset = plan.offsets[arena_keys[port]]
            slots[port] = Slot(SlotKind.ARENA, offset, desc.dtype, desc.shape)

    tasks: list[Task] = []
    for name, op_type, ins, outs, kernel_attrs in pending:
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
