"""Small ONNX models for the batch-inference tests, compiled with openge (seeded weights)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from openge.offline_compile import build_finalize, build_initialize, build_model
from openge.parser import parse_onnx


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def mlp_onnx(
    batch: int | str = 64, din: int = 16, hidden: int = 32, dout: int = 4
) -> onnx.ModelProto:
    """x[batch, din] → Gemm → Relu → Gemm → Softmax."""
    rng = np.random.default_rng(7)
    inits = [
        _init("w1", rng.normal(0, 0.3, (din, hidden))),
        _init("b1", rng.normal(0, 0.1, (hidden,))),
        _init("w2", rng.normal(0, 0.3, (hidden, dout))),
        _init("b2", rng.normal(0, 0.1, (dout,))),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, din])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [batch, dout])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def cnn_onnx(batch: int | str = 8) -> onnx.ModelProto:
    """img[batch, 3, 16, 16] → Conv 3x3 → Relu → MaxPool → Conv → GlobalAveragePool → Flatten."""
    rng = np.random.default_rng(11)
    inits = [
        _init("k1", rng.normal(0, 0.3, (8, 3, 3, 3))),
        _init("c1", rng.normal(0, 0.1, (8,))),
        _init("k2", rng.normal(0, 0.2, (10, 8, 3, 3))),
        _init("c2", rng.normal(0, 0.1, (10,))),
    ]
    nodes = [
        helper.make_node("Conv", ["img", "k1", "c1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("MaxPool", ["b"], ["c"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["c", "k2", "c2"], ["d"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["d"], ["e"]),
        helper.make_node("Flatten", ["e"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def compile_onnx(
    model: onnx.ModelProto,
    options: Mapping[str, str] | None = None,
    parse_options: Mapping[str, str] | None = None,
) -> bytes:
    """The model parsed (``parse_options``) and compiled (``options``) by openge, as .om bytes."""
    build_initialize({})
    try:
        graph = parse_onnx(model, dict(parse_options or {}))
        return bytes(build_model(graph, dict(options or {})).data)
    finally:
        build_finalize()


def loop_reference(om: bytes, x: np.ndarray, batch: int) -> np.ndarray:
    """Single-process scoring: consecutive runs of ``batch`` rows, the last one zero-padded."""
    from openge.runtime import Model

    outs = []
    with Model.from_bytes(om) as model:
        for start in range(0, len(x), batch):
            part = x[start : start + batch]
            padded = np.zeros((batch, *x.shape[1:]), x.dtype)
            padded[: len(part)] = part
            outs.append(model.execute([padded])[0][: len(part)].copy())
    return np.concatenate(outs)


def batches_reference(om: bytes, x: np.ndarray, rows: int, batch: int) -> np.ndarray:
    """:func:`loop_reference` over each run of ``rows`` rows on its own: what the actors score
    when Ray hands them batches of ``rows`` rows, each run ``batch`` rows at a time from its
    start. A row's bits can depend on its position in a product: numpy's OpenBLAS with its
    Haswell kernels (AVX2 machines) gave 268 of the 2048 outputs of a 64×16 @ 16×32 product
    other bits once the rows were rolled by two, so the reference must cut the rows where
    the actors do."""
    return np.concatenate(
        [loop_reference(om, x[s : s + rows], batch) for s in range(0, len(x), rows)]
    )
