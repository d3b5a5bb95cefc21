"""Seed ONNX models for the parse_onnx fuzz harness, built at run time (nothing binary committed).

``small_models()`` builds small graphs covering what real networks contain (initializers,
Conv/BN/pooling/Gemm, shape arithmetic, ConstantOfShape/Expand/Tile/Range, If/Loop subgraphs,
sparse constants, LSTM, casts and comparisons). ``write_corpus(folder, full)`` writes them, and
the onnx package's model files (``full``: also every node test case of onnx's backend suite).
"""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def _model(nodes, inputs, outputs, inits=(), opset=17, sparse=()):
    graph = helper.make_graph(nodes, "seed", inputs, outputs, initializer=list(inits))
    graph.sparse_initializer.extend(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def _w(rng, name, *shape):
    return numpy_helper.from_array(rng.normal(0, 0.2, shape).astype(np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _sparse(dims, indices, values, name):
    sp = onnx.SparseTensorProto()
    sp.dims.extend(dims)
    sp.values.CopyFrom(numpy_helper.from_array(np.array(values, np.float32), name))
    sp.indices.CopyFrom(numpy_helper.from_array(np.array(indices, np.int64), name + "_idx"))
    return sp


def small_models() -> dict[str, onnx.ModelProto]:
    """Name → a small ONNX model (each parses and compiles with openge)."""
    rng = np.random.default_rng(0)
    models: dict[str, onnx.ModelProto] = {}
    models["chain"] = _model(
        [helper.make_node(op, [f"v{i}"], [f"v{i + 1}"]) for i, op in enumerate(
            ["Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Exp"])],
        [_vi("v0", [2, 3])], [_vi("v6", [2, 3])],
    )  # fmt: skip
    models["mlp"] = _model(
        [
            helper.make_node("MatMul", ["x", "w1"], ["m1"]),
            helper.make_node("Add", ["m1", "b1"], ["a1"]),
            helper.make_node("Relu", ["a1"], ["r1"]),
            helper.make_node("Gemm", ["r1", "w2", "b2"], ["y"], transB=1),
        ],
        [_vi("x", [4, 8])],
        [_vi("y", [4, 3])],
        [_w(rng, "w1", 8, 16), _w(rng, "b1", 16), _w(rng, "w2", 3, 16), _w(rng, "b2", 3)],
    )
    models["cnn"] = _model(
        [
            helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node(
                "BatchNormalization", ["c", "s", "bb", "mean", "var"], ["bn"], epsilon=1e-5
            ),
            helper.make_node("Relu", ["bn"], ["r"]),
            helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("GlobalAveragePool", ["p"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Softmax", ["f"], ["y"], axis=-1),
        ],
        [_vi("x", [1, 3, 8, 8])],
        [_vi("y", [1, 4])],
        [
            _w(rng, "cw", 4, 3, 3, 3),
            _w(rng, "cb", 4),
            _w(rng, "s", 4),
            _w(rng, "bb", 4),
            _w(rng, "mean", 4),
            numpy_helper.from_array(np.ones(4, np.float32), "var"),
        ],
    )
    models["shape_arith"] = _model(
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["d0"], axis=0),
            helper.make_node("Unsqueeze", ["d0", "zero1"], ["d0u"]),
            helper.make_node("Concat", ["d0u", "minus1"], ["shape"], axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
        ],
        [_vi("x", [2, 3, 4])],
        [_vi("y", [2, 12])],
        [_i64("zero", 0), _i64("zero1", [0]), _i64("minus1", [-1])],
    )
    models["generators"] = _model(
        [
            helper.make_node(
                "ConstantOfShape",
                ["dims"],
                ["c"],
                value=numpy_helper.from_array(np.array([0.5], np.float32)),
            ),
            helper.make_node("Expand", ["x", "dims"], ["e"]),
            helper.make_node("Tile", ["x", "reps"], ["t"]),
            helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
            helper.make_node("Add", ["c", "e"], ["a"]),
            helper.make_node("Concat", ["a", "t"], ["y"], axis=1),
        ],
        [_vi("x", [1, 4])],
        [_vi("y", [3, 8]), _vi("r", [5], I64)],
        [_i64("dims", [3, 4]), _i64("reps", [3, 1]), _i64("start", 0), _i64("limit", 5),
         _i64("delta", 1)],
    )  # fmt: skip
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])], "then", [], [_vi("t", [2, 2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", [2, 2])]
    )
    models["if"] = _model(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        [_vi("x", [2, 2])],
        [_vi("y", [2, 2])],
        [numpy_helper.from_array(np.array(True), "cond")],
    )
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c_in"], ["c_out"]),
            helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
        ],
        "body",
        [_vi("i", [], I64), _vi("c_in", [], TensorProto.BOOL), _vi("acc_in", [2])],
        [_vi("c_out", [], TensorProto.BOOL), _vi("acc_out", [2])],
    )
    models["loop"] = _model(
        [helper.make_node("Loop", ["trip", "", "acc0"], ["y"], body=body)],
        [_vi("x", [2]), _vi("acc0", [2])],
        [_vi("y", [2])],
        [_i64("trip", 3)],
    )
    constant = helper.make_node("Constant", [], ["c"])
    attr = constant.attribute.add()
    attr.name = "sparse_value"
    attr.type = onnx.AttributeProto.SPARSE_TENSOR
    attr.sparse_tensor.CopyFrom(_sparse([2, 3], [1, 4], [5.0, 7.0], "c"))
    models["sparse"] = _model(
        [constant, helper.make_node("Add", ["x", "c"], ["a"]),
         helper.make_node("Mul", ["a", "sw"], ["y"])],
        [_vi("x", [2, 3])], [_vi("y", [2, 3])],
        sparse=[_sparse([2, 3], [[0, 0], [1, 2]], [2.0, 3.0], "sw")],
    )  # fmt: skip
    models["lstm"] = _model(
        [helper.make_node("LSTM", ["x", "W", "R", "B"], ["", "y"], hidden_size=3)],
        [_vi("x", [2, 1, 4])],
        [_vi("y", [1, 1, 3])],
        [_w(rng, "W", 1, 12, 4), _w(rng, "R", 1, 12, 3), _w(rng, "B", 1, 24)],
    )
    models["logic"] = _model(
        [
            helper.make_node("Cast", ["x"], ["xi"], to=I64),
            helper.make_node("Equal", ["xi", "k"], ["eq"]),
            helper.make_node("Where", ["eq", "x", "z"], ["w"]),
            helper.make_node("ReduceMean", ["w", "ax"], ["m"], keepdims=0),
            helper.make_node("Transpose", ["x"], ["tr"], perm=[1, 0]),
            helper.make_node("Split", ["tr"], ["s0", "s1"], axis=0, num_outputs=2),
            helper.make_node("Slice", ["x", "st", "en"], ["sl"]),
        ],
        [_vi("x", [2, 4])],
        [_vi("m", [2]), _vi("s0", [2, 2]), _vi("sl", [1, 2])],
        [_i64("k", 1), numpy_helper.from_array(np.zeros((2, 4), np.float32), "z"),
         _i64("st", [0, 1]), _i64("en", [1, 3]), _i64("ax", [1])],
        opset=18,
    )  # fmt: skip
    models["layernorm"] = _model(
        [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
        [_vi("x", [2, 8])],
        [_vi("y", [2, 8])],
        [_w(rng, "g", 8), _w(rng, "b", 8)],
    )
    return models


def _package_models(max_bytes: int) -> list[str]:
    """The onnx package's model files (light and backend data folders) up to ``max_bytes``."""
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    found = sorted(glob.glob(os.path.join(root, "*", "*", "model.onnx")))
    found += sorted(glob.glob(os.path.join(root, "light", "*.onnx")))
    return [p for p in found if os.path.getsize(p) <= max_bytes]


def node_case_models() -> list[tuple[str, bytes]]:
    """Every node test case of the installed onnx backend suite, serialized."""
    import onnx.backend.test.case.node as node_mod

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_mod.collect_testcases()
    return [(c.name, c.model.SerializeToString()) for c in cases]


def write_corpus(folder: str, full: bool = False) -> int:
    """Write the seeds into ``folder`` (one file each); returns how many were written."""
    os.makedirs(folder, exist_ok=True)
    count = 0
    items: list[tuple[str, bytes]] = [
        (f"gen_{name}", m.SerializeToString()) for name, m in small_models().items()
    ]
    for path in _package_models(64 << 10 if full else 16 << 10):
        with open(path, "rb") as f:
            items.append((os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path),
                          f.read()))  # fmt: skip
    if full:
        items += [(f"node_{name}", data) for name, data in node_case_models()]
    for name, data in items:
        with open(os.path.join(folder, name.replace("/", "_") + ".onnx"), "wb") as f:
            f.write(data)
        count += 1
    return count


__all__ = ["node_case_models", "small_models", "write_corpus"]
