"""The onnx package's nine light_*.onnx networks, with seeded random weights, go end to end
through `openge atc` and `openge run` and match ONNX Runtime on the same input."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from openge.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIGHT_MODELS = (
    "squeezenet", "shufflenet", "inception_v1", "inception_v2", "resnet50", "densenet121",
    "alexnet", "zfnet512", "vgg19",
)  # fmt: skip


def _bench_models():
    spec = importlib.util.spec_from_file_location(
        "openge_bench_models", os.path.join(ROOT, "bench", "models.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_through_atc_and_run_matches_onnxruntime(name, tmp_path, capsys):
    model = _bench_models().light_model(name)
    source = tmp_path / f"{name}.onnx"
    onnx.save(model, str(source))
    (inp,) = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    prefix = tmp_path / name
    assert main(["atc", f"--model={source}", "--framework=5", f"--output={prefix}"]) == 0
    assert main(["run", "--model", f"{prefix}.om", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "out")]) == 0  # fmt: skip
    got = np.load(tmp_path / "out" / "output_0.npy")

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {inp.name: x})
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = float(np.max(np.abs(expected)))
    assert scale > 0
    assert float(np.max(np.abs(got - expected))) <= 1e-4 * scale
