"""The pipeline on real networks: the onnx package's light_*.onnx models (full-size activations,
generated weights) give the expected outputs with every pass on and off, and `openge atc
--log=info` prints the compile report."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from openge.cli.main import main
from openge.compiler import CompileReport, compile_graph
from openge.compiler.memory import check_plan, plan_from_stats
from openge.parser import parse_onnx
from openge.runtime import Model

from .models import all_passes_off

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


@pytest.mark.parametrize("name", ["resnet50", "inception_v2"])
def test_light_model_outputs_with_passes_on_and_off(name):
    graph = parse_onnx(os.path.join(LIGHT, f"light_{name}.onnx"))
    with open(os.path.join(LIGHT, f"light_{name}_output_0.pb"), "rb") as f:
        expected = numpy_helper.to_array(onnx.TensorProto.FromString(f.read()))
    x = np.random.default_rng(0).normal(size=graph.inputs[0].output_descs[0].shape)
    x = x.astype(np.float32)
    report = CompileReport()
    fused = compile_graph(graph, {}, report=report)
    plain = compile_graph(graph, all_passes_off())
    check_plan(*plan_from_stats(fused.stats, fused.memory_size))
    assert fused.memory_size <= 1.3 * fused.stats["arena_lower_bound"]
    assert len(fused.tasks) < len(plain.tasks) / 2
    with Model(fused) as a, Model(plain) as b:
        ya, yb = a.execute([x])[0], b.execute([x])[0]
    np.testing.assert_allclose(ya, yb, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(ya, expected, rtol=1e-3, atol=1e-6)


def test_atc_log_info_prints_the_report(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 3])
    w = numpy_helper.from_array(np.ones((8, 3), np.float32), "w")
    b = numpy_helper.from_array(np.ones(3, np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "small", [x], [y], [w, b]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path = tmp_path / "small.onnx"
    onnx.save(model, path)
    assert (
        main(
            [
                "atc",
                f"--model={path}",
                "--framework=5",
                f"--output={tmp_path / 'small'}",
                "--log=info",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "FuseBiasActivationPass" in out and "nodes before" in out
    assert "work arena:" in out and "lower bound" in out and "no reuse" in out
    assert "weights:" in out and "ops (tasks): 1" in out
