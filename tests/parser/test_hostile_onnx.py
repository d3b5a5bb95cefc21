"""parse_onnx on malformed and hostile ONNX models: every failure is a GeError naming the node,
initializer or field; nothing outside the model's folder is read; sparse values and generated
data are bounded before allocation; a value with two producers, duplicate outputs, cycles and
missing producers are refused."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.parser import parse_onnx
from openge.runtime.model import Model

from . import hostile_onnx as h

F = TensorProto.FLOAT


def _add_model(init, shape=(2,)):
    return h.model(
        [helper.make_node("Add", ["x", init.name if hasattr(init, "name") else "w"], ["y"])],
        [h.vi("x", list(shape))],
        [h.vi("y", None)],
        [init],
    )


def _raw_tensor(dims, raw=b"", name="w", dtype=F):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def _refused(model, match, **kwargs):
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    with pytest.raises(GeError, match=match):
        parse_onnx(data, **kwargs)


# ----- names that are not UTF-8 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholder", "where"),
    [
        (b"NODEXX", "node #0 name"),
        (b"VALUEX", "node #0 output 0"),
        (b"INITXX", "initializer #0 name"),
        (b"GRAPHX", "ONNX graph name"),
        (b"ATTRXX", "attribute name"),
    ],
)
def test_invalid_utf8_names_are_refused_naming_the_field(placeholder, where):
    node = helper.make_node("Relu", ["x"], ["VALUEX"], name="NODEXX")
    attr = node.attribute.add()
    attr.name, attr.type, attr.i = "ATTRXX", onnx.AttributeProto.INT, 1
    graph = helper.make_graph(
        [node, helper.make_node("Add", ["VALUEX", "INITXX"], ["y"])],
        "GRAPHX",
        [h.vi("x", [2])],
        [h.vi("y", [2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "INITXX")],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = data.SerializeToString().replace(placeholder, b"\xff\xfe" + placeholder[2:])
    _refused(data, f"{where}.*not valid UTF-8")


def test_invalid_utf8_in_a_subgraph_is_refused():
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["SUBOUT"])], "then", [], [h.vi("SUBOUT", [2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [h.vi("e", [2])]
    )
    m = h.model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        [h.vi("x", [2])],
        [h.vi("y", [2])],
        [numpy_helper.from_array(np.array(True), "c")],
    )
    data = m.SerializeToString().replace(b"SUBOUT", b"SU\xc3(UT")
    _refused(data, "attribute then_branch.*not valid UTF-8")


# ----- tensors: dims, stored data --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dims", "match"),
    [
        ([-1], "initializer w: dims \\[-1\\] have a negative dim"),
        ([2, -3], "negative dim"),
        ([1 << 40, 1 << 40], "more bytes than int64 holds"),
        ([3, 1 << 62], "more bytes than int64 holds"),
        ([1 << 61, 4], "more bytes than int64 holds"),
        ([4], "holds 0 element\\(s\\) but dims \\[4\\] need 4"),
    ],
)
def test_initializer_dims_are_checked_before_decoding(dims, match):
    _refused(_add_model(_raw_tensor(dims)), match)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_dims_at_or_past_2_63_read_back_negative_and_are_refused():
    # dims is an int64 field: 2^63 .. 2^64-1 on the wire decode as negative numbers.
    data = _add_model(_raw_tensor([-7])).SerializeToString()
    varint = _varint((1 << 64) - 7)  # how protobuf writes int64 -7: ten bytes
    huge = _varint(1 << 63)  # also ten bytes, so the message lengths stay valid
    assert len(varint) == len(huge) == 10 and data.count(varint) == 1
    _refused(data.replace(varint, huge), "initializer w: dims .* negative dim")


def test_raw_data_not_a_multiple_of_the_element_size_is_refused():
    _refused(_add_model(_raw_tensor([2], raw=b"\0" * 7)), "raw_data has 7 bytes")


def test_typed_field_with_the_wrong_count_is_refused():
    t = numpy_helper.from_array(np.ones(2, np.float32), "w")
    t.ClearField("raw_data")
    t.float_data.extend([1.0, 2.0, 3.0])
    _refused(_add_model(t), "initializer w: holds 3 element\\(s\\) but dims \\[2\\] need 2")


def test_graph_input_whose_bytes_overflow_int64_is_refused():
    m = h.model(
        [helper.make_node("Relu", ["x"], ["y"])], [h.vi("x", [1 << 62, 4])], [h.vi("y", None)]
    )
    _refused(m, "graph input x: .* more bytes than int64 holds")


def test_input_shape_option_past_int64_is_refused():
    m = h.model([helper.make_node("Relu", ["x"], ["y"])], [h.vi("x", ["n"])], [h.vi("y", None)])
    _refused(m, "more bytes than int64 holds", options={"input_shape": f"x:{1 << 70}"})


def test_an_op_whose_output_overflows_int64_is_refused_naming_the_node():
    _refused(h.huge_dims(), "Tile_0 .*output 0 would be .* more bytes than int64 holds")


def test_segmented_tensor_is_refused():
    t = numpy_helper.from_array(np.ones(2, np.float32), "w")
    t.segment.begin, t.segment.end = 0, 1
    _refused(_add_model(t), "segmented tensors are not supported")


# ----- external data ---------------------------------------------------------------------------


def _external_model(tmp_path, dims=(2,), **entries):
    t = _raw_tensor(list(dims))
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "m.onnx"
    path.write_bytes(_add_model(t).SerializeToString())
    return str(path)


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(16, dtype=np.float32).tobytes())
    return tmp_path


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ({"location": "w.bin", "offset": "abc"}, "offset 'abc' is not a non-negative decimal"),
        ({"location": "w.bin", "offset": "-8"}, "offset '-8' is not a non-negative decimal"),
        ({"location": "w.bin", "offset": "1e3"}, "offset '1e3'"),
        ({"location": "w.bin", "length": "-1"}, "length '-1' is not a non-negative decimal"),
        ({"location": "w.bin", "length": "x"}, "length 'x'"),
        ({"location": "w.bin", "length": "4"}, "length 4 differs from the 8 bytes"),
        ({"location": "w.bin", "offset": str(1 << 70)}, "lies past its end"),
        ({"location": "w.bin", "offset": "60"}, "offset 60 \\+ 8 bytes lies past its end"),
        ({"location": "/etc/passwd"}, "must be a relative path inside the model's folder"),
        ({"location": "../w.bin"}, "must be a relative path"),
        ({"location": "sub/../../w.bin"}, "must be a relative path"),
        ({"location": "w.bin\0.txt"}, "must be a relative path"),
        ({"location": ""}, "must be a relative path"),
        ({"location": "."}, "resolves outside the model's folder"),
        ({"location": "missing.bin"}, "cannot be read"),
    ],
)
def test_external_data_fields_are_checked(model_dir, entries, match):
    _refused(_external_model(model_dir, **entries), f"initializer w: .*{match}")


def test_external_data_reads_the_right_bytes(model_dir):
    path = _external_model(model_dir, location="w.bin", offset="8", length="8")
    graph = parse_onnx(path)
    const = next(n for n in graph if n.op_type == "Const")
    np.testing.assert_array_equal(const.attrs["value"].numpy(), [2.0, 3.0])


def test_external_data_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\1" * 64)
    inside = tmp_path / "model"
    inside.mkdir()
    os.symlink(outside / "secret.bin", inside / "w.bin")
    _refused(_external_model(inside, location="w.bin"), "resolves outside the model's folder")


def test_external_data_symlink_inside_the_folder_is_followed(model_dir):
    os.symlink(model_dir / "w.bin", model_dir / "alias.bin")
    graph = parse_onnx(_external_model(model_dir, location="alias.bin"))
    const = next(n for n in graph if n.op_type == "Const")
    np.testing.assert_array_equal(const.attrs["value"].numpy(), [0.0, 1.0])


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_external_data_that_is_not_a_regular_file_is_refused(model_dir, kind):
    target = model_dir / "w2.bin"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    _refused(_external_model(model_dir, location="w2.bin"), "is not a regular file")


@pytest.mark.parametrize("dims", [[-1], [1 << 40, 1 << 40]])
def test_external_data_dims_are_checked_before_mapping(model_dir, dims):
    _refused(_external_model(model_dir, dims=dims, location="w.bin"), "initializer w: dims")


def test_model_path_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    _refused(str(fifo), "does not exist or is not a file")


# ----- sparse tensors --------------------------------------------------------------------------


def test_sparse_constant_matches_the_reference():
    m = h.model(
        [h.sparse_constant(h.sparse([2, 3], [[0, 1], [1, 2]], [5.0, 7.0])),
         helper.make_node("Add", ["x", "c"], ["y"])],
        [h.vi("x", [2, 3])], [h.vi("y", [2, 3])],
    )  # fmt: skip
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with Model(compile_graph(parse_onnx(m))) as model:
        (got,) = model.execute([x])
    expected = x.copy()
    expected[0, 1] += 5.0
    expected[1, 2] += 7.0
    np.testing.assert_array_equal(got, expected)


def test_sparse_initializer_matches_the_reference():
    m = h.model(
        [helper.make_node("Mul", ["x", "s"], ["y"])],
        [h.vi("x", [4])],
        [h.vi("y", [4])],
        sparse=[h.sparse([4], [1, 3], [2.0, 3.0])],
    )
    x = np.array([1, 2, 3, 4], np.float32)
    with Model(compile_graph(parse_onnx(m))) as model:
        (got,) = model.execute([x])
    np.testing.assert_array_equal(got, [0, 4, 0, 12])  # x * [0, 2, 0, 3]


@pytest.mark.parametrize(
    ("dims", "indices", "values", "match"),
    [
        ([1 << 27], [5], [1.0], "536870912 bytes would exceed"),
        ([4], [7], [1.0], "an index lies outside dims \\[4\\]"),
        ([4], [-1], [1.0], "an index lies outside"),
        ([2, 2], [[0, 2]], [1.0], "an index lies outside dims \\[2, 2\\]"),
        ([4], [1 << 40], [1.0], "an index lies outside"),
        ([4], [0, 1], [1.0], "2 indices for 1 values"),
        ([2, 2], [[0, 0, 0]], [1.0], "fit neither"),
        ([-4], [0], [1.0], "negative dim"),
        ([1 << 62, 8], [[0, 0]], [1.0], "more bytes than int64"),
    ],
)
def test_sparse_values_are_checked_before_the_dense_array_exists(dims, indices, values, match):
    constant = h.model(
        [h.sparse_constant(h.sparse(dims, indices, values)),
         helper.make_node("Identity", ["c"], ["y"])],
        [], [h.vi("y", None)],
    )  # fmt: skip
    _refused(constant, f"Constant_0 .*sparse_value.*{match}")
    initializer = h.model(
        [helper.make_node("Identity", ["s"], ["y"])],
        [],
        [h.vi("y", None)],
        sparse=[h.sparse(dims, indices, values)],
    )
    _refused(initializer, f"initializer s.*{match}")


def test_the_generated_bytes_limit_is_an_option():
    m = h.big_sparse_constant()
    _refused(m, "openge.parser.maxGeneratedBytes")
    _refused(m, "write a positive decimal", options={"openge.parser.maxGeneratedBytes": "-1"})


def test_duplicate_initializer_names_are_refused():
    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    m = _add_model(w)
    m.graph.initializer.append(w)
    _refused(m, "initializer 'w' is defined twice")


# ----- graph structure -------------------------------------------------------------------------


def test_a_value_produced_by_two_nodes_is_refused_naming_both():
    m = h.model(
        [helper.make_node("Relu", ["x"], ["y"], name="first"),
         helper.make_node("Neg", ["x"], ["y"], name="second")],
        [h.vi("x", [2])], [h.vi("y", [2])],
    )  # fmt: skip
    _refused(m, "'y' is produced by two nodes, first and second")


def test_a_node_redefining_a_graph_input_or_initializer_is_refused():
    m = h.model(
        [helper.make_node("Relu", ["x"], ["x"], name="r")], [h.vi("x", [2])], [h.vi("x", [2])]
    )
    _refused(m, "ONNX node r outputs 'x', which is already a graph input or initializer")


def test_duplicate_graph_outputs_are_refused():
    m = h.model(
        [helper.make_node("Relu", ["x"], ["y"])], [h.vi("x", [2])], [h.vi("y", [2]), h.vi("y", [2])]
    )
    _refused(m, "lists output 'y' twice \\(outputs #0 and #1\\)")


def test_a_cycle_is_refused_naming_its_nodes():
    m = h.model(
        [helper.make_node("Relu", ["b"], ["a"], name="n1"),
         helper.make_node("Relu", ["a"], ["b"], name="n2"),
         helper.make_node("Relu", ["x"], ["y"], name="ok")],
        [h.vi("x", [2])], [h.vi("y", [2])],
    )  # fmt: skip
    _refused(m, "cycle: 2 node\\(s\\) .*'n1', 'n2'")


def test_a_self_loop_is_refused():
    m = h.model(
        [helper.make_node("Add", ["x", "y"], ["y"], name="self")],
        [h.vi("x", [2])],
        [h.vi("y", [2])],
    )
    _refused(m, "cycle: 1 node\\(s\\).*'self'")


def test_a_missing_producer_is_refused_naming_the_reader():
    m = h.model(
        [helper.make_node("Add", ["x", "nope"], ["y"], name="reader")],
        [h.vi("x", [2])],
        [h.vi("y", [2])],
    )
    _refused(m, "'nope' \\(read by reader\\)")


def test_a_graph_output_nothing_defines_is_refused():
    m = h.model([helper.make_node("Relu", ["x"], ["z"])], [h.vi("x", [2])], [h.vi("y", [2])])
    _refused(m, "graph output 'y': no node, graph input or initializer defines it")


def test_a_subgraph_reading_a_value_produced_later_in_the_file_is_ordered():
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["late"], ["t"])], "then", [], [h.vi("t", [2])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["late"], ["e"])], "else", [], [h.vi("e", [2])]
    )
    m = h.model(
        [
            helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
            helper.make_node("Neg", ["x"], ["late"]),
        ],
        [h.vi("x", [2])],
        [h.vi("y", [2])],
        [numpy_helper.from_array(np.array(True), "c")],
    )
    x = np.array([-1.0, 2.0], np.float32)
    with Model(compile_graph(parse_onnx(m))) as model:
        (got,) = model.execute([x])
    np.testing.assert_array_equal(got, np.maximum(-x, 0))


# ----- expansion limits ------------------------------------------------------------------------


@pytest.mark.parametrize("build", [h.loop_unroll, h.lstm_long_sequence])
def test_expansion_past_the_node_limit_is_refused(build):
    _refused(build(), "more than 50000 graph nodes .*openge.parser.maxNodes")


def test_the_node_limit_is_an_option():
    m = h.chain(30)
    _refused(m, "more than 10 graph nodes", options={"openge.parser.maxNodes": "10"})
    assert len(parse_onnx(m, {"openge.parser.maxNodes": "100"})) == 31


def test_parse_time_values_past_the_budget_are_left_to_run_time():
    m = h.parse_time_values(200)
    graph = parse_onnx(m, {"openge.parser.maxGeneratedBytes": str(4 << 20)})
    with Model(compile_graph(graph)) as model:
        (got,) = model.execute([])
    np.testing.assert_array_equal(got, np.full(65536, 201, np.int64))


# ----- fuzz findings (each was an uncaught exception) ------------------------------------------


def test_cast_without_to_is_refused():
    m = h.model([helper.make_node("Cast", ["x"], ["y"])], [h.vi("x", [2])], [h.vi("y", [2])])
    _refused(m, "Cast_0 .*attribute to: None is not an ONNX element type")


def test_group_normalization_on_a_rank_1_input_is_refused_naming_the_node():
    m = h.model(
        [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)],
        [h.vi("x", [4]), h.vi("s", [4]), h.vi("b", [4])],
        [h.vi("y", [4])],
        opset=21,
    )
    _refused(m, "GroupNormalization_0 .*cannot convert this node")


def test_max_pool_indices_with_huge_pads_are_refused_before_allocating():
    m = h.model(
        [
            helper.make_node(
                "MaxPool", ["x"], ["y", "i"], kernel_shape=[1, 5], pads=[10**8, 2, 2, 2]
            )
        ],
        [h.vi("x", [1, 1, 5, 5])],
        [h.vi("y", None), h.vi("i", None, TensorProto.INT64)],
        opset=22,
    )
    _refused(m, "MaxPool_0 .*MaxPool index constants: .* bytes would exceed")


@pytest.mark.parametrize(
    ("op", "attrs", "opset"),
    [
        ("Trilu", {}, 14),
        ("EyeLike", {}, 9),
        ("IsInf", {"detect_positive": 0, "detect_negative": 0}, 20),
    ],
)
def test_constants_built_from_a_huge_input_shape_are_refused_before_allocating(op, attrs, opset):
    m = h.model(
        [helper.make_node(op, ["x"], ["y"], **attrs)],
        [h.vi("x", [1 << 31, 5], TensorProto.FLOAT)],
        [h.vi("y", None)],
        opset=opset,
    )
    _refused(m, f"{op}_0 .*bytes would exceed")


@pytest.mark.parametrize("op", ["GRU", "LSTM", "RNN"])
def test_a_recurrence_over_2_31_steps_is_refused_before_unrolling(op):
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    rng = np.random.default_rng(0)
    w = [
        numpy_helper.from_array(rng.normal(size=(1, gates * 3, 3)).astype(np.float32), n)
        for n in ("W", "R")
    ]
    m = h.model(
        [helper.make_node(op, ["x", "W", "R"], ["", "y"], hidden_size=3)],
        [h.vi("x", [(1 << 31) - 1, 3, 3])],
        [h.vi("y", None)],
        w,
    )
    _refused(m, f"{op}_0 .*more than 50000 graph nodes")


def test_lp_pool_with_a_huge_kernel_is_refused_before_building_its_filter():
    m = h.model(
        [helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[1, 10**8], pads=[0, 0, 0, 10**8])],
        [h.vi("x", [1, 3, 32, 32])],
        [h.vi("y", None)],
        opset=22,
    )
    _refused(m, "LpPool_0 .*the LpPool filter: .* bytes would exceed")


def test_grouped_heads_past_the_budget_are_refused_before_building_indices():
    q = helper.make_tensor_value_info("q", F, [1, 1 << 31, 3, 4])
    kv = [helper.make_tensor_value_info(n, F, [1, 2, 3, 4]) for n in ("k", "v")]
    m = helper.make_model(
        helper.make_graph(
            [helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview")],
            "flex",
            [q, *kv],
            [h.vi("y", None)],
        ),
        opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("ai.onnx.preview", 1)],
    )
    _refused(m, "FlexAttention_0 .*the head indices: .* bytes would exceed")


@pytest.mark.parametrize(
    ("shape", "kernel", "match"),
    [
        ([1, 1, 5, 5], [2, -3], "kernel_shape \\[2, -3\\] must be positive"),
        ([0, 1, 1 << 31, 5], [2, 2], "MaxPool index constants: .* bytes would exceed"),
    ],
)
def test_max_pool_indices_with_bad_kernels_or_huge_inputs_are_refused(shape, kernel, match):
    m = h.model(
        [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=kernel, storage_order=1)],
        [h.vi("x", shape)],
        [h.vi("y", None), h.vi("i", None, TensorProto.INT64)],
        opset=22,
    )
    _refused(m, f"MaxPool_0 .*{match}")


def test_reverse_sequence_over_a_huge_input_is_refused_before_allocating():
    m = h.model(
        [helper.make_node("ReverseSequence", ["x", "lens"], ["y"], time_axis=0, batch_axis=1)],
        [h.vi("x", [(1 << 31) - 1, 4])],
        [h.vi("y", None)],
        [h.i64("lens", [1, 2, 3, 4])],
    )
    _refused(m, "ReverseSequence_0 .*the reversal indices: .* bytes would exceed")
