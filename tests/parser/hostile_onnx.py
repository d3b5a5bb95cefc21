"""Hostile ONNX models (each under 1 MB serialized) built with onnx.helper for the parser tests.

Each builder returns a ModelProto. They ask for far more than their size: huge or overflowing
dims, sparse tensors of 2^27 elements, unrolled loops of millions of nodes, long chains listed
in reverse, parse-time values that add up to gigabytes, repeated names, deep nesting.
"""

from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def model(nodes, inputs, outputs, inits=(), opset=17, sparse=()) -> onnx.ModelProto:
    """A model of one graph (ir_version 8)."""
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(inits))
    graph.sparse_initializer.extend(sparse)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, shape, dtype=F):
    """A tensor value info."""
    return helper.make_tensor_value_info(name, dtype, shape)


def i64(name, values):
    """An int64 initializer."""
    return numpy_helper.from_array(np.array(values, np.int64), name)


def sparse(dims, indices, values, name="s") -> onnx.SparseTensorProto:
    """A SparseTensorProto (float values, int64 indices), unchecked."""
    sp = onnx.SparseTensorProto()
    sp.dims.extend(dims)
    sp.values.CopyFrom(numpy_helper.from_array(np.array(values, np.float32), name))
    sp.indices.CopyFrom(numpy_helper.from_array(np.array(indices, np.int64), name + "_i"))
    return sp


def sparse_constant(sp: onnx.SparseTensorProto, out: str = "c") -> onnx.NodeProto:
    """A Constant node whose value is ``sp``."""
    node = helper.make_node("Constant", [], [out])
    attr = node.attribute.add()
    attr.name = "sparse_value"
    attr.type = onnx.AttributeProto.SPARSE_TENSOR
    attr.sparse_tensor.CopyFrom(sp)
    return node


def chain(n: int, order: str = "forward", op: str = "Relu", named: bool = False):
    """``n`` unary nodes x → v1 → ... → y, listed forward, reversed or shuffled."""
    nodes = []
    for i in range(n):
        node = onnx.NodeProto()
        node.op_type = op
        node.input.append(f"v{i:x}" if i else "x")
        node.output.append(f"v{i + 1:x}" if i < n - 1 else "y")
        if named:
            node.name = "same"
        nodes.append(node)
    if order == "reverse":
        nodes.reverse()
    elif order == "shuffle":
        random.Random(0).shuffle(nodes)
    return model(nodes, [vi("x", [2])], [vi("y", [2])])


def constant_of_shape(count: int = 10**8, copies: int = 3):
    """``copies`` ConstantOfShape outputs of ``count`` float32 elements (a few hundred bytes)."""
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["s"],
            [f"c{i}"],
            value=numpy_helper.from_array(np.array([1.0 + i], np.float32)),
        )
        for i in range(copies)
    ]
    return model(nodes, [], [vi(f"c{i}", [count]) for i in range(copies)], [i64("s", [count])])


def generators(count: int = 10**8):
    """Expand, Tile and Range each asked for ``count`` elements from a few bytes."""
    nodes = [
        helper.make_node("Expand", ["one", "s"], ["e"]),
        helper.make_node("Tile", ["one", "s"], ["t"]),
        helper.make_node("Range", ["zero", "n", "step"], ["r"]),
    ]
    inits = [
        numpy_helper.from_array(np.ones(1, np.float32), "one"),
        i64("s", [count]),
        i64("zero", 0),
        i64("n", count),
        i64("step", 1),
    ]
    return model(nodes, [], [vi("e", [count]), vi("t", [count]), vi("r", [count], I64)], inits)


def big_sparse_constant():
    """A ~100-byte sparse Constant whose dense value is 2^27 float32 (512 MB)."""
    return model(
        [
            sparse_constant(sparse([1 << 27], [5], [1.0])),
            helper.make_node("Identity", ["c"], ["y"]),
        ],
        [],
        [vi("y", [1 << 27])],
    )


def loop_unroll(trip: int = 4096, body_nodes: int = 200):
    """A Loop of ``trip`` iterations over a body of ``body_nodes`` Relus (unrolled by openge)."""
    body = [helper.make_node("Identity", ["c_in"], ["c_out"])]
    prev = "a_in"
    for k in range(body_nodes):
        out = "a_out" if k == body_nodes - 1 else f"b{k}"
        body.append(helper.make_node("Relu", [prev], [out]))
        prev = out
    g = helper.make_graph(
        body,
        "body",
        [vi("i", [], I64), vi("c_in", [], TensorProto.BOOL), vi("a_in", [2])],
        [vi("c_out", [], TensorProto.BOOL), vi("a_out", [2])],
    )
    return model(
        [helper.make_node("Loop", ["trip", "", "x"], ["y"], body=g)],
        [vi("x", [2])],
        [vi("y", [2])],
        [i64("trip", trip)],
    )


def nested_loops(depth: int = 3, trip: int = 4096):
    """Loops nested ``depth`` deep, each of ``trip`` iterations (trip^depth unrolled bodies)."""
    inner = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Relu", ["a"], ["b"])],
        "inner",
        [vi("i", [], I64), vi("c_in", [], TensorProto.BOOL), vi("a", [2])],
        [vi("c_out", [], TensorProto.BOOL), vi("b", [2])],
    )
    for level in range(depth - 1):
        inner = helper.make_graph(
            [
                helper.make_node("Identity", ["c_in"], ["c_out"]),
                helper.make_node("Loop", [f"trip{level}", "", "a"], ["b"], body=inner),
            ],
            f"outer{level}",
            [vi("i", [], I64), vi("c_in", [], TensorProto.BOOL), vi("a", [2])],
            [vi("c_out", [], TensorProto.BOOL), vi("b", [2])],
        )
    inits = [i64("trip", trip)] + [i64(f"trip{k}", trip) for k in range(depth - 1)]
    return model(
        [helper.make_node("Loop", ["trip", "", "x"], ["y"], body=inner)],
        [vi("x", [2])],
        [vi("y", [2])],
        inits,
    )


def parse_time_values(n: int = 20_000):
    """``n`` Adds of a 65536-element int64 constant: each result could be computed at parse
    time (512 KB each, 10 GB in all)."""
    nodes = [helper.make_node("Expand", ["one", "s"], ["v0"])]
    nodes += [helper.make_node("Add", [f"v{k:x}", "one"], [f"v{k + 1:x}"]) for k in range(n)]
    return model(nodes, [], [vi(f"v{n:x}", [65536], I64)], [i64("one", [1]), i64("s", [65536])])


def lstm_long_sequence(steps: int = 200_000):
    """An LSTM over a ``steps``-long sequence (openge unrolls it step by step)."""
    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
         for n, s in (("W", (1, 8, 2)), ("R", (1, 8, 2)))]  # fmt: skip
    return model(
        [helper.make_node("LSTM", ["x", "W", "R"], ["", "y"], hidden_size=2)],
        [vi("x", [steps, 1, 2])],
        [vi("y", [1, 1, 2])],
        w,
    )


def huge_dims():
    """An input whose dims overflow int64 bytes, and a Tile that makes one."""
    return model(
        [helper.make_node("Tile", ["x", "reps"], ["y"])],
        [vi("x", [1 << 40])],
        [vi("y", None)],
        [i64("reps", [1 << 40])],
    )


def nested_ifs(depth: int = 30):
    """If nodes nested ``depth`` deep (protobuf caps nesting near 100 messages)."""
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "leaf", [], [vi("r", [2])])
    leaf = inner
    for k in range(depth):
        inner = helper.make_graph(
            [helper.make_node("If", ["cond"], [f"o{k}"], then_branch=inner, else_branch=leaf)],
            f"level{k}",
            [],
            [vi(f"o{k}", [2])],
        )
    return model(
        [helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=leaf)],
        [vi("x", [2])],
        [vi("y", [2])],
        [numpy_helper.from_array(np.array(True), "cond")],
    )


def wide_fan_out(n: int = 40_000):
    """``n`` nodes reading one value, all feeding a Sum (many edges, one huge node)."""
    nodes = [helper.make_node("Relu", ["x"], [f"r{k:x}"]) for k in range(n)]
    nodes.append(helper.make_node("Sum", [f"r{k:x}" for k in range(n)], ["y"]))
    nodes.reverse()
    return model(nodes, [vi("x", [2])], [vi("y", [2])])


#: Name → builder of every hostile model the resource tests run.
HOSTILE = {
    "chain_reverse_40k": lambda: chain(40_000, "reverse"),
    "chain_shuffled_40k": lambda: chain(40_000, "shuffle"),
    "same_names_30k": lambda: chain(30_000, "forward", named=True),
    "constant_of_shape_1e8": constant_of_shape,
    "generators_1e8": generators,
    "big_sparse_constant": big_sparse_constant,
    "loop_unroll": loop_unroll,
    "nested_loops": nested_loops,
    "parse_time_values": parse_time_values,
    "lstm_long_sequence": lstm_long_sequence,
    "huge_dims": huge_dims,
    "nested_ifs": nested_ifs,
    "wide_fan_out": wide_fan_out,
}
