"""Fixtures of the openge.acl tests: a small ONNX classifier, its .om files made by
``openge atc`` (plain, fp16 input + FP32 output, --out_nodes), and a clean acl state per test."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import openge.acl as acl
from openge.cli.main import main as openge_main

INPUT = "images"
SHAPE = (1, 3, 16, 16)


def make_classifier(path: str) -> None:
    """Conv → Relu → GlobalAveragePool → Flatten → Gemm → Softmax, seeded weights."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b")
    fc = numpy_helper.from_array(rng.normal(0, 1.0, (10, 8)).astype(np.float32), "fc")
    fcb = numpy_helper.from_array(rng.normal(0, 0.1, (10,)).astype(np.float32), "fcb")
    nodes = [
        helper.make_node("Conv", [INPUT, "w", "b"], ["conv"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool1"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flat1"),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], name="fc1", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax1", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, (1, 10))],
        [w, b, fc, fcb],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def atc(onnx_path: str, prefix: str, *flags: str) -> str:
    """Run ``openge atc`` in-process; returns the .om path."""
    code = openge_main(
        ["atc", f"--model={onnx_path}", "--framework=5", f"--output={prefix}", *flags]
    )
    assert code == 0
    return prefix + ".om"


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Paths: onnx, om (plain), om_fp16 (fp16 input, FP32 output), om_out (+ relu1 output)."""
    root = tmp_path_factory.mktemp("acl_models")
    onnx_path = str(root / "classifier.onnx")
    make_classifier(onnx_path)
    return {
        "onnx": onnx_path,
        "om": atc(onnx_path, str(root / "classifier")),
        "om_fp16": atc(
            onnx_path,
            str(root / "classifier_fp16"),
            f"--input_fp16_nodes={INPUT}",
            "--output_type=FP32",
        ),
        "om_out": atc(
            onnx_path,
            str(root / "classifier_out"),
            "--out_nodes=relu1:0;softmax1:0",
            "--output_type=relu1:0:FP16",
        ),
    }


@pytest.fixture
def reference(models):
    """``run(x, outputs=None)``: ONNX Runtime on the source model (the independent reference)."""
    import onnxruntime as ort

    def run(x: np.ndarray, outputs: list[str] | None = None, path: str | None = None):
        sess = ort.InferenceSession(path or models["onnx"], providers=["CPUExecutionProvider"])
        return sess.run(outputs, {INPUT: x.astype(np.float32)})

    return run


@pytest.fixture(autouse=True)
def clean_acl():
    """Every test starts and ends with acl finalized."""
    if acl.finalize() == 0:
        pass
    yield
    acl.finalize()
