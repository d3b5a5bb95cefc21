"""Constant folding is bounded: results past ``openge.constantFoldingMaxBytes`` or past the
folding budget stay ops computed at run time (with the right values); a few-hundred-byte ONNX
asking for 10^8-element constants compiles to a small model at a small peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import helper, numpy_helper

from openge.compiler import compile_graph
from openge.compiler.options import validate_options
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass
from openge.compiler.passes.fold_constants import FoldConstantsPass
from openge.compiler.passes.fold_large_constants import FoldLargeConstantsPass
from openge.errors import GeError
from openge.parser import parse_onnx
from openge.runtime.model import Model

from .models import Builder, apply_passes, evaluate_graph, op_types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fill_graph(count: int):
    b = Builder("fill")
    x = b.input((count,))
    w = b.op("Fill", b.const(np.array([count], np.int64)), b.const(np.float32(0.5)))
    return b, b.done(b.op("Add", x, w))


def test_a_result_past_the_max_bytes_option_stays_an_op_with_the_right_value():
    _, g = _fill_graph(1000)
    options = {"openge.constantFoldingMaxBytes": "3999"}
    assert not apply_passes(g, FoldLargeConstantsPass(), options=options)
    assert "Fill" in op_types(g)
    x = np.arange(1000, dtype=np.float32)
    np.testing.assert_array_equal(evaluate_graph(g, [x])[0], x + 0.5)
    # at the limit it folds
    _, g = _fill_graph(1000)
    assert apply_passes(
        g, FoldLargeConstantsPass(), options={"openge.constantFoldingMaxBytes": "4000"}
    )
    assert "Fill" not in op_types(g)


def test_the_budget_counts_growth_not_rewrites_of_a_weight_only_one_node_reads():
    b = Builder("budget")
    x = b.input((256, 256))
    w = b.weight(256, 256)  # 256 KiB, read only by the transpose
    t = b.op("TransposeD", w, perm=[1, 0])
    f = b.op("Fill", b.const(np.array([256, 256], np.int64)), b.const(np.float32(2.0)))
    g = b.done(b.op("Add", b.op("MatMulV2", x, t), f))
    before = g.clone()
    options = {"openge.constantFoldingBudgetBytes": str(1024)}
    apply_passes(g, FoldLargeConstantsPass(), options=options)
    types = op_types(g)
    assert "TransposeD" not in types  # adds nothing: the weight it replaces is dropped
    assert "Fill" in types  # adds 256 KiB: past the budget, computed at run time
    feeds = b.feeds()
    np.testing.assert_allclose(
        evaluate_graph(g, feeds)[0], evaluate_graph(before, feeds)[0], rtol=1e-6
    )


def test_small_folds_are_charged_too():
    b = Builder("small")
    x = b.input((64,))
    y = x
    for k in range(8):
        y = b.op("Add", y, b.op("Mul", b.const(np.full(64, k, np.float32)), b.const(np.float32(2))))
    g = b.done(y)
    options = {"openge.constantFoldingBudgetBytes": "512"}
    apply_passes(g, FoldConstantsPass(), EliminateDeadCodePass(), options=options)
    assert op_types(g).count("Mul") == 6  # 2 × 256 bytes fit the budget, the rest stay
    x = np.ones(64, np.float32)
    np.testing.assert_array_equal(evaluate_graph(g, [x])[0], x + 2 * sum(range(8)))


@pytest.mark.parametrize(
    "key",
    [
        "openge.constantFoldingMaxBytes",
        "openge.constantFoldingBudgetBytes",
        "openge.constantPropagationMaxBytes",
    ],
)
def test_limit_options_are_known_and_checked(key):
    assert validate_options({key: "1024"}, "graph") == {key: "1024"}
    with pytest.raises(GeError, match="a byte count"):
        validate_options({key: "1k"}, "graph")


def test_propagation_past_its_limit_leaves_values_to_run_time():
    b = Builder("prop")
    x = b.input((16,))
    y = x
    for k in range(4):
        y = b.op("Add", y, b.op("Mul", b.const(np.full(16, k, np.float32)), b.const(np.float32(3))))
    g = b.done(y)
    options = {"openge.constantPropagationMaxBytes": "1"}
    apply_passes(g, FoldConstantsPass(), EliminateDeadCodePass(), options=options)
    assert op_types(g).count("Mul") == 3  # only the first value was propagated
    x = np.zeros(16, np.float32)
    np.testing.assert_array_equal(evaluate_graph(g, [x])[0], np.full(16, 18, np.float32))


def _generator_onnx(count: int, op: str):
    if op == "ConstantOfShape":
        nodes = [
            helper.make_node(
                "ConstantOfShape",
                ["s"],
                [f"c{i}"],
                value=numpy_helper.from_array(np.array([1.0 + i], np.float32)),
            )
            for i in range(3)
        ]
        outs = [f"c{i}" for i in range(3)]
    elif op == "Range":
        nodes = [helper.make_node("Range", ["zero", "n", "step"], ["r"])]
        outs = ["r"]
    else:
        nodes = [helper.make_node(op, ["one", "s"], ["e"])]
        outs = ["e"]
    inits = [
        numpy_helper.from_array(np.ones(1, np.float32), "one"),
        numpy_helper.from_array(np.array([count], np.int64), "s"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array(count, np.int64), "n"),
        numpy_helper.from_array(np.array(1, np.int64), "step"),
    ]
    outputs = [helper.make_tensor_value_info(o, 0, None) for o in outs]
    graph = helper.make_graph(nodes, "gen", [], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile", "Range"])
def test_generated_constants_past_the_limit_run_with_the_right_values(op):
    m = _generator_onnx(1000, op)
    compiled = compile_graph(parse_onnx(m), {"openge.constantFoldingMaxBytes": "100"})
    assert compiled.weight_size < 1000
    with Model(compiled) as model:
        got = model.execute([])
    if op == "ConstantOfShape":
        for i, value in enumerate(got):
            np.testing.assert_array_equal(value, np.full(1000, 1.0 + i, np.float32))
    elif op == "Range":
        np.testing.assert_array_equal(got[0], np.arange(1000, dtype=np.int64))
    else:
        np.testing.assert_array_equal(got[0], np.ones(1000, np.float32))


_CHILD = """
import json, logging, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
logging.disable(logging.WARNING)
import onnx
from openge.compiler import compile_graph
from openge.om.writer import serialize
from openge.parser import parse_onnx
data = open(sys.argv[1], "rb").read()
compiled = compile_graph(parse_onnx(data))
size = len(serialize(compiled, online=False))
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec (the parent's peak would show).
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"om_bytes": size, "rss_mb": rss, "weights": compiled.weight_size}))
"""


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile", "Range"])
def test_a_tiny_onnx_asking_for_1e8_elements_compiles_small(op, tmp_path):
    data = _generator_onnx(10**8, op).SerializeToString()
    assert len(data) < 400
    path = tmp_path / "gen.onnx"
    path.write_bytes(data)
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["om_bytes"] < 1 << 20, report  # not 1.2 GB of folded constants
    assert report["rss_mb"] < 400, report  # not a 4.6 GB compile peak
