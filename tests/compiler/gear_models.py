"""An ONNX CNN with symbolic batch, height and width, and helpers to compile it statically or
with gears (one parse per gear, as ``openge atc`` does)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from openge.compiler import compile_graph
from openge.compiler.gears import gear_spec
from openge.compiler.multi_batch import compile_gears
from openge.om.plan import CompiledModel
from openge.om.writer import serialize
from openge.parser import parse_onnx
from openge.runtime import Model


def write_cnn(path: Path, channels: int = 128) -> Path:
    """conv-relu-pool-conv-relu-globalpool-flatten-gemm; ``channels`` sets the weight size
    (128: about 0.6 MB of weights, so per-gear metadata is small beside them)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...], scale: float) -> object:
        return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)

    c1, c2 = channels // 2, channels * 2
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [
        init("w1", (c1, 3, 3, 3), 0.3),
        init("b1", (c1,), 0.1),
        init("w2", (c2, c1, 3, 3), 0.05),
        init("b2", (c2,), 0.1),
        init("wf", (10, c2), 0.1),
        init("bf", (10,), 0.1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])
    graph = helper.make_graph(nodes, "cnn", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def shape_text(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ";".join(f"{name}:{','.join(map(str, dims))}" for name, dims in shapes.items())


def compile_static(path: Path, shape: tuple[int, ...]) -> CompiledModel:
    """The static compile of the CNN at one input shape."""
    return compile_graph(parse_onnx(str(path), {"input_shape": shape_text({"x": shape})}), {})


def compile_with_gears(path: Path, options: dict[str, str]) -> CompiledModel:
    """The gear model of the CNN (``options``: ge.inputShape + one gear option)."""
    spec = gear_spec(options)
    assert spec is not None

    def make(_: int, shapes: Mapping[str, tuple[int, ...]]):
        return parse_onnx(str(path), {"input_shape": shape_text(shapes)})

    return compile_gears(spec, options, make, compile_graph)


def load(model: CompiledModel) -> Model:
    """The model loaded from its offline .om bytes (the path a saved model takes)."""
    return Model.from_bytes(serialize(model, online=False))
