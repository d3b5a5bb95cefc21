"""Dynamic-shape models: -1 dims and ranges, run-time shape inputs, data-dependent outputs, the
plan cache, and the limits that turn bad input into a GeError."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError, Status
from openge.graph import DataType, Graph
from openge.graph.shape_range import parse_shape_ranges
from openge.om import container as ct
from openge.om.writer import serialize
from openge.runtime.model import Model
from tests.conftest import const, data


def _relu_graph(shape=(-1, 3)) -> Graph:
    g = Graph("dyn_relu")
    x = data(g, 0, shape, name="x")
    g.set_outputs([g.add_node("Relu", [x.output(0)]).output(0)])
    return g


def _load(compiled) -> Model:
    return Model.from_bytes(serialize(compiled, online=True))


def _reshape_graph() -> Graph:
    """y = Reshape(x * 2, shape) with ``shape`` a run-time input."""
    g = Graph("dyn_reshape")
    x = data(g, 0, (2, 6), name="x")
    s = data(g, 1, (2,), DataType.DT_INT64, name="shape")
    two = const(g, np.float32(2), name="two")
    m = g.add_node("Mul", [x.output(0), two.output(0)])
    g.set_outputs([g.add_node("Reshape", [m.output(0), s.output(0)]).output(0)])
    return g


# ----- input shapes with ranges -------------------------------------------------------------


def test_parse_shape_ranges():
    parsed = parse_shape_ranges("x:1~8,3,224,224;ids:-1,-1;s:")
    assert parsed["x"] == ((-1, 3, 224, 224), ((1, 8), (3, 3), (224, 224), (224, 224)))
    assert parsed["ids"] == ((-1, -1), ((0, -1), (0, -1)))
    assert parsed["s"] == ((), ())
    assert parse_shape_ranges("x:2~-1")["x"] == ((-1,), ((2, -1),))
    for bad, match in [("x:8~1", "lo ≤ hi"), ("x:a", "not a number"), ("x:1;x:2", "twice")]:
        with pytest.raises(GeError, match=match):
            parse_shape_ranges(bad)


def test_dynamic_model_reports_dims_and_ranges_after_a_round_trip():
    compiled = compile_graph(_relu_graph(), {"ge.inputShape": "x:1~4,3"})
    assert compiled.is_dynamic and not compiled.tasks
    data_bytes = serialize(compiled, online=True)
    assert ct.parse_container(data_bytes).header.is_unknow_model == 1
    model = Model.from_bytes(data_bytes)
    assert model.compiled.is_dynamic
    assert model.inputs[0].shape == (-1, 3)
    assert model.inputs[0].range == ((1, 4), (3, 3))
    assert model.outputs[0].shape == (-1, 3)


def test_outputs_have_the_actual_shapes_at_every_shape():
    model = _load(compile_graph(_relu_graph(), {"ge.inputShape": "x:1~8,3"}))
    for n in (1, 8, 3, 1):
        x = np.linspace(-2, 2, n * 3, dtype=np.float32).reshape(n, 3)
        (y,) = model.execute([x])
        assert y.shape == (n, 3)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    stats = model.dynamic.stats()
    assert stats["plans_made"] == 3 and stats["cache_hits"] == 1


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((9, 3), r"input x: dim 0 is 9, outside its range \[1, 8\]"),
        ((0, 3), r"input x: dim 0 is 0, outside its range \[1, 8\]"),
        ((2, 4), r"input x: dim 1 is 4, outside its range \[3, 3\]"),
        ((2, 3, 1), r"input x: rank 3 .* rank 2"),
    ],
)
def test_shape_outside_the_range_or_wrong_rank_is_refused(shape, match):
    model = _load(compile_graph(_relu_graph(), {"ge.inputShape": "x:1~8,3"}))
    with pytest.raises(GeError, match=match) as err:
        model.execute([np.zeros(shape, np.float32)])
    assert err.value.code == Status.ACL_ERROR_GE_SHAPE_INVALID


def test_unbounded_dims_accept_any_size():
    model = Model(compile_graph(_relu_graph()))
    assert model.inputs[0].range == ((0, -1), (3, 3))
    (y,) = model.execute([np.ones((40, 3), np.float32)])
    assert y.shape == (40, 3)


def test_static_graphs_stay_static():
    compiled = compile_graph(_relu_graph((2, 3)))
    assert not compiled.is_dynamic and compiled.tasks
    assert Model(compiled).dynamic is None


# ----- values that decide shapes ------------------------------------------------------------


def test_shape_input_fed_at_run_time():
    model = _load(compile_graph(_reshape_graph()))
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    for shape in ([3, 4], [4, 3], [12, 1], [3, 4]):
        (y,) = model.execute([x, np.array(shape, np.int64)])
        np.testing.assert_array_equal(y, (x * 2).reshape(shape))
    stats = model.dynamic.stats()
    assert stats["value_inputs"] == ["shape"]
    assert stats["plans_made"] == 3 and stats["cache_hits"] == 1


def test_bad_shape_value_is_a_clean_error():
    model = _load(compile_graph(_reshape_graph()))
    with pytest.raises(GeError):
        model.execute([np.zeros((2, 6), np.float32), np.array([5, 5], np.int64)])


def test_plan_cache_is_bounded_lru(caplog):
    compiled = compile_graph(_relu_graph(), {"openge.dynamic.planCacheSize": "2"})
    model = Model(compiled)
    with caplog.at_level(logging.INFO, logger="openge.runtime.dynamic"):
        for n in (1, 2, 3, 1):  # 1 was evicted by 3: planned again
            model.execute([np.ones((n, 3), np.float32)])
    stats = model.dynamic.stats()
    assert stats["cached"] == 2 and stats["plans_made"] == 4
    assert model.dynamic.last_plan_seconds > 0
    assert sum("planned in" in r.getMessage() for r in caplog.records) == 4


def test_bad_cache_option_is_refused():
    compiled = compile_graph(_relu_graph(), {"openge.dynamic.planCacheSize": "0"})
    with pytest.raises(GeError, match="planCacheSize"):
        Model(compiled)


# ----- data-dependent outputs ---------------------------------------------------------------


def _nonzero_graph(n: int) -> Graph:
    """NonZero(x > 0): the count depends on the data computed in the graph."""
    g = Graph("nz")
    x = data(g, 0, (n,), name="x")
    zero = const(g, np.float32(0), name="zero")
    gt = g.add_node("Greater", [x.output(0), zero.output(0)])
    g.set_outputs([g.add_node("NonZero", [gt.output(0)]).output(0)])
    return g


def test_data_dependent_output_computed_in_the_graph():
    model = _load(compile_graph(_nonzero_graph(200)))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=200).astype(np.float32)
        (y,) = model.execute([x])
        np.testing.assert_array_equal(y, np.array(np.nonzero(x > 0)))
    assert model.dynamic.stats()["interpreted_runs"] == 3


def test_data_dependent_output_above_the_limit_is_refused():
    compiled = compile_graph(_nonzero_graph(4096), {"openge.dynamic.memoryLimit": "20000"})
    model = Model(compiled)
    (y,) = model.execute([-np.ones(4096, np.float32)])  # nothing selected: fits
    assert y.shape == (1, 0)
    with pytest.raises(GeError, match="above the limit of 20000 bytes") as err:
        model.execute([np.ones(4096, np.float32)])  # 4096 int64 indices + the mask > 20000
    assert err.value.code == Status.ACL_ERROR_GE_MEMORY_ALLOCATION


def test_planned_memory_above_the_limit_is_refused():
    compiled = compile_graph(_relu_graph(), {"openge.dynamic.memoryLimit": "4096"})
    model = Model(compiled)
    model.execute([np.ones((10, 3), np.float32)])
    with pytest.raises(GeError, match="above the limit of 4096 bytes") as err:
        model.execute([np.ones((1000, 3), np.float32)])
    assert err.value.code == Status.ACL_ERROR_GE_MEMORY_ALLOCATION


def test_huge_shape_value_is_refused_before_allocating():
    g = Graph("fill")
    s = data(g, 0, (2,), DataType.DT_INT64, name="shape")
    g.set_outputs([g.add_node("Fill", [s.output(0), const(g, np.float32(1)).output(0)]).output(0)])
    model = Model(compile_graph(g))
    with pytest.raises(GeError, match="above the limit") as err:
        model.execute([np.array([1 << 20, 1 << 20], np.int64)])  # 4 TiB of float32
    assert err.value.code == Status.ACL_ERROR_GE_MEMORY_ALLOCATION


def test_output_buffers_must_have_the_actual_shapes():
    model = Model(compile_graph(_relu_graph()))
    out = np.empty((2, 3), np.float32)
    model.execute([np.ones((2, 3), np.float32)], [out])
    np.testing.assert_array_equal(out, np.ones((2, 3)))
    with pytest.raises(GeError, match=r"this run produced float32\[4, 3\]"):
        model.execute([np.ones((4, 3), np.float32)], [out])


def test_data_with_unknown_dims_in_an_online_session(ge):
    from openge.session import GeSession

    g = Graph("online_dyn")
    x = data(g, 0, (-1, 2), name="x")
    g.set_outputs([g.add_node("ReduceSumD", [x.output(0)], attrs={"axes": [0]}).output(0)])
    with GeSession() as s:
        s.add_graph(1, g)
        for n in (1, 4):
            value = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
            (y,) = s.run_graph(1, [value])
            np.testing.assert_allclose(y.numpy(), value.sum(axis=0))


def test_output_descs_keep_what_is_known_before_run():
    compiled = compile_graph(_reshape_graph())
    assert compiled.outputs[0].dtype == DataType.DT_FLOAT  # rank unknown until the shape value
    compiled = compile_graph(_relu_graph((-1, 3)))
    assert compiled.outputs[0].shape == (-1, 3)


def test_session_options_take_ranges_and_limits(ge):
    from openge.session import GeSession

    g = Graph("ranged")
    x = data(g, 0, (-1, 2), name="x")
    g.set_outputs([g.add_node("Relu", [x.output(0)]).output(0)])
    with GeSession({"openge.dynamic.planCacheSize": "2"}) as s:
        s.add_graph(1, g, {"ge.inputShape": "x:1~4,2"})
        (y,) = s.run_graph(1, [np.ones((3, 2), np.float32)])
        assert y.numpy().shape == (3, 2)
        with pytest.raises(GeError, match=r"dim 0 is 5, outside its range \[1, 4\]"):
            s.run_graph(1, [np.ones((5, 2), np.float32)])
    with pytest.raises(GeError, match="planCacheSize"):
        GeSession({"openge.dynamic.planCacheSize": "0"})


def test_intermediates_of_a_dynamic_model():
    model = Model(compile_graph(_relu_graph()))
    x = np.array([[-1, 2, -3]], np.float32)
    (y,), values = model.execute([x], intermediates=True)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert any(np.array_equal(v, y) for v in values.values())
    nz = Model(compile_graph(_nonzero_graph(100)))  # a node-by-node run records per node
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    (y,), values = nz.execute([x], intermediates=True)
    assert set(values) >= {f"{n.name}:0" for n in nz.compiled.graph.nodes if n.op_type == "NonZero"}


def _reshape_onnx_model():
    import onnx
    from onnx import TensorProto, helper

    from openge.parser import parse_onnx

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    feed = [np.ones((2, 6), np.float32), np.array([3, 4], np.int64)]
    return parse_onnx(model), feed, (3, 4)


def _nonzero_model():
    return _nonzero_graph(100), [np.linspace(-1, 1, 100, dtype=np.float32)], (1, 50)


@pytest.mark.parametrize("make", [_reshape_onnx_model, _nonzero_model])
def test_corrupt_dynamic_om_gives_only_ge_error(make):
    """Bytes flipped behind a zeroed checksum in a dynamic-shape .om (its graph is the plan,
    FrameworkOps included; a static part and a node-by-node part): loading and running give a
    result or a GeError, nothing else."""
    import random

    graph, feed, shape = make()
    data = bytearray(serialize(compile_graph(graph), online=True))
    data[12:76] = bytes(64)  # no checksum: the flips reach the parsers
    (y,) = Model.from_bytes(bytes(data)).execute(feed)
    assert y.shape == shape
    rng = random.Random(3)
    for _ in range(300):
        buf = bytearray(data)
        buf[rng.randrange(256, len(buf))] ^= rng.randrange(1, 256)
        with contextlib.suppress(GeError):
            Model.from_bytes(bytes(buf)).execute(feed)


def test_constant_inputs_keep_an_onnx_model_static():
    import onnx
    from onnx import TensorProto, helper

    from openge.parser import parse_onnx

    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Reshape", ["x", "s"], ["y"])],
            "g",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6]),
                helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
            ],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    onnx.checker.check_model(model)
    assert compile_graph(parse_onnx(model)).is_dynamic
    static = compile_graph(parse_onnx(model, constant_inputs={"s": np.array([3, 4])}))
    assert not static.is_dynamic and [d.name for d in static.inputs] == ["x"]
    (y,) = Model(static).execute([np.arange(12, dtype=np.float32).reshape(2, 6)])
    np.testing.assert_array_equal(y, np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("rows", [1, 3])
def test_an_empty_folded_constant_runs(rows):
    """Fuzz-seed finding: an input whose values decide a shape (NonZero) is bound into the
    plan; all zeros fold NonZero to an empty constant, whose weight slot has no bytes (it failed
    with "weight slot at offset 0 lies outside the blob")."""
    from openge.parser import parse_onnx
    from tests.fuzz.seeds import dynamic_onnx

    model = _load(compile_graph(parse_onnx(dynamic_onnx())))
    for x in (np.zeros((rows, 4), np.float32), np.eye(rows, 4, dtype=np.float32)):
        y, z = model.execute([x])
        np.testing.assert_array_equal(y, np.argwhere(np.maximum(x, 0)))
        np.testing.assert_allclose(z, 1 / (1 + np.exp(-np.maximum(x, 0))), rtol=1e-6)


def test_dynamic_io_of_a_type_without_storage_is_refused_at_load():
    """Fuzz finding (device harness): a dynamic model whose input is DT_STRING loaded, and the
    caller's first np.zeros of its dtype failed; the load refuses it now, as for static ones."""
    from dataclasses import replace

    compiled = compile_graph(_relu_graph(), {"ge.inputShape": "x:1~4,3"})
    bad = replace(compiled, inputs=[replace(compiled.inputs[0], dtype=DataType.DT_STRING)])
    with pytest.raises(GeError, match="input 'x' has type DT_STRING, which has no storage"):
        Model(bad)


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, (0, 3, 2**63 - 1)),  # static and empty: the device fuzz finding's shape
        ({"ge.inputShape": "x:1~4,3"}, (-1, 3, 2**62)),  # dynamic
    ],
)
def test_io_dims_no_array_can_have_are_refused_at_load(options, shape):
    """Fuzz finding (device harness): an input of dims (0, 3, 3, 2^63-1) loaded — 0 bytes —
    and the caller's np.zeros of that shape failed (NumPy's 'array is too big')."""
    from dataclasses import replace

    compiled = compile_graph(_relu_graph(), options)
    bad = replace(compiled, inputs=[replace(compiled.inputs[0], shape=shape)])
    with pytest.raises(GeError, match=r"input 'x' has dims .* beyond any array"):
        Model(bad)


def test_a_deferred_node_with_a_non_utf8_name_is_a_ge_error_at_run_time():
    """Fuzz finding (from_bytes): a dynamic model's deferred ONNX node (a FrameworkOp's
    node_def, decoded when the shapes are known) with an attribute name that is not UTF-8
    raised TypeError while the parser built its error message."""
    import onnx

    from openge.parser import parse_onnx
    from tests.fuzz.seeds import dynamic_onnx

    compiled = compile_graph(parse_onnx(dynamic_onnx()))
    node = next(n for n in compiled.graph.nodes if n.op_type == "FrameworkOp")
    proto = onnx.NodeProto.FromString(node.attrs["node_def"])
    proto.attribute.append(onnx.helper.make_attribute("zz", 1))
    node.attrs["node_def"] = proto.SerializeToString().replace(b"zz", b"\xff\xfe")
    model = _load(compiled)
    with pytest.raises(GeError, match="not valid UTF-8"):
        model.execute([np.ones((2, 4), np.float32)])
