"""openge atc with --dynamic_batch_size / --dynamic_image_size / --dynamic_dims: the gear model,
its gears in --mode=6 and --mode=1, and a rule breach as one error line."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

from openge.cli.main import main
from openge.runtime import Model
from tests.compiler.gear_models import write_cnn


def test_atc_dynamic_batch_size_then_mode_6_and_1(tmp_path, capsys):
    cnn = write_cnn(tmp_path / "cnn.onnx", channels=8)
    prefix = tmp_path / "cnn_gears"
    args = ["atc", f"--model={cnn}", "--framework=5", f"--output={prefix}"]
    assert main([*args, "--input_shape=x:-1,3,8,8", "--dynamic_batch_size=1,4"]) == 0
    assert "ATC run success" in capsys.readouterr().out
    om = f"{prefix}.om"
    assert main(["atc", "--mode=6", f"--om={om}"]) == 0
    out = capsys.readouterr().out
    assert "gears (batch):   2: 1 | 4" in out
    assert "input 0: x DT_FLOAT [-1, 3, 8, 8] FORMAT_NCHW" in out and "range [1~4,3,8,8]" in out
    assert "input 1: ascend_mbatch_shape_data DT_INT32 [1]" in out
    doc_path = tmp_path / "m.json"
    assert main(["atc", "--mode=1", f"--om={om}", f"--json={doc_path}"]) == 0
    doc = json.loads(doc_path.read_text())
    assert doc["gears"] == {"kind": "batch", "values": [[1], [4]]}
    assert doc["inputs"][0]["range"] == [[1, 4], [3, 3], [8, 8], [8, 8]]
    assert [g["name"] for g in doc["model_def"]["graph"]] == ["cnn", "Batch_0", "Batch_1"]
    session = ort.InferenceSession(str(cnn), providers=["CPUExecutionProvider"])
    with Model.from_file(om) as model:
        x = np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(
            model.execute([x])[0], session.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5
        )


def test_atc_dynamic_dims_defaults_to_nd_and_image_size_to_nchw(tmp_path, capsys):
    cnn = write_cnn(tmp_path / "cnn.onnx", channels=8)
    args = ["atc", f"--model={cnn}", "--framework=5"]
    dims = [f"--output={tmp_path / 'd'}", "--input_shape=x:-1,3,-1,8", "--dynamic_dims=1,8;2,12"]
    assert main([*args, *dims]) == 0
    image = [f"--output={tmp_path / 'i'}", "--input_shape=x:1,3,-1,-1"]
    assert main([*args, *image, "--dynamic_image_size=8,8;12,16"]) == 0
    capsys.readouterr()
    assert main(["atc", "--mode=6", f"--om={tmp_path / 'i.om'}"]) == 0
    assert "gears (hw):      2: 8,8 | 12,16" in capsys.readouterr().out


def test_atc_gear_rule_breach_is_one_error_line(tmp_path, capsys):
    cnn = write_cnn(tmp_path / "cnn.onnx", channels=8)
    args = ["atc", f"--model={cnn}", "--framework=5", f"--output={tmp_path / 'x'}"]
    code = main([*args, "--input_shape=x:-1,3,8,8", "--dynamic_batch_size=2,2"])
    err = capsys.readouterr().err
    assert code != 0 and "no duplicates" in err and "2,2" in err
    assert len(err.strip().splitlines()) == 1
    code = main(
        [*args, "--input_shape=x:-1,3,8,8", "--dynamic_batch_size=1,2", "--dynamic_dims=1;2"]
    )
    assert code != 0 and "mutually exclusive" in capsys.readouterr().err


def test_openge_run_feeds_the_largest_gear_or_the_given_gear(tmp_path, capsys):
    cnn = write_cnn(tmp_path / "cnn.onnx", channels=8)
    prefix = tmp_path / "g"
    args = ["atc", f"--model={cnn}", "--framework=5", f"--output={prefix}"]
    assert main([*args, "--input_shape=x:-1,3,8,8", "--dynamic_batch_size=1,3"]) == 0
    assert main(["run", "--model", f"{prefix}.om"]) == 0
    assert "output y: float32[3, 10]" in capsys.readouterr().out  # zeros of the largest gear
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 3, 8, 8), np.float32))
    assert main(["run", "--model", f"{prefix}.om", "--input", str(x)]) == 0
    assert "output y: float32[1, 10]" in capsys.readouterr().out
