"""Seed corpus for the .om fuzz harnesses: real models openge compiles, written at run time.

Small ONNX graphs covering the ops and task shapes real models have (grouped and strided
convolutions with fused epilogues, pooling, residual adds, Gemm, LayerNorm, Reshape, Transpose,
Concat, Split, Softmax), a Variable updated in place, and external weights. Nothing here is
committed as a binary: ``write_seed_corpus(folder)`` builds the .om files each time.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from openge.compiler import compile_graph
from openge.om.writer import serialize
from openge.parser import parse_onnx


def _init(rng: np.random.Generator, name: str, *shape: int):
    return numpy_helper.from_array(rng.normal(0, 0.2, shape).astype(np.float32), name)


def cnn_onnx() -> bytes:
    """Conv (pads, strides) → Relu → grouped Conv → residual Add → Relu → MaxPool →
    GlobalAveragePool → Flatten → Gemm → Softmax."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Add", ["c2", "r1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w3"], ["c3"], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["l"], transB=1),
        helper.make_node("Softmax", ["l"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "seed_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [
            _init(rng, "w1", 4, 3, 3, 3),
            _init(rng, "b1", 4),
            _init(rng, "w2", 4, 2, 3, 3),
            _init(rng, "b2", 4),
            _init(rng, "w3", 6, 4, 1, 1),
            _init(rng, "w4", 5, 6),
            _init(rng, "b4", 5),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def transformer_onnx() -> bytes:
    """MatMul → Reshape → Transpose → Split → Concat → LayerNormalization → Gelu-like tail."""
    rng = np.random.default_rng(1)
    shape = numpy_helper.from_array(np.array([2, 4, 2, 4], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
        helper.make_node("Split", ["t"], ["s0", "s1"], axis=1, num_outputs=2),
        helper.make_node("Concat", ["s1", "s0"], ["c"], axis=3),
        helper.make_node("Reshape", ["c", "back"], ["b"]),
        helper.make_node("LayerNormalization", ["b", "gamma", "beta"], ["n"], axis=-1),
        helper.make_node("Sigmoid", ["n"], ["sg"]),
        helper.make_node("Mul", ["n", "sg"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "seed_transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8])],
        [
            _init(rng, "w", 8, 8),
            shape,
            numpy_helper.from_array(np.array([2, 4, 8], np.int64), "back"),
            _init(rng, "gamma", 8),
            _init(rng, "beta", 8),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def dynamic_onnx() -> bytes:
    """A symbolic batch and a data-dependent tail: Relu → Reshape by the input's shape →
    NonZero (a value-sized output, run node by node) → Transpose."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["r", "s"], ["rr"]),
        helper.make_node("NonZero", ["rr"], ["nz"]),
        helper.make_node("Transpose", ["nz"], ["y"], perm=[1, 0]),
        helper.make_node("Sigmoid", ["rr"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "seed_dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.INT64, ["K", 2]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def gear_onnx() -> bytes:
    """Conv → Relu → GlobalAveragePool → Reshape to [-1, 4]: compiled with batch gears."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Reshape", ["g", "shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "seed_gears",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [
            _init(rng, "w", 4, 3, 3, 3),
            _init(rng, "b", 4),
            numpy_helper.from_array(np.array([-1, 4], np.int64), "shape"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _om(onnx_bytes: bytes, options: dict[str, str] | None = None) -> bytes:
    return serialize(compile_graph(parse_onnx(onnx_bytes), options or {}), online=False)


def _gear_om(onnx_bytes: bytes) -> bytes:
    """Batch gears 1 and 2, built as ATC builds them: one parse and compile per gear."""
    from openge.compiler.gears import gear_spec
    from openge.compiler.multi_batch import compile_gears

    options = {"ge.inputShape": "x:-1,3,8,8", "ge.dynamicBatchSize": "1,2"}

    def make(_: int, shapes: dict) -> object:
        text = ";".join(f"{name}:{','.join(map(str, dims))}" for name, dims in shapes.items())
        return parse_onnx(onnx_bytes, {"input_shape": text})

    return serialize(compile_gears(gear_spec(options), options, make, compile_graph), online=False)


def seed_models(weight_dir: str | None = None) -> dict[str, bytes]:
    """Name → .om bytes of every seed (with ``weight_dir``, also a model whose weights are
    external files written there)."""
    from tests.conftest import counter_graph

    models = {
        "cnn": _om(cnn_onnx()),
        "cnn_no_reuse": _om(cnn_onnx(), {"ge.exec.disableReuseMemory": "1"}),
        "transformer": _om(transformer_onnx()),
        "counter": serialize(compile_graph(counter_graph(), {}), online=False),
        "dynamic": _om(dynamic_onnx()),
        "gears": _gear_om(gear_onnx()),
    }
    if weight_dir is not None:
        models["cnn_external"] = _om(
            cnn_onnx(), {"ge.externalWeight": "2", "ge.externalWeightDir": weight_dir}
        )
    return models


def write_seed_corpus(folder: str, weight_dir: str | None = None) -> list[str]:
    """Write the seeds as files into ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, data in seed_models(weight_dir).items():
        path = os.path.join(folder, f"seed_{name}.om")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - manual use: python -m tests.fuzz.seeds DIR
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="openge_seeds_")
    for p in write_seed_corpus(target):
        print(p)
