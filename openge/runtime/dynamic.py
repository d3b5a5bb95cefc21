"""Dynamic-shape execution: a static plan per input-shape signature, cached; an interpreter for
shapes that depend on data computed inside the graph.

A dynamic-shape model (``openge.compiler.dynamic``) stores its graph with -1 dims. At each run:

1. The inputs are checked against their declared rank and per-dim ranges.
2. The signature is the input shapes plus the values of the (few, small) inputs whose values
   decide shapes (a Reshape's ``shape`` fed as an input …; learned on the first plan).
3. A cached plan for the signature runs as is. Otherwise the graph is specialized: input dims
   set, value inputs bound as constants, deferred ONNX nodes converted, and the regular compiler
   (``compile_graph``: every pass, memory plan, tasks) makes a static plan, loaded as a static
   :class:`~openge.runtime.model.Model` — the same kernels, tasks and arena as a static compile
   of that shape. Plans are kept in a bounded LRU cache. Their constants are shared, with the
   model's own and with each other (``openge.runtime.weight_share``): a model served at 8
   shapes holds its weights once.
4. When a shape depends on a value computed inside the graph from large or run-time data
   (NonZero, NonMaxSuppression, Unique on computed tensors; a Reshape's shape computed from
   data), no static plan can hold for the signature: the graph is run node by node with the
   same schemas — each node inferred from its actual input values, its outputs allocated,
   its kernel called.

Limits (options of the compiled model; ``DynamicExecutor`` attributes): ``openge.dynamic.
planCacheSize`` plans kept (default 8); ``openge.dynamic.memoryLimit`` bytes a run may plan or
allocate (default half the physical memory) — a larger plan, tensor or data-dependent output is
a GeError (ACL_ERROR_GE_MEMORY_ALLOCATION), never an allocation attempt.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.errors import INTERNAL_ERROR, LOAD_MODEL, MEMORY_ALLOCATION, PARAM_INVALID, GeError
from openge.graph import Graph, Node, Port, Tensor, TensorDesc
from openge.graph.shape_range import check_in_range, decode_range, default_range
from openge.om.plan import CompiledModel, IODesc
from openge.ops import Trait, get_schema, infer_node
from openge.runtime.weight_share import WEIGHTS_BY_REFERENCE, PlanWeights, SharedWeights

logger = logging.getLogger(__name__)

CACHE_OPTION = "openge.dynamic.planCacheSize"
MEMORY_OPTION = "openge.dynamic.memoryLimit"
DEFAULT_CACHE_SIZE = 8
#: Inputs with at most this many elements may be bound as constants when their values decide
#: shapes (shape tensors, axes, k, thresholds); larger ones make the run interpreted instead.
BIND_LIMIT = 64


def physical_memory() -> int:
    """Bytes of physical memory (8 GiB when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _int_option(options: dict[str, str], key: str, default: int, minimum: int) -> int:
    text = options.get(key, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise GeError(PARAM_INVALID, f"option {key} = {text!r} must be an integer ≥ {minimum}")
    return value


@dataclass
class _Plan:
    """One cached specialization: a static Model (``model``, fed the unbound inputs ``feed``)
    or, when ``model`` is None, the graph to interpret — after ``prefix`` (a static Model of the
    part whose shapes are known, fed ``prefix_feed``) has computed the ``boundary`` values the
    rest reads; nodes named in ``static`` are the prefix's and are not interpreted."""

    model: Any
    feed: list[int]
    graph: Graph | None
    plan_seconds: float
    memory: int
    prefix: Any = None
    prefix_feed: list[int] = field(default_factory=list)
    boundary: list[tuple[str, int]] = field(default_factory=list)
    static: frozenset[str] = frozenset()
    #: the weights of ``model`` and ``prefix`` (shared with the other plans: weight_share)
    weights: list[PlanWeights] = field(default_factory=list)

    def release(self) -> None:
        """Unload the plan's Models: the constants only this plan used are freed."""
        for model in (self.model, self.prefix):
            if model is not None:
                model.close()
                # the plan's graph (node cycles: freed only by the GC) references the shared
                # constants too; drop them now so that what only this plan used is freed now
                for node in model.compiled.graph.nodes:
                    if node.op_type == "Const":
                        node.attrs.pop("value", None)
        self.model = self.prefix = None
        self.weights = []


class DynamicExecutor:
    """Runs a dynamic-shape CompiledModel (see the module doc). Not thread-safe on its own: the
    owning Model serializes calls."""

    def __init__(self, compiled: CompiledModel, max_bytes: int | None = None) -> None:
        """``max_bytes``: the loader's arena limit (openge.om.limits), which also caps the
        memory limit the (untrusted) model's own options ask for."""
        from openge.compiler.dynamic import RANGES_STAT

        self._compiled = compiled
        self._graph = compiled.graph
        _check_graph_matches(compiled)
        ranges = compiled.stats.get(RANGES_STAT) or []
        self.inputs: list[IODesc] = []
        for i, d in enumerate(compiled.inputs):
            rng = decode_range(ranges[i], len(d.shape)) if i < len(ranges) else None
            self.inputs.append(
                IODesc(
                    d.name, d.dtype, tuple(d.shape), d.format, range=rng or default_range(d.shape)
                )
            )
        options = dict(compiled.options)
        self.cache_size = _int_option(options, CACHE_OPTION, DEFAULT_CACHE_SIZE, 1)
        self.memory_limit = _int_option(options, MEMORY_OPTION, physical_memory() // 2, 1)
        if max_bytes is not None:
            self.memory_limit = min(self.memory_limit, max_bytes)
        # the plans live in memory: no external weight files written at run time
        dropped = ("ge.inputShape", "ge.externalWeight", "ge.externalWeightDir")
        self._options = {
            k: v for k, v in options.items() if k not in dropped and not k.startswith("_openge.")
        }
        # per-shape plans leave their weights where they are (runtime.weight_share): no blob
        self._options[WEIGHTS_BY_REFERENCE] = "1"
        self._cache: OrderedDict[tuple, _Plan] = OrderedDict()
        #: every plan's constants, held once (with the model's own): runtime.weight_share
        self._weights = SharedWeights(self._graph)
        #: seconds the last new plan spent sharing its weights (in last_plan_seconds)
        self.last_share_seconds = 0.0
        self._bound: set[int] = set()
        #: seconds the last new signature took to plan (0 until a plan is made)
        self.last_plan_seconds = 0.0
        self.plans_made = 0
        self.cache_hits = 0
        self.interpreted_runs = 0

    # ----- public figures ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Plans made, cache hits, cached signatures, last planning time, node-by-node runs,
        cached node-by-node plans with a static prefix, value inputs, and the weight memory of
        the cached plans (``plan_weight_bytes``, ``shared_weight_bytes`` …: _weight_stats)."""
        return {
            "plans_made": self.plans_made,
            "cache_hits": self.cache_hits,
            "cached": len(self._cache),
            "last_plan_seconds": self.last_plan_seconds,
            "interpreted_runs": self.interpreted_runs,
            "static_prefixes": sum(p.prefix is not None for p in self._cache.values()),
            "value_inputs": sorted(self.inputs[i].name for i in self._bound),
            **self._weight_stats(),
        }

    def _weight_stats(self) -> dict[str, Any]:
        """Weight memory: what the cached plans use (``plan_weight_bytes``: the sum a private
        copy per plan would take) and what is held (``shared_weight_bytes``: the constants the
        plans added, each once; ``original_weight_bytes``: the model's own, in the loaded .om);
        ``weight_buffers``: distinct buffers held beyond the model's own."""
        held = list(self._weights.held())
        return {
            "plan_weight_bytes": sum(w.used_bytes for p in self._cache.values() for w in p.weights),
            "shared_weight_bytes": sum(a.nbytes for a in held),
            "original_weight_bytes": self._weights.original_bytes,
            "weight_buffers": len(held),
            "weight_fingerprints": self._weights.fingerprints,
            "last_share_seconds": self.last_share_seconds,
        }

    def check_input(self, index: int, array: np.ndarray) -> None:
        """GeError (SHAPE_INVALID) when ``array`` has the wrong rank or a dim outside its range."""
        from openge.errors import SHAPE_INVALID

        desc = self.inputs[index]
        problem = check_in_range(desc.name, array.shape, desc.range, desc.shape)
        if problem:
            raise GeError(SHAPE_INVALID, problem)

    # ----- running -------------------------------------------------------------------------
    def execute(
        self,
        arrays: list[np.ndarray],
        outputs: Sequence[np.ndarray] | None = None,
        *,
        intermediates: bool = False,
    ) -> Any:
        """Run with checked input arrays; outputs have their actual shapes (copied into
        ``outputs`` when given, which must then have those shapes). ``intermediates``: also
        return every task's (or node's) outputs by ``"name:index"``, as ``Model.execute``."""
        plan = self._plan_for(arrays)
        values: dict[str, np.ndarray] | None = {} if intermediates else None
        if plan.model is not None:
            feed = [arrays[i] for i in plan.feed]
            if intermediates:
                results, values = plan.model.execute(feed, intermediates=True)
            else:
                results = plan.model.execute(feed)
        else:
            self.interpreted_runs += 1
            preset: dict[tuple[str, int], np.ndarray] = {}
            if plan.prefix is not None:
                found = plan.prefix.execute([arrays[i] for i in plan.prefix_feed])
                preset = dict(zip(plan.boundary, found))
            results = self._interpret(plan.graph, arrays, values, preset, plan.static)  # type: ignore[arg-type]
        if outputs is not None:
            results = self._copy_out(results, outputs)
        return (results, values) if intermediates else results

    @staticmethod
    def _copy_out(results: list[np.ndarray], outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The results copied into the caller's buffers (which must have the actual shapes)."""
        outputs = list(outputs)
        if len(outputs) != len(results):
            raise GeError(
                PARAM_INVALID, f"model has {len(results)} outputs; {len(outputs)} buffers given"
            )
        for i, (buf, res) in enumerate(zip(outputs, results)):
            if not isinstance(buf, np.ndarray) or buf.shape != res.shape or buf.dtype != res.dtype:
                got = f"{buf.dtype}{list(buf.shape)}" if isinstance(buf, np.ndarray) else buf
                raise GeError(
                    PARAM_INVALID,
                    f"output {i}: this run produced {res.dtype}{list(res.shape)}; the buffer "
                    f"given is {got} (pass outputs=None to get arrays of the actual shapes)",
                )
            buf[...] = res
        return outputs

    def _key(self, arrays: list[np.ndarray]) -> tuple:
        shapes = tuple(a.shape for a in arrays)
        if not self._bound:
            return shapes
        return (shapes, tuple(arrays[i].tobytes() for i in sorted(self._bound)))

    def _plan_for(self, arrays: list[np.ndarray]) -> _Plan:
        key = self._key(arrays)
        plan = self._cache.get(key)
        if plan is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return plan
        start = time.perf_counter()
        self.last_share_seconds = 0.0
        bound_before = set(self._bound)
        plan = self._make_plan(arrays)
        plan.plan_seconds = time.perf_counter() - start
        if self._bound != bound_before:
            for old in self._cache.values():  # the signature now includes more input values
                old.release()
            self._cache.clear()
            key = self._key(arrays)
        self.last_plan_seconds = plan.plan_seconds
        self.plans_made += 1
        logger.info(
            "model %s: new input signature %s planned in %.1f ms (%s, %d bytes; weights "
            "shared in %.1f ms)",
            self._compiled.name,
            ", ".join(f"{d.name}{list(a.shape)}" for d, a in zip(self.inputs, arrays)),
            plan.plan_seconds * 1e3,
            "static plan" if plan.model is not None else "interpreted",
            plan.memory,
            self.last_share_seconds * 1e3,
        )
        self._cache[key] = plan
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)[1].release()
            self._weights.prune()
        return plan

    # ----- planning ------------------------------------------------------------------------
    def _specialized(self, arrays: list[np.ndarray], bound: set[int]) -> Graph:
        graph = self._graph.clone()
        data = graph.inputs
        for i, node in enumerate(data):
            node.output_descs = [node.output_descs[0].with_shape(arrays[i].shape)]
        for i in sorted(bound):
            node = data[i]
            const = graph.add_node(
                "Const",
                [],
                name=graph.unique_name(f"{node.name}_value"),
                attrs={"value": Tensor(np.array(arrays[i], copy=True))},
                output_descs=[TensorDesc(node.output_descs[0].dtype, arrays[i].shape)],
            )
            graph.replace_all_uses(node.output(0), const.output(0))
            graph.remove_node(node)
        for k, node in enumerate(graph.inputs):  # the remaining inputs, numbered 0..n-1
            node.attrs["index"] = k
        return graph

    def _make_plan(self, arrays: list[np.ndarray]) -> _Plan:
        from openge.compiler import compile_graph
        from openge.ops.schema import ValueNeededError
        from openge.parser.deferred import expand_all

        names = [d.name for d in self.inputs]
        bound = set(self._bound)
        while True:
            graph = self._specialized(arrays, bound)
            try:
                expand_all(graph, {})
            except ValueNeededError as err:
                sources = _sources(err.port)
                new = {names.index(s) for s in sources if s in names} - bound
                if err.port is None or not new or any(arrays[i].size > BIND_LIMIT for i in new):
                    logger.info(
                        "model %s: %s — this signature runs node by node",
                        self._compiled.name,
                        err.message,
                    )
                    return self._interpreted_plan(arrays)
                bound |= new
                continue
            break
        self._check_tensors(graph)
        compiled = compile_graph(graph, self._options)
        if compiled.is_dynamic:  # the compiler still found a run-time value: interpret
            return self._interpreted_plan(arrays)
        memory = compiled.memory_size + sum(d.size for d in compiled.outputs)
        self._check_memory(memory, "the planned work arena and outputs")
        self._bound = bound
        feed = [names.index(d.name) for d in compiled.inputs]
        model, weights = self._load(compiled)
        return _Plan(model, feed, None, 0.0, memory, weights=[weights])

    def _load(self, compiled: CompiledModel) -> tuple[Any, PlanWeights]:
        """A plan's static Model over the shared weights (its own blob released)."""
        from openge.runtime.model import Model

        compiled, weights = self._weights.adopt(compiled)
        self.last_share_seconds += weights.seconds
        return Model(compiled, weight_arrays=weights.arrays), weights

    def _interpreted_plan(self, arrays: list[np.ndarray]) -> _Plan:
        """Node by node — after a static plan of the part whose shapes are known, when there
        is such a part (a detection head's backbone before its NonMaxSuppression)."""
        graph = self._specialized(arrays, set())
        plan = _Plan(None, list(range(len(arrays))), graph, 0.0, 0)
        try:
            self._add_prefix(plan, graph)
        except GeError as err:
            if err.code == MEMORY_ALLOCATION:
                raise
            logger.info("model %s: no static prefix (%s)", self._compiled.name, err.message)
            plan.prefix, plan.static = None, frozenset()
        return plan

    def _add_prefix(self, plan: _Plan, graph: Graph) -> None:
        """Compile the nodes whose shapes are known from the input shapes alone into a static
        Model computing the values the other nodes read."""
        from openge.compiler import compile_graph

        dynamic = _split(graph)
        boundary: list[Port] = []
        for node in graph.topological_order():
            if node.name in dynamic:
                boundary.extend(
                    p for p in node.inputs if p is not None and p.node.name not in dynamic
                )
        boundary.extend(p for p in graph.outputs if p.node.name not in dynamic)
        boundary = list(dict.fromkeys(boundary))
        if not dynamic or all(p.node.op_type in ("Data", "Const") for p in boundary):
            return
        prefix = graph.clone()
        prefix.attrs.pop("onnx_output_names", None)
        prefix.set_outputs([Port(prefix.node(p.node.name), p.index) for p in boundary])
        for node in reversed(prefix.topological_order()):
            if node.name in dynamic:
                prefix.remove_node(node)
        self._check_tensors(prefix)
        compiled = compile_graph(prefix, self._options)
        if compiled.is_dynamic:
            return
        memory = compiled.memory_size + sum(d.size for d in compiled.outputs)
        self._check_memory(memory, "the planned work arena and outputs of the static part")
        names = [d.name for d in self.inputs]
        plan.prefix, weights = self._load(compiled)
        plan.weights.append(weights)
        plan.prefix_feed = [names.index(d.name) for d in compiled.inputs]
        plan.boundary = [(p.node.name, p.index) for p in boundary]
        plan.static = frozenset(n.name for n in graph.nodes if n.name not in dynamic)
        plan.memory = memory

    def _check_memory(self, nbytes: int, what: str) -> None:
        if nbytes > self.memory_limit:
            raise GeError(
                MEMORY_ALLOCATION,
                f"model {self._compiled.name}: {what} would take {nbytes} bytes, above the "
                f"limit of {self.memory_limit} bytes (option {MEMORY_OPTION}); use smaller "
                "inputs or raise the limit",
            )

    def _check_tensors(self, graph: Graph) -> None:
        """No single tensor of the specialized graph may pass the limit (checked before the
        compiler folds or plans anything)."""
        for node in graph.nodes:
            for i, desc in enumerate(node.output_descs):
                if desc.size_bytes > self.memory_limit:
                    self._check_memory(
                        desc.size_bytes, f"tensor {node.name}:{i} ({desc.type_str()})"
                    )

    # ----- interpreting --------------------------------------------------------------------
    def _interpret(
        self,
        template: Graph,
        arrays: list[np.ndarray],
        record: dict[str, np.ndarray] | None = None,
        preset: dict[tuple[str, int], np.ndarray] | None = None,
        static: frozenset[str] = frozenset(),
    ) -> list[np.ndarray]:
        """Run the graph node by node: each node inferred from its actual inputs, then its
        kernel called on fresh outputs (within the memory limit). ``preset`` values (by node
        name and output index) come from the static prefix, whose ``static`` nodes are
        skipped."""
        from openge.parser.deferred import expand_node

        graph = template.clone()
        values: dict[Port, np.ndarray] = {}
        for node, array in zip(graph.inputs, arrays):
            values[node.output(0)] = array
        for (name, index), array in (preset or {}).items():
            values[Port(graph.node(name), index)] = array
        used = 0
        queue: deque[Node] = deque(graph.topological_order())
        while queue:
            node = queue.popleft()
            if node.name in static:
                continue
            if node.op_type == "FrameworkOp":
                queue.extendleft(reversed(expand_node(graph, node, values)))
                continue
            schema = get_schema(node.op_type)
            if node.op_type == "Const":
                values[node.output(0)] = node.attrs["value"].numpy()
                continue
            if schema.has(Trait.SOURCE) or schema.has(Trait.SINK):
                continue
            outs = [node.output(i) for i in range(node.num_outputs)]
            if all(p in values for p in outs):  # computed while converting a FrameworkOp
                continue
            attrs, descs = infer_node(node, values)
            nbytes = sum(max(d.size_bytes, 0) for d in descs)
            used += nbytes
            self._check_memory(used, f"the tensors up to node {node.name} ({node.op_type})")
            results = [np.empty(d.shape, dtype=d.dtype.np_dtype) for d in descs]
            ins = [None if p is None else values[p] for p in node.inputs]
            try:
                with np.errstate(all="ignore"):
                    schema.kernel(ins, results, **{k: attrs[k] for k in schema.kernel_attrs})  # type: ignore[misc]
            except GeError as err:
                raise GeError(
                    err.code, f"while executing node {node.name} ({node.op_type}): {err.message}"
                ) from err
            except Exception as err:
                raise GeError(
                    INTERNAL_ERROR,
                    f"while executing node {node.name} ({node.op_type}): "
                    f"{type(err).__name__}: {err}",
                ) from err
            values.update(zip(outs, results))
            if record is not None:
                record.update(
                    (f"{node.name}:{i}", np.array(r, copy=True)) for i, r in enumerate(results)
                )
        return [np.array(values[p], copy=True) for p in graph.outputs]


def _check_graph_matches(compiled: CompiledModel) -> None:
    """The stored graph's inputs and outputs are the model's (an .om is untrusted)."""
    graph = compiled.graph
    data = graph.inputs
    same_inputs = [(n.name, n.output_descs[0].dtype, len(n.output_descs[0].shape)) for n in data]
    declared = [(d.name, d.dtype, len(d.shape)) for d in compiled.inputs]
    indexes = [n.attrs.get("index") for n in data]
    if (
        same_inputs != declared
        or indexes != list(range(len(data)))
        or len(graph.outputs) != len(compiled.outputs)
        or [p.desc.dtype for p in graph.outputs] != [d.dtype for d in compiled.outputs]
    ):
        raise GeError(
            LOAD_MODEL,
            f"model {compiled.name}: the stored graph's inputs/outputs differ from the model's "
            "(the model is corrupt)",
        )
    for node in graph.nodes:
        # a dynamic model keeps its constants in its graph (no external weights, no variables)
        if node.op_type == "Const" and isinstance(node.attrs.get("value"), Tensor):
            continue
        if node.op_type == "Data" or not get_schema(node.op_type).has(Trait.SOURCE):
            continue
        raise GeError(
            LOAD_MODEL,
            f"model {compiled.name}: node {node.name} ({node.op_type}) cannot be in a "
            "dynamic-shape model's graph (its constants are stored in the graph; external "
            "weights and variables apply to static models only): the model is corrupt — "
            "compile it again",
        )


def _split(graph: Graph) -> set[str]:
    """Infer ``graph`` (inputs of concrete shapes) as far as shapes allow, converting the
    FrameworkOps that can be; returns the names of the nodes whose shapes need run-time values
    (and of every node after them)."""
    from openge.ops.infer import propagate_value
    from openge.ops.schema import ValueNeededError
    from openge.parser.deferred import expand_node

    values: dict[Port, np.ndarray] = {}
    dynamic: set[str] = set()
    for node in graph.topological_order():
        schema = get_schema(node.op_type)
        if schema.has(Trait.SINK):
            continue
        if any(p is not None and p.node.name in dynamic for p in node.inputs):
            dynamic.add(node.name)
            continue
        try:
            if node.op_type == "FrameworkOp":
                expand_node(graph, node, values)
                continue
            attrs, descs = infer_node(node, values)
        except ValueNeededError:
            dynamic.add(node.name)
            continue
        node.output_descs = descs
        if node.op_type == "Const":
            values[node.output(0)] = attrs["value"].numpy()
            continue
        for i, value in enumerate(propagate_value(node, attrs, descs, values) or ()):
            values[node.output(i)] = value
    return dynamic


def _sources(port: Port | None) -> list[str]:
    """Names of the Data nodes whose values ``port``'s value derives from (not through ops that
    read only shapes)."""
    if port is None:
        return []
    found: list[str] = []
    seen: set[str] = set()
    stack = [port.node]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Data":
            found.append(node.name)
            continue
        if get_schema(node.op_type).has(Trait.SHAPE_ONLY):
            continue
        stack.extend(p.node for p in node.inputs if p is not None)
    return found


__all__ = ["CACHE_OPTION", "MEMORY_OPTION", "DynamicExecutor", "physical_memory"]
