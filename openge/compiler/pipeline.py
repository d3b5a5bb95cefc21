"""The compile pipeline: the ordered list of passes, driven by options, then task generation."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from openge.compiler.boundary import apply_boundary_options
from openge.compiler.dynamic import compile_dynamic, is_dynamic_graph
from openge.compiler.gears import GearSpec, gear_spec
from openge.compiler.memory import check_plan, plan_from_stats
from openge.compiler.options import option_enabled
from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.cancel_inverse_ops import CancelInverseOpsPass
from openge.compiler.passes.eliminate_common_subexpressions import (
    EliminateCommonSubexpressionsPass,
)
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass
from openge.compiler.passes.eliminate_trans_data import EliminateTransDataPass
from openge.compiler.passes.externalize_weights import ExternalizeWeightsPass
from openge.compiler.passes.fold_batch_norm import FoldBatchNormPass
from openge.compiler.passes.fold_constants import FoldConstantsPass
from openge.compiler.passes.fold_large_constants import FoldLargeConstantsPass
from openge.compiler.passes.fuse_bias_activation import FuseBiasActivationPass
from openge.compiler.passes.fuse_elementwise import FuseElementwisePass
from openge.compiler.passes.infer_shapes import InferShapesPass
from openge.compiler.passes.lower_batch_norm import LowerBatchNormPass
from openge.compiler.passes.merge_constants import MergeConstantsPass
from openge.compiler.passes.precision import PrecisionPass
from openge.compiler.passes.select_layouts import SelectLayoutsPass
from openge.compiler.passes.variable_format import VariableFormatPass
from openge.compiler.taskgen import generate
from openge.errors import INTERNAL_ERROR, PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import Graph, Port, TensorDesc
from openge.graph.shape_range import RANGE_ATTR, encode_range, parse_shape_ranges
from openge.om.plan import CompiledModel
from openge.ops import Trait, get_schema, infer_node
from openge.ops.infer import propagate_value
from openge.ops.schema import ValueNeededError

logger = logging.getLogger(__name__)

#: Debug switch: verify the graph after every pass (validate + re-infer every node) so that a
#: broken invariant names the pass that broke it. The test suite turns it on; the option
#: ``_openge.debug.verifyPasses = "1"`` does the same for one compilation.
VERIFY_PASSES = False
VERIFY_OPTION = "_openge.debug.verifyPasses"


@dataclass(frozen=True)
class PipelineStep:
    """One pass of the pipeline and why it sits where it does."""

    graph_pass: GraphPass
    why: str = ""

    @property
    def name(self) -> str:
        """The pass name (what ge.disableOptimizations lists)."""
        return self.graph_pass.name


class PassPipeline:
    """The ordered passes of one compilation and the rules that switch them off.

    A pass is skipped when it is named in ``ge.disableOptimizations``, when its ``option_key``
    (``ge.oo.constantFolding`` …) is false, when it is a fusion pass (``fusion = True``) and
    ``ge.oo.level`` is ``O1``, or when its ``skip_reason(options)`` gives a reason. Passes marked
    ``required`` always run.
    """

    def __init__(self, steps: Sequence[PipelineStep | GraphPass]) -> None:
        self.steps: list[PipelineStep] = [
            s if isinstance(s, PipelineStep) else PipelineStep(s) for s in steps
        ]

    @property
    def names(self) -> list[str]:
        """Pass names in order."""
        return [s.name for s in self.steps]

    def skip_reason(self, graph_pass: GraphPass, options: Mapping[str, str]) -> str | None:
        """Why ``graph_pass`` does not run under ``options`` (None: it runs)."""
        if graph_pass.required:
            return None
        if graph_pass.name in _disabled(options):
            return "ge.disableOptimizations"
        if graph_pass.option_key and not option_enabled(options, graph_pass.option_key, True):
            return f"{graph_pass.option_key}={options.get(graph_pass.option_key)}"
        if getattr(graph_pass, "fusion", False) and options.get("ge.oo.level") == "O1":
            return "ge.oo.level=O1 (no fusion)"
        hook = getattr(graph_pass, "skip_reason", None)
        if hook is not None:
            return hook(options)
        return None

    def enabled(self, options: Mapping[str, str]) -> list[str]:
        """Names of the passes that run under ``options``, in order."""
        return [s.name for s in self.steps if self.skip_reason(s.graph_pass, options) is None]

    def run(
        self,
        graph: Graph,
        ctx: PassContext,
        report: CompileReport | None = None,
        *,
        verify: bool = False,
    ) -> None:
        """Run the enabled passes in order on ``graph``, recording each in ``report``."""
        known = set(self.names)
        unknown = sorted(_disabled(ctx.options) - known)
        if unknown:
            logger.warning(
                "ge.disableOptimizations names unknown passes %s; the passes are: %s",
                ", ".join(unknown),
                ", ".join(dict.fromkeys(self.names)),
            )
        for step in self.steps:
            p = step.graph_pass
            before = len(graph)
            reason = self.skip_reason(p, ctx.options)
            if reason is not None:
                if report is not None:
                    report.passes.append(PassRecord(p.name, before, before, 0.0, False, reason))
                continue
            start = time.perf_counter()
            try:
                changed = p.run(graph, ctx)
            except GeError:
                raise
            except (Exception, RecursionError) as err:  # a pass bug must not escape as-is
                logger.debug("%s failed", p.name, exc_info=True)
                raise GeError(
                    INTERNAL_ERROR,
                    f"{p.name} failed on graph {graph.name}: {type(err).__name__}: {err}",
                ) from err
            seconds = time.perf_counter() - start
            if report is not None:
                report.passes.append(PassRecord(p.name, before, len(graph), seconds, changed))
            if verify:
                verify_graph(graph, p.name)


def verify_graph(graph: Graph, after: str = "") -> None:
    """Check the graph's invariants and that every node's descs are what inference gives.

    Raises GeError naming the pass ``after`` which the graph was left broken.
    """
    where = f" after {after}" if after else ""
    known: dict[Port, np.ndarray] = {}
    try:
        graph.validate()
        for node in graph.topological_order():
            schema = get_schema(node.op_type)
            if node.op_type == "Const":
                known[node.output(0)] = node.attrs["value"].numpy()
            if schema.has(Trait.SOURCE) or schema.has(Trait.SINK) or schema.infer is None:
                continue
            attrs, descs = infer_node(node, known)
            for i, value in enumerate(propagate_value(node, attrs, descs, known) or ()):
                known[node.output(i)] = value
            if [(d.dtype, d.shape) for d in descs] != [
                (d.dtype, d.shape) for d in node.output_descs
            ]:
                raise GeError(
                    INTERNAL_ERROR,
                    f"node {node.name} ({node.op_type}) carries "
                    f"{[d.type_str() for d in node.output_descs]} but infers "
                    f"{[d.type_str() for d in descs]}",
                )
    except GeError as err:
        raise GeError(
            INTERNAL_ERROR, f"graph {graph.name} is broken{where}: {err.message}"
        ) from err


def default_pipeline() -> PassPipeline:
    """The pipeline, in order. Each step says why it is where it is."""
    return PassPipeline(
        [
            PipelineStep(
                InferShapesPass(),
                "every later pass relies on complete descs and known small constants",
            ),
            PipelineStep(
                FoldConstantsPass(),
                "fold what is computable now: shape arithmetic, constant subgraphs",
            ),
            PipelineStep(
                EliminateDeadCodePass(), "folding and the user's graph leave nodes no output needs"
            ),
            PipelineStep(
                FoldLargeConstantsPass(),
                "big constant results (generated weights) become weights, computed "
                "once here instead of on every run",
            ),
            PipelineStep(
                CancelInverseOpsPass(),
                "drop identities and undone transposes/reshapes/casts first, so the "
                "fusion patterns below see conv → bn → relu adjacent",
            ),
            PipelineStep(
                FoldBatchNormPass(),
                "fold BN into conv/matmul weights while every weight is still private "
                "(before equal constants are merged) and before layouts are chosen: "
                "a BNInference would pin its conv to NCHW",
            ),
            PipelineStep(
                LowerBatchNormPass(),
                "a BN no weight took (e.g. after a concat) becomes Mul + Add, composed with the "
                "per-channel Mul/Add after it, so elementwise fusion runs it with its Relu in "
                "place; after FoldBatchNormPass, which removes the BN entirely where it can",
            ),
            PipelineStep(
                PrecisionPass(),
                "ge.exec.precision_mode: Casts by op lists once BN is folded into the float32 "
                "weights (converted here), before constants merge and ops fuse",
            ),
            PipelineStep(
                MergeConstantsPass(), "equal constants become one node, so CSE sees equal inputs"
            ),
            PipelineStep(
                EliminateCommonSubexpressionsPass(),
                "compute each value once before anything is fused around it",
            ),
            PipelineStep(
                SelectLayoutsPass(),
                "convs and pools run in their fastest layout; TransData at borders",
            ),
            PipelineStep(
                EliminateTransDataPass(),
                "cancel the TransData pairs the layout choice left back to back",
            ),
            PipelineStep(
                VariableFormatPass(),
                "variables read through Cast/TransData are stored converted "
                "(ge.exec.variable_acc); before fusion hides those chains",
            ),
            PipelineStep(
                FuseBiasActivationPass(),
                "conv/matmul + bias + activation (+ residual) become one task",
            ),
            PipelineStep(
                FuseElementwisePass(), "the remaining elementwise trees become one task each"
            ),
            PipelineStep(
                InferShapesPass(),
                "re-infer after the rewrites so every desc is current for taskgen",
            ),
            PipelineStep(
                ExternalizeWeightsPass(),
                "last rewrite: constants leave the model for files (ge.externalWeight 1/2)",
            ),
        ]
    )


def default_passes() -> list[GraphPass]:
    """The passes of :func:`default_pipeline`, in order."""
    return [s.graph_pass for s in default_pipeline().steps]


@dataclass
class PassRecord:
    """What one pass did: node counts before/after, time, whether it changed the graph, and
    why it was skipped (empty when it ran)."""

    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    changed: bool
    skipped: str = ""


@dataclass
class CompileReport:
    """Per-pass records, timings and the memory figures of the result (``openge atc
    --log=info``; in Python: ``compile_graph(..., report=r)`` then ``r.format(model)`` or
    ``r.summary(model)``)."""

    passes: list[PassRecord] = field(default_factory=list)
    taskgen_seconds: float = 0.0
    total_seconds: float = 0.0

    def summary(self, model: CompiledModel) -> dict[str, int | float | str]:
        """The figures of the report as a dict."""
        stats = model.stats
        return {
            "arena_size": model.memory_size,
            "arena_lower_bound": int(stats.get("arena_lower_bound", 0)),
            "arena_no_reuse": int(stats.get("arena_no_reuse", 0)),
            "arena_strategy": str(stats.get("arena_strategy", "")),
            "inplace_tasks": len(stats.get("arena_aliases", {})),
            "weight_size": model.weight_size,
            "op_count": len(model.tasks),
            "node_count": len(model.graph),
            "compile_seconds": self.total_seconds,
        }

    def format(self, model: CompiledModel) -> str:
        """A human-readable report."""
        lines = [f"{'pass':<36}{'nodes before':>13}{'nodes after':>12}{'ms':>9}"]
        for r in self.passes:
            if r.skipped:
                lines.append(f"{r.name:<36}{'skipped: ' + r.skipped:>34}")
                continue
            lines.append(
                f"{r.name:<36}{r.nodes_before:>13}{r.nodes_after:>12}{r.seconds * 1e3:>9.2f}"
            )
        lines.append(f"{'task generation + memory plan':<61}{self.taskgen_seconds * 1e3:>9.2f}")
        s = self.summary(model)
        arena, bound = model.memory_size, int(model.stats.get("arena_lower_bound", 0))
        ratio = arena / bound if bound else 1.0
        lines += [
            f"work arena: {s['arena_size']} bytes ({ratio:.3f}x the live lower bound "
            f"{s['arena_lower_bound']}; no reuse {s['arena_no_reuse']}; strategy "
            f"{s['arena_strategy'] or '-'}; {s['inplace_tasks']} tasks in place)",
            f"weights: {s['weight_size']} bytes; ops (tasks): {s['op_count']}; "
            f"compile time {self.total_seconds * 1e3:.1f} ms",
        ]
        return "\n".join(lines)


def _disabled(options: Mapping[str, str]) -> set[str]:
    text = options.get("ge.disableOptimizations", "")
    return {p.strip() for p in text.split(",") if p.strip()}


def apply_input_shapes(
    graph: Graph, input_descs: Sequence[TensorDesc] | None, options: Mapping[str, str]
) -> None:
    """Fix the Data nodes' descs from compile-time inputs or the ge.inputShape option."""
    data = graph.inputs
    if input_descs is not None:
        if len(input_descs) != len(data):
            raise GeError(
                PARAM_INVALID,
                f"graph {graph.name} has {len(data)} inputs but {len(input_descs)} were given",
            )
        for node, desc in zip(data, input_descs):
            declared = node.output_descs[0]
            _check_compatible(node.name, declared, desc)
            node.output_descs = [replace(declared, dtype=desc.dtype, shape=desc.shape)]
    shape_text = options.get("ge.inputShape", "")
    if shape_text:
        shapes = parse_shape_ranges(shape_text)
        by_name = {n.name: n for n in data}
        for name, (shape, ranges) in shapes.items():
            if name not in by_name:
                raise GeError(
                    PARAM_INVALID,
                    f"ge.inputShape names input {name!r}; the graph's inputs are "
                    + ", ".join(by_name),
                )
            node = by_name[name]
            declared = node.output_descs[0]
            _check_compatible(name, declared, TensorDesc(declared.dtype, shape))
            node.output_descs = [node.output_descs[0].with_shape(shape)]
            if any(d < 0 for d in shape):
                node.attrs[RANGE_ATTR] = encode_range(ranges)


def _check_compatible(name: str, declared: TensorDesc, given: TensorDesc) -> None:
    if declared.dtype != given.dtype:
        raise GeError(
            PARAM_INVALID,
            f"input {name}: expected dtype {declared.dtype.short_name}, given "
            f"{given.dtype.short_name}",
        )
    if declared.shape and (
        len(declared.shape) != len(given.shape)
        or any(d >= 0 and d != g for d, g in zip(declared.shape, given.shape))
    ):
        raise GeError(
            SHAPE_INVALID,
            f"input {name}: declared shape {list(declared.shape)}, given {list(given.shape)}",
        )


def compile_graph(
    graph: Graph,
    options: Mapping[str, str] | None = None,
    input_descs: Sequence[TensorDesc] | None = None,
    *,
    passes: Sequence[GraphPass] | PassPipeline | None = None,
    report: CompileReport | None = None,
    variable_formats: dict | None = None,
) -> CompiledModel:
    """Compile a copy of ``graph``: run the pass pipeline, then generate tasks and memory plan.

    Args:
        graph: the graph (never modified).
        options: GE options (``ge.oo.level``, ``ge.disableOptimizations``, ...).
        input_descs: compile-time input descs (fix unknown dims).
        passes: a pass list or PassPipeline to run instead of :func:`default_pipeline`.
        report: filled with per-pass records and timings (see :class:`CompileReport`).
        variable_formats: the session's variable formats (VariableFormatPass reads and
            updates it).

    Every produced plan is checked (:func:`openge.compiler.memory.check_plan`).
    """
    start = time.perf_counter()
    options = dict(options or {})
    spec = gear_spec(options)
    if spec is not None:  # ge.dynamicBatchSize / ImageSize / Dims: one compilation per gear
        return compile_graph_with_gears(
            graph, spec, options, passes=passes, variable_formats=variable_formats
        )
    work = graph.clone()
    work.validate()
    if not work.outputs:
        raise GeError(PARAM_INVALID, f"graph {graph.name} has no outputs; set them first")
    apply_input_shapes(work, input_descs, options)
    apply_boundary_options(work, options)  # --out_nodes, --input_fp16_nodes, AIPP, --output_type
    if is_dynamic_graph(work, options):
        return compile_dynamic(work, options)
    ctx = PassContext(
        options=options, variable_formats=variable_formats if variable_formats is not None else {}
    )
    report = report if report is not None else CompileReport()
    if passes is None:
        pipeline = default_pipeline()
    else:
        pipeline = passes if isinstance(passes, PassPipeline) else PassPipeline(passes)
    verify = VERIFY_PASSES or options.get(VERIFY_OPTION) == "1"
    try:
        pipeline.run(work, ctx, report, verify=verify)
    except ValueNeededError as err:
        # an output shape depends on a value known only at run time: a dynamic-shape model
        logger.info("graph %s: %s; compiled as a dynamic-shape model", graph.name, err.message)
        work = graph.clone()
        apply_input_shapes(work, input_descs, options)
        return compile_dynamic(work, options)
    reuse = options.get("ge.exec.disableReuseMemory", "0") != "1"
    gen_start = time.perf_counter()
    try:
        model = generate(work, options, reuse_memory=reuse)
    except GeError:
        raise
    except Exception as err:  # a task-generation bug must not escape as-is
        logger.debug("task generation failed", exc_info=True)
        raise GeError(
            INTERNAL_ERROR,
            f"task generation failed on graph {graph.name}: {type(err).__name__}: {err}",
        ) from err
    # The plan is verified on every model: no two tensors live at one task share a byte.
    check_plan(*plan_from_stats(model.stats, model.memory_size))
    report.taskgen_seconds = time.perf_counter() - gen_start
    report.total_seconds = time.perf_counter() - start
    model.stats["report"] = report
    model.stats["changed_variables"] = sorted(ctx.changed_variables)
    return model


def compile_graph_with_gears(
    graph: Graph,
    spec: GearSpec,
    options: Mapping[str, str],
    *,
    passes: Sequence[GraphPass] | PassPipeline | None = None,
    variable_formats: dict | None = None,
) -> CompiledModel:
    """A gear model of ``graph``: a clone per gear with the gear's input shapes, each compiled
    by :func:`compile_graph` (see :mod:`openge.compiler.multi_batch`)."""
    from openge.compiler.multi_batch import clone_with_shapes, compile_gears, spec_for_graph

    spec = spec_for_graph(graph, spec)
    return compile_gears(
        spec,
        options,
        lambda _, shapes: clone_with_shapes(graph, shapes),
        lambda g, opts: compile_graph(g, opts, passes=passes, variable_formats=variable_formats),
        name=graph.name,
    )
