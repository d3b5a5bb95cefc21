"""The compile pipeline: the ordered list of passes, driven by options, then task generation."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from openge.compiler.options import option_enabled, parse_input_shape
from openge.compiler.passes import (
    EliminateDeadCodePass,
    ExternalizeWeightsPass,
    FoldConstantsPass,
    GraphPass,
    InferShapesPass,
    PassContext,
    VariableFormatPass,
)
from openge.compiler.taskgen import generate
from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import Graph, TensorDesc
from openge.om.plan import CompiledModel

logger = logging.getLogger(__name__)


def default_passes() -> list[GraphPass]:
    """The pipeline, in order. Each step says why it is where it is."""
    return [
        # Every later pass relies on complete, static descs and on known small constants.
        InferShapesPass(),
        # Fold what is computable now (shape arithmetic, constant subgraphs).
        FoldConstantsPass(),
        # Folding and the user's graph leave nodes no output needs.
        EliminateDeadCodePass(),
        # Variables read only through Cast/TransData are stored converted (ge.exec.variable_acc).
        VariableFormatPass(),
        # Re-infer after rewrites so every desc is current before task generation.
        InferShapesPass(),
        # Last graph rewrite: constants leave the model for files (ge.externalWeight 1/2).
        ExternalizeWeightsPass(),
    ]


@dataclass
class PassRecord:
    """What one pass did: node counts before/after, time, whether it changed the graph."""

    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    changed: bool


@dataclass
class CompileReport:
    """Per-pass records and the memory figures of the result."""

    passes: list[PassRecord] = field(default_factory=list)

    def format(self, model: CompiledModel) -> str:
        """A human-readable report (``openge atc --log=info``)."""
        lines = [f"{'pass':<28}{'nodes before':>14}{'nodes after':>13}{'ms':>10}"]
        for r in self.passes:
            lines.append(
                f"{r.name:<28}{r.nodes_before:>14}{r.nodes_after:>13}{r.seconds * 1e3:>10.2f}"
            )
        stats = model.stats
        lines += [
            f"work arena: {model.memory_size} bytes "
            f"(live lower bound {stats.get('arena_lower_bound', 0)}, "
            f"no reuse {stats.get('arena_no_reuse', 0)})",
            f"weights: {model.weight_size} bytes; tasks: {len(model.tasks)}",
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
        shapes = parse_input_shape(shape_text)
        by_name = {n.name: n for n in data}
        for name, shape in shapes.items():
            if name not in by_name:
                raise GeError(
                    PARAM_INVALID,
                    f"ge.inputShape names input {name!r}; the graph's inputs are "
                    + ", ".join(by_name),
                )
            node = by_name[name]
            _check_compatible(name, node.output_descs[0], TensorDesc(node.output_descs[0].dtype, shape))
            node.output_descs = [node.output_descs[0].with_shape(shape)]


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
    passes: Sequence[GraphPass] | None = None,
    report: CompileReport | None = None,
    variable_formats: dict | None = None,
) -> CompiledModel:
    """Compile a copy of ``graph``: run the pass pipeline, then generate tasks and memory plan.

    The caller's graph is never modified.
    """
    options = dict(options or {})
    work = graph.clone()
    work.validate()
    if not work.outputs:
        raise GeError(PARAM_INVALID, f"graph {graph.name} has no outputs; set them first")
    apply_input_shapes(work, input_descs, options)
    ctx = PassContext(
        options=options, variable_formats=variable_formats if variable_formats is not None else {}
    )
    disabled = _disabled(options)
    report = report if report is not None else CompileReport()
    for p in passes if passes is not None else default_passes():
        if not p.required:
            if p.name in disabled:
                continue
            if p.option_key and not option_enabled(options, p.option_key, True):
                continue
        before = len(work)
        start = time.perf_counter()
        changed = p.run(work, ctx)
        report.passes.append(
            PassRecord(p.name, before, len(work), time.perf_counter() - start, changed)
        )
    reuse = options.get("ge.exec.disableReuseMemory", "0") != "1"
    model = generate(work, options, reuse_memory=reuse)
    model.stats["report"] = report
    model.stats["changed_variables"] = sorted(ctx.changed_variables)
    return model
