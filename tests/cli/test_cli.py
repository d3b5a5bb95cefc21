"""The openge command: demo, atc --mode=0/1/6, run; errors are one line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openge.cli.main import main
from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
from tests.offline_compile.test_workflow import B, W, linear_graph, x_input


@pytest.fixture
def om_file(tmp_path):
    build_initialize({})
    try:
        return save_model(str(tmp_path / "linear"), build_model(linear_graph()))
    finally:
        build_finalize()


def small_onnx(path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return w


def test_demo_runs_and_checks_itself(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "bit-identical" in out


def test_python_dash_m_openge_demo():
    result = subprocess.run(
        [sys.executable, "-m", "openge", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "bit-identical" in result.stdout


def test_atc_mode_6_prints_info(om_file, capsys):
    assert main(["atc", "--mode=6", f"--om={om_file}"]) == 0
    out = capsys.readouterr().out
    assert "producer:        openge-0.1.0" in out
    assert "format:          1.1 (offline)" in out
    assert "input 0: x DT_FLOAT [3, 8]" in out


def test_atc_mode_1_dumps_json(om_file, tmp_path):
    out = tmp_path / "m.json"
    assert main(["atc", "--mode=1", f"--om={om_file}", f"--json={out}"]) == 0
    doc = json.loads(out.read_text())
    assert [p["type"] for p in doc["partitions"]] == [
        "MODEL_INOUT_INFO",
        "MODEL_DEF",
        "TASK_INFO",
        "WEIGHTS_DATA",
    ]
    ops = [op["type"] for op in doc["model_def"]["graph"][0]["op"]]
    assert "Data" in ops and "MatMulV2" in ops and "NetOutput" in ops and "Const" in ops
    assert doc["openge"]["format"] == "1.1" and doc["inputs"][0]["shape"] == [3, 8]


def test_run_with_inputs_and_outputs(om_file, tmp_path, capsys):
    x = x_input()
    np.save(tmp_path / "x.npy", x)
    out_dir = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "--model",
                om_file,
                "--input",
                str(tmp_path / "x.npy"),
                "--output",
                str(out_dir),
                "--loop",
                "5",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "inference 5 runs: min" in text and "median" in text
    np.testing.assert_allclose(np.load(out_dir / "output_0.npy"), x @ W + B, rtol=1e-5)


def test_errors_are_one_line_and_nonzero(tmp_path, capsys):
    assert main(["run", "--model", str(tmp_path / "missing.om")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "145002" in err[0] and "missing.om" in err[0]


def test_atc_converts_onnx_and_run_matches(tmp_path, capsys):
    model = tmp_path / "small.onnx"
    w = small_onnx(model)
    prefix = tmp_path / "small"
    assert (
        main(
            [
                "atc",
                f"--model={model}",
                "--framework=5",
                f"--output={prefix}",
                "--input_shape=x:2,4",
                "--log=info",
            ]
        )
        == 0
    )
    assert "ATC run success" in capsys.readouterr().out
    from openge.runtime import Model

    with Model.from_file(f"{prefix}.om") as m:  # io names are the ONNX model's
        assert [d.name for d in m.inputs] == ["x"] and [d.name for d in m.outputs] == ["y"]
    x = np.random.default_rng(2).normal(size=(2, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert (
        main(
            [
                "run",
                "--model",
                f"{prefix}.om",
                "--input",
                str(tmp_path / "x.npy"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "o" / "output_0.npy"), np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6
    )


def test_atc_without_input_shape_makes_a_dynamic_shape_model(tmp_path):
    from openge.runtime.model import Model

    model = tmp_path / "small.onnx"
    w = small_onnx(model)
    assert main(["atc", f"--model={model}", "--framework=5", f"--output={tmp_path / 'small'}"]) == 0
    om = Model.from_file(tmp_path / "small.om")
    assert om.compiled.is_dynamic and om.inputs[0].shape == (-1, 4)
    for n in (1, 3):
        x = np.arange(n * 4, dtype=np.float32).reshape(n, 4) - 5
        (y,) = om.execute([x])
        np.testing.assert_allclose(y, np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)


def test_atc_mode_1_on_onnx(tmp_path):
    model = tmp_path / "small.onnx"
    small_onnx(model)
    out = tmp_path / "o.json"
    assert main(["atc", "--mode=1", f"--om={model}", f"--json={out}"]) == 0
    assert json.loads(out.read_text())["graph"]["node"][0]["op_type"] == "MatMul"


def test_atc_input_shape_ranges_shown_by_mode_6(tmp_path, capsys):
    from openge.runtime.model import Model

    model = tmp_path / "small.onnx"
    small_onnx(model)
    out = tmp_path / "ranged"
    args = ["atc", f"--model={model}", "--framework=5", f"--output={out}"]
    assert main([*args, "--input_shape=x:1~4,4"]) == 0
    assert Model.from_file(f"{out}.om").inputs[0].range == ((1, 4), (4, 4))
    capsys.readouterr()
    assert main(["atc", "--mode=6", f"--om={out}.om"]) == 0
    text = capsys.readouterr().out
    assert "dynamic shape:   yes" in text
    assert "input 0: x DT_FLOAT [-1, 4]" in text and "range [1~4,4]" in text
