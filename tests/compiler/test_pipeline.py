"""The pass pipeline: order, switches (ge.oo.level, ge.disableOptimizations, ge.oo.*), the
verifier, the compile report, and numerics with every pass on vs off on the test models."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openge.compiler import CompileReport, compile_graph, default_passes
from openge.compiler.passes import GraphPass, PassContext
from openge.compiler.pipeline import (
    PassPipeline,
    default_pipeline,
    verify_graph,
)
from openge.errors import GeError
from openge.graph import DataType, Graph, TensorDesc
from openge.session.summary import summarize

from .models import ALL_MODELS, Builder, all_passes_off, mlp, run

FUSION = {
    "CancelInverseOpsPass",
    "FoldBatchNormPass",
    "LowerBatchNormPass",
    "FuseBiasActivationPass",
    "FuseElementwisePass",
}


def test_default_order_is_explicit():
    assert default_pipeline().names == [
        "InferShapesPass",
        "FoldConstantsPass",
        "EliminateDeadCodePass",
        "FoldLargeConstantsPass",
        "CancelInverseOpsPass",
        "FoldBatchNormPass",
        "LowerBatchNormPass",
        "PrecisionPass",
        "MergeConstantsPass",
        "EliminateCommonSubexpressionsPass",
        "SelectLayoutsPass",
        "EliminateTransDataPass",
        "VariableFormatPass",
        "FuseBiasActivationPass",
        "FuseElementwisePass",
        "InferShapesPass",
        "ExternalizeWeightsPass",
    ]
    assert [p.name for p in default_passes()] == default_pipeline().names
    assert all(s.why for s in default_pipeline().steps)


def test_o1_turns_fusion_off_and_only_fusion():
    pipe = default_pipeline()
    on = pipe.enabled({})
    o1 = pipe.enabled({"ge.oo.level": "O1"})
    assert set(on) - set(o1) == FUSION
    assert {s.name for s in pipe.steps if getattr(s.graph_pass, "fusion", False)} == FUSION


def test_disable_optimizations_names_passes():
    pipe = default_pipeline()
    enabled = pipe.enabled({"ge.disableOptimizations": "MergeConstantsPass, FuseElementwisePass"})
    assert "MergeConstantsPass" not in enabled and "FuseElementwisePass" not in enabled
    assert "FuseBiasActivationPass" in enabled
    # required passes ignore it
    assert "InferShapesPass" in pipe.enabled({"ge.disableOptimizations": "InferShapesPass"})


def test_option_keys_switch_their_passes():
    pipe = default_pipeline()
    off = pipe.enabled({"ge.oo.constantFolding": "0", "ge.oo.deadCodeElimination": "false"})
    assert "FoldConstantsPass" not in off and "FoldLargeConstantsPass" not in off
    assert "EliminateDeadCodePass" not in off
    assert "SelectLayoutsPass" not in pipe.enabled({"ge.exec.formatMode": "1"})


def test_unknown_pass_name_warns(caplog):
    b = mlp()
    with caplog.at_level(logging.WARNING, logger="openge.compiler.pipeline"):
        compile_graph(b.g, {"ge.disableOptimizations": "NoSuchPass"})
    assert "NoSuchPass" in caplog.text and "FuseElementwisePass" in caplog.text


def test_o1_compiles_without_fused_ops():
    b = ALL_MODELS["cnn"]()
    model = compile_graph(b.g, {"ge.oo.level": "O1"})
    assert not {t.op_type for t in model.tasks} & {"FusedConv2D", "FusedMatMul", "FusedElementwise"}
    fused = compile_graph(b.g, {})
    assert len(fused.tasks) < len(model.tasks)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_numerics_all_passes_on_vs_off(name):
    b = ALL_MODELS[name]()
    feeds = b.feeds()
    on = run(b.g, feeds)
    off = run(b.g, feeds, all_passes_off())
    for a, c in zip(on, off, strict=True):
        # BN folding changes rounding only
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
    no_reuse = run(b.g, feeds, {"ge.exec.disableReuseMemory": "1"})
    for a, c in zip(on, no_reuse, strict=True):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_passes_shrink_the_models(name):
    b = ALL_MODELS[name]()
    on = compile_graph(b.g, {})
    off = compile_graph(b.g, all_passes_off())
    assert len(on.tasks) < len(off.tasks)
    if name != "cnn_nhwc":  # converting to NCHW adds a TransData'd copy of the input
        assert on.memory_size <= off.memory_size


def test_caller_graph_is_not_modified():
    b = ALL_MODELS["cnn"]()
    before = b.g.dump()
    compile_graph(b.g, {})
    assert b.g.dump() == before


class _BreakDescs(GraphPass):
    """A broken pass: sets a wrong output shape."""

    name = "BreakDescsPass"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        for node in graph:
            if node.op_type == "Relu":
                node.output_descs = [TensorDesc(DataType.DT_FLOAT, (1, 2, 3))]
                return True
        return False


def test_verifier_names_the_pass_that_broke_the_graph():
    b = ALL_MODELS["cnn"]()
    passes = [*default_passes()[:1], _BreakDescs(), *default_passes()[1:]]
    with pytest.raises(GeError, match="after BreakDescsPass"):
        compile_graph(b.g, {}, passes=passes)
    verify_graph(b.g.clone())  # the caller's graph is fine


def test_custom_pipeline_object_runs_in_order():
    seen = []

    class Probe(GraphPass):
        def __init__(self, name):
            self.label = name

        name = "ProbePass"

        def run(self, graph, ctx):
            seen.append(self.label)
            return False

    b = mlp()
    pipe = PassPipeline([Probe("a"), *default_passes()[:1], Probe("b")])
    report = CompileReport()
    compile_graph(b.g, {}, passes=pipe, report=report)
    assert seen == ["a", "b"]
    assert [r.name for r in report.passes] == ["ProbePass", "InferShapesPass", "ProbePass"]


def test_report_lists_every_pass_and_the_memory_figures():
    b = ALL_MODELS["cnn"]()
    report = CompileReport()
    model = compile_graph(b.g, {"ge.disableOptimizations": "MergeConstantsPass"}, report=report)
    text = report.format(model)
    for name in default_pipeline().names:
        assert name in text
    assert "skipped: ge.disableOptimizations" in text
    s = report.summary(model)
    assert s["arena_size"] == model.memory_size
    assert s["weight_size"] == model.weight_size
    assert s["op_count"] == len(model.tasks)
    assert s["arena_lower_bound"] <= s["arena_size"] <= s["arena_no_reuse"]
    assert f"work arena: {model.memory_size} bytes" in text
    assert f"no reuse {s['arena_no_reuse']}" in text
    assert f"ops (tasks): {len(model.tasks)}" in text
    ran = [r for r in report.passes if not r.skipped]
    assert all(r.seconds >= 0 and r.nodes_before >= 1 for r in ran)
    assert report.total_seconds >= sum(r.seconds for r in ran)


def test_summary_reports_the_same_sizes():
    b = ALL_MODELS["attention"]()
    report = CompileReport()
    model = compile_graph(b.g, {}, report=report)
    summary = summarize(model)
    assert summary.feature_memory_size == report.summary(model)["arena_size"]
    assert summary.const_memory_size == report.summary(model)["weight_size"]


def test_disable_reuse_memory_gives_the_no_reuse_total():
    b = ALL_MODELS["cnn"]()
    reuse = compile_graph(b.g, {})
    plain = compile_graph(b.g, {"ge.exec.disableReuseMemory": "1"})
    assert plain.memory_size == plain.stats["arena_no_reuse"]
    assert not plain.stats["arena_aliases"]
    assert reuse.memory_size < plain.memory_size


# ----- random graphs: every pass on vs off gives the same bits -----------------------------------

_UNARY = ["Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Exp", "Square"]
_BINARY = ["Add", "Sub", "Mul", "Maximum", "Minimum"]


@st.composite
def random_graphs(draw):
    b = Builder("random", seed=draw(st.integers(0, 1000)))
    shape = (3, 4)
    values = [b.input(shape), b.input(shape)]
    for _ in range(draw(st.integers(2, 14))):
        kind = draw(
            st.sampled_from(
                [
                    "unary",
                    "binary",
                    "const",
                    "matmul",
                    "transpose",
                    "cast",
                    "reshape",
                    "diamond",
                    "concat",
                ]
            )
        )
        x = values[draw(st.integers(0, len(values) - 1))]
        if kind == "unary":
            y = b.op(draw(st.sampled_from(_UNARY)), x)
        elif kind == "binary":
            y = b.op(
                draw(st.sampled_from(_BINARY)), x, values[draw(st.integers(0, len(values) - 1))]
            )
        elif kind == "const":
            c = b.const(np.float32(draw(st.sampled_from([0.5, 2.0, -1.0]))))
            y = b.op(draw(st.sampled_from(_BINARY)), x, c)
        elif kind == "matmul":
            y = b.op("Add", b.op("MatMulV2", x, b.weight(4, 4)), b.weight(4, scale=0.1))
        elif kind == "transpose":
            y = b.op("TransposeD", b.op("TransposeD", x, perm=[1, 0]), perm=[1, 0])
        elif kind == "diamond":  # t is read twice inside one elementwise group
            t = b.op(draw(st.sampled_from(_BINARY)), x, b.const(np.float32(0.5)))
            y = b.op(draw(st.sampled_from(_BINARY)), b.op(draw(st.sampled_from(_UNARY)), t), t)
        elif kind == "cast":
            y = b.op(
                "Cast", b.op("Cast", x, dst_type=DataType.DT_DOUBLE), dst_type=DataType.DT_FLOAT
            )
        elif kind == "concat":  # along axis 0: a view candidate (the inputs' bytes end to end)
            other = values[draw(st.integers(0, len(values) - 1))]
            both = b.op("ConcatV2", x, other, b.const(np.array(0, np.int32)), N=2)
            wide = b.op("Reshape", both, b.const(np.array([3, 8], np.int64)))
            y = b.op("MatMulV2", wide, b.weight(8, 4))
        else:
            y = b.op(
                "Reshape",
                b.op("Reshape", x, b.const(np.array([12], np.int64))),
                b.const(np.array([3, 4], np.int64)),
            )
        values.append(y)
    outs = draw(st.lists(st.integers(2, len(values) - 1), min_size=1, max_size=3, unique=True))
    b.done(*[values[i] for i in outs])
    return b


@settings(max_examples=25, deadline=None)
@given(random_graphs())
def test_random_graphs_give_the_same_bits_with_every_pass(b):
    feeds = b.feeds()
    with np.errstate(all="ignore"):
        on = run(b.g, feeds)
        off = run(b.g, feeds, all_passes_off())
        plain = run(b.g, feeds, {"ge.exec.disableReuseMemory": "1"})
    for u, v, w in zip(on, off, plain, strict=True):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
