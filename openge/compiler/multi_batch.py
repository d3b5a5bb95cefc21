"""The multi-batch clone: one static compilation per gear, combined into one gear model.

Layer: compiler. GE's MultiBatchClonePass clones the graph once per gear; each clone gets the
gear's static input shapes and goes through the whole pipeline (passes, memory planning, task
generation) on its own, so every gear runs the plan a static compile of that shape would. The
gear models are then joined as GE stores them:

* root graph ``Data… + Data(ascend_mbatch_shape_data) → MapIndex(·, ascend_mbatch_shape_const)
  → Case(branches) → NetOutput`` with GE's attrs (``_batch_num``, ``_pred_value_<i>``,
  ``mbatch_dynamic_type``, ``_mbatch_origin_input_dims``, ``_dynamic_output_dims``);
* one subgraph per gear, every node suffixed ``_ascend_mbatch_batch_<i>`` (variables keep their
  names: the gears share them);
* the gears' task lists back to back, described by a :class:`~openge.om.gears.GearSet`;
* constants stored once (equal bytes share one place in the weights), one work arena sized for
  the largest gear, ``ascend_mbatch_shape_data`` (int32 ``[k]``) as the last input.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from openge.compiler.gears import GEAR_OPTION_KEYS, GearSpec
from openge.compiler.memory import align_up
from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import DataType, Format, Graph, Tensor, TensorDesc
from openge.om.gears import NODE_SUFFIX, SHAPE_DATA_NAME, GearKind, GearPlan, GearSet, with_ranges
from openge.om.plan import WEIGHT_ALIGN, CompiledModel, IODesc, Slot, SlotKind, Task, VariableDef

logger = logging.getLogger(__name__)

#: A function giving gear ``i``'s graph with the given input shapes (by input name).
GraphMaker = Callable[[int, Mapping[str, tuple[int, ...]]], Graph]


def spec_for_graph(graph: Graph, spec: GearSpec) -> GearSpec:
    """``spec`` checked against ``graph``'s inputs; for batch / image size, inputs with -1 that
    ``input_shape`` leaves out join the gears (GE's CheckAndParseDynamicData)."""
    by_name = {n.name: n for n in graph.inputs}
    unknown = [name for name in spec.names if name not in by_name]
    if unknown:
        raise GeError(
            PARAM_INVALID,
            f"ge.inputShape names {', '.join(map(repr, unknown))}; the graph's inputs are "
            + ", ".join(by_name),
        )
    shapes = list(spec.input_shapes)
    for name, node in by_name.items():
        declared = node.output_descs[0].shape
        given = dict(shapes).get(name)
        if given is not None:
            if declared and len(declared) != len(given):
                raise GeError(
                    SHAPE_INVALID,
                    f"ge.inputShape gives input {name!r} {len(given)} dims {list(given)}; the "
                    f"graph declares {len(declared)} ({list(declared)})",
                )
            for d, g in zip(declared, given):
                if d >= 0 and g >= 0 and d != g:
                    raise GeError(
                        SHAPE_INVALID,
                        f"ge.inputShape gives input {name!r} {list(given)}; the graph fixes it "
                        f"to {list(declared)}",
                    )
            continue
        if all(d >= 0 for d in declared):
            continue
        if spec.kind == GearKind.DIMS:
            raise GeError(
                PARAM_INVALID,
                f"gear rule 'dynamic inputs listed': input {name!r} {list(declared)} has -1 "
                "dims but is not in ge.inputShape; with ge.dynamicDims every dynamic input "
                "must be listed",
            )
        from openge.compiler.gears import gear_spec  # the same checks as for listed inputs

        extended = (*shapes, (name, tuple(declared)))
        gear_spec(
            {
                "ge.inputShape": ";".join(f"{n}:{','.join(map(str, d))}" for n, d in extended),
                _key(spec): _gear_text(spec),
                "ge.inputFormat": spec.input_format,
            }
        )
        shapes.append((name, tuple(declared)))
    return replace(spec, input_shapes=tuple(shapes))


def _key(spec: GearSpec) -> str:
    from openge.compiler.gears import KIND_KEYS

    return KIND_KEYS[spec.kind]


def _gear_text(spec: GearSpec) -> str:
    sep = "," if spec.kind == GearKind.BATCH else ";"
    return sep.join(",".join(map(str, g)) for g in spec.gears)


def clone_with_shapes(graph: Graph, shapes: Mapping[str, tuple[int, ...]]) -> Graph:
    """A copy of ``graph`` whose Data nodes have the given shapes."""
    g = graph.clone()
    for node in g.inputs:
        shape = shapes.get(node.name)
        if shape is not None:
            node.output_descs = [node.output_descs[0].with_shape(shape)]
    return g


# ----- joining the gear models ----------------------------------------------------------------


class _Weights:
    """The shared weights blob: equal bytes are stored once."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self._placed: dict[bytes, int] = {}

    def place(self, data: memoryview) -> int:
        key = hashlib.sha256(data).digest() + len(data).to_bytes(8, "little")
        offset = self._placed.get(key)
        if offset is None:
            offset = align_up(len(self.blob), WEIGHT_ALIGN)
            self.blob.extend(b"\0" * (offset - len(self.blob)))
            self.blob.extend(data)
            self._placed[key] = offset
        return offset


class _Joiner:
    """Collects the gears' tasks, weights, variables and external weights."""

    def __init__(self) -> None:
        self.weights = _Weights()
        self.tasks: list[Task] = []
        self.variables: list[VariableDef] = []
        self.externals: list[Any] = []
        self.const_offsets: dict[str, list[int]] = {}

    def add(self, model: CompiledModel, suffix: str) -> tuple[int, int]:
        blob = memoryview(bytes(model.weights)) if model.weights else memoryview(b"")
        moved: dict[tuple[int, int], int] = {}

        def weight(offset: int, nbytes: int) -> int:
            key = (offset, nbytes)
            if key not in moved:
                moved[key] = self.weights.place(blob[offset : offset + nbytes])
            return moved[key]

        var_index: list[int] = []
        for v in model.variables:
            found = next((i for i, w in enumerate(self.variables) if w.name == v.name), None)
            if found is None:
                self.variables.append(replace(v, init_offset=weight(v.init_offset, v.nbytes)))
                found = len(self.variables) - 1
            elif (self.variables[found].dtype, self.variables[found].shape) != (v.dtype, v.shape):
                raise GeError(
                    PARAM_INVALID,
                    f"variable {v.name} has another type or shape in another gear; gears share "
                    "variables, so a variable's shape must not depend on the gear",
                )
            var_index.append(found)
        ext_index: list[int] = []
        for w in model.external_weights:
            if w not in self.externals:
                self.externals.append(w)
            ext_index.append(self.externals.index(w))

        def slot(s: Slot) -> Slot:
            if s.kind == SlotKind.WEIGHT:
                return replace(s, offset=weight(s.offset, s.nbytes))
            if s.kind == SlotKind.VARIABLE:
                return replace(s, offset=var_index[s.offset])
            if s.kind == SlotKind.EXTERNAL:
                return replace(s, offset=ext_index[s.offset])
            return s

        begin = len(self.tasks)
        for t in model.tasks:
            self.tasks.append(
                Task(
                    t.name + suffix,
                    t.op_type,
                    tuple(slot(s) for s in t.inputs),
                    tuple(slot(s) for s in t.outputs),
                    t.attrs,
                )
            )
        for name, (offset, nbytes) in (model.stats.get("const_offsets") or {}).items():
            self.const_offsets[name + suffix] = [weight(int(offset), int(nbytes)), int(nbytes)]
        return begin, len(self.tasks)


def _rename(graph: Graph, suffix: str, index: int) -> None:
    """GE's subgraph naming: ``Batch_<i>``, every node but the shared variables suffixed."""
    graph.name = f"Batch_{index}"
    for node in list(graph.nodes):
        if node.op_type != "Variable":
            graph.rename_node(node, node.name + suffix)


def _root_graph(
    name: str, spec: GearSpec, inputs: list[IODesc], outputs: list[IODesc], gears: list[GearPlan]
) -> Graph:
    """GE's root graph: Data… + shape data → MapIndex → Case(branches) → NetOutput."""
    root = Graph(name)
    largest = max(range(len(gears)), key=lambda i: _input_elements(gears[i]))
    origin = dict(spec.input_shapes)
    ports = []
    for i, d in enumerate(inputs):
        attrs: dict[str, Any] = {"index": i}
        if d.name in origin and -1 in origin[d.name]:
            attrs["_mbatch_origin_input_dims"] = list(origin[d.name])
            attrs["mbatch-switch-name"] = "ascend_mbatch_shape_case"
        node = root.add_node(
            "Data",
            name=d.name,
            attrs=attrs,
            output_descs=[TensorDesc(d.dtype, gears[largest].input_shapes[i], d.format)],
        )
        ports.append(node.output(0))
    k = len(spec.gears[0])
    shape_data = root.add_node(
        "Data",
        name=SHAPE_DATA_NAME,
        attrs={"index": len(inputs), "_is_multi_batch_shape_data": True, "_insert_by_mbatch": True},
        output_descs=[TensorDesc(DataType.DT_INT32, (k,))],
    )
    table = np.array([v for g in spec.gears for v in g], dtype=np.int32)
    const = root.add_node(
        "Const",
        name="ascend_mbatch_shape_const",
        attrs={"value": Tensor(table)},
        output_descs=[TensorDesc(DataType.DT_INT32, table.shape)],
    )
    index = root.add_node(
        "MapIndex",
        [shape_data.output(0), const.output(0)],
        name="ascend_mbatch_shape_mapindex",
        output_descs=[TensorDesc(DataType.DT_INT32, ())],
    )
    case_attrs: dict[str, Any] = {
        "_batch_num": len(gears),
        "mbatch_dynamic_type": int(spec.kind),
        "_user_designate_shape_order": spec.names,
        "_insert_by_mbatch": True,
        "branches": [g.graph_name for g in gears],
    }
    for i, g in enumerate(spec.gears):
        case_attrs[f"_pred_value_{i}"] = list(g)
    case = root.add_node(
        "Case",
        [index.output(0), *ports],
        name="ascend_mbatch_shape_case",
        attrs=case_attrs,
        output_descs=[
            TensorDesc(d.dtype, gears[largest].output_shapes[j], d.format)
            for j, d in enumerate(outputs)
        ],
    )
    dims = [
        ",".join(map(str, (i, j, *shape)))
        for i, g in enumerate(gears)
        for j, shape in enumerate(g.output_shapes)
    ]
    outs = [case.output(j) for j in range(len(outputs))]
    root.add_node(
        "NetOutput", outs, name="NetOutput", attrs={"_dynamic_output_dims": dims}, output_descs=[]
    )
    root.set_outputs(outs)
    return root


def _input_elements(gear: GearPlan) -> int:
    total = 0
    for shape in gear.input_shapes:
        total += int(np.prod(shape, dtype=np.int64))
    return total


def compile_gears(
    spec: GearSpec,
    options: Mapping[str, str],
    make_graph: GraphMaker,
    compile_one: Callable[[Graph, dict[str, str]], CompiledModel],
    *,
    name: str = "",
) -> CompiledModel:
    """Compile one graph per gear (``make_graph(i, shapes)``, each with ``compile_one``) and
    join them into one gear model."""
    start = time.perf_counter()
    base = {k: v for k, v in options.items() if k not in GEAR_OPTION_KEYS}
    joiner = _Joiner()
    models: list[CompiledModel] = []
    plans: list[GearPlan] = []
    for i in range(len(spec.gears)):
        model = compile_one(make_graph(i, spec.shapes(i)), base)
        suffix = f"{NODE_SUFFIX}{i}"
        begin, end = joiner.add(model, suffix)
        _rename(model.graph, suffix, i)
        models.append(model)
        plans.append(
            GearPlan(
                values=spec.gears[i],
                task_begin=begin,
                task_end=end,
                input_shapes=tuple(d.shape for d in model.inputs),
                output_shapes=tuple(d.shape for d in model.outputs),
                memory_size=model.memory_size,
                graph_name=model.graph.name,
            )
        )
    first = models[0]
    for i, m in enumerate(models[1:], 1):
        sig0 = [(d.name, d.dtype) for d in first.inputs], [d.dtype for d in first.outputs]
        sig = [(d.name, d.dtype) for d in m.inputs], [d.dtype for d in m.outputs]
        if sig != sig0:
            raise GeError(
                PARAM_INVALID,
                f"gear {i} compiles to inputs/outputs {sig}, gear 0 to {sig0}: the gears of a "
                "model must have the same inputs and outputs",
            )
    origin = dict(spec.input_shapes)
    inputs = [IODesc(d.name, d.dtype, origin.get(d.name, d.shape), d.format) for d in first.inputs]
    for j, d in enumerate(inputs):
        if d.name not in origin and any(p.input_shapes[j] != d.shape for p in plans):
            raise GeError(PARAM_INVALID, f"input {d.name} changes shape between gears")
    inputs = with_ranges(inputs, [p.input_shapes for p in plans])
    largest = max(range(len(plans)), key=lambda i: _input_elements(plans[i]))
    outputs = with_ranges(
        [
            IODesc(d.name, d.dtype, plans[largest].output_shapes[j], d.format)
            for j, d in enumerate(first.outputs)
        ],
        [p.output_shapes for p in plans],
    )
    k = len(spec.gears[0])
    inputs.append(IODesc(SHAPE_DATA_NAME, DataType.DT_INT32, (k,), Format.FORMAT_ND))
    gear_set = GearSet(
        kind=spec.kind,
        gears=plans,
        origin_inputs=[d.shape for d in inputs[:-1]],
        shape_order=spec.names,
        graphs=[m.graph for m in models],
    )
    memory = max(m.memory_size for m in models)
    changed = sorted({v for m in models for v in m.stats.get("changed_variables", [])})
    stats: dict[str, Any] = {
        "const_offsets": joiner.const_offsets,
        "changed_variables": changed,
        "gear_memory_sizes": [m.memory_size for m in models],
        "report": models[largest].stats.get("report"),
        "compile_seconds": time.perf_counter() - start,
    }
    for key in ("arena_lower_bound", "arena_no_reuse", "arena_strategy", "arena_aliases"):
        if key in models[largest].stats:
            stats[key] = models[largest].stats[key]
    logger.info(
        "compiled %d gears of %s in %.2f s (arena %d bytes, weights %d bytes)",
        len(plans),
        name or first.name,
        stats["compile_seconds"],
        memory,
        len(joiner.weights.blob),
    )
    return CompiledModel(
        name=name or first.name,
        graph=_root_graph(name or first.name, spec, inputs[:-1], outputs, plans),
        tasks=joiner.tasks,
        inputs=inputs,
        outputs=outputs,
        weights=joiner.weights.blob,
        variables=joiner.variables,
        external_weights=joiner.externals,
        memory_size=memory,
        options=dict(options),
        producer=first.producer,
        online=True,
        stats=stats,
        gears=gear_set,
    )


__all__ = ["GraphMaker", "clone_with_shapes", "compile_gears", "spec_for_graph"]
