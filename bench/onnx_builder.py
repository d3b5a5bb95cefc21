"""A small helper to build benchmark ONNX models with onnx.helper and seeded weights."""

from __future__ import annotations

import zlib

import numpy as np


def seed(name: str) -> int:
    """A model's weight seed (stable across runs)."""
    return zlib.crc32(name.encode())


class Builder:
    """Collects nodes and initializers for onnx.helper.make_graph."""

    def __init__(self, rng) -> None:
        self.rng = rng
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def dense(self, x: str, din: int, dout: int, scale: float | None = None) -> str:
        std = scale if scale is not None else din**-0.5
        w = self.const("w", self.rng.normal(0.0, std, (din, dout)).astype(np.float32))
        b = self.const("b", self.rng.normal(0.0, 0.02, dout).astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])


def finish(builder: Builder, name: str, x, y, opset: int):
    import onnx
    from onnx import helper

    graph = helper.make_graph(builder.nodes, name, [x], [y], builder.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="openge-bench"
    )
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model
