"""Gear models (the multi-batch clone): every gear equals the static compile of its shape and
ONNX Runtime; the weights are stored once (the .om within 5% of the static .om); the arena is
the largest gear's; the ModelDef has GE's root graph and one subgraph per gear."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.om.gears import NODE_SUFFIX, SHAPE_DATA_NAME, GearKind
from openge.om.plan import SlotKind
from openge.om.writer import serialize
from tests.compiler.gear_models import compile_static, compile_with_gears, load, write_cnn

BATCHES = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return write_cnn(tmp_path_factory.mktemp("gears") / "cnn.onnx")


@pytest.fixture(scope="module")
def batch_model(cnn):
    return compile_with_gears(
        cnn, {"ge.inputShape": "x:-1,3,16,16", "ge.dynamicBatchSize": ",".join(map(str, BATCHES))}
    )


@pytest.fixture(scope="module")
def ort_session(cnn):
    import onnxruntime as ort

    return ort.InferenceSession(str(cnn), providers=["CPUExecutionProvider"])


def _check_gears_equal_static(cnn, model, shapes, ort_session):
    """Each gear's output equals the static compile of its shape (rtol 1e-5) and ORT."""
    gear_model = load(model)
    rng = np.random.default_rng(7)
    for shape in shapes:
        x = rng.normal(size=shape).astype(np.float32)
        static = load(compile_static(cnn, shape))
        expected = static.execute([x])[0]
        got = gear_model.execute([x])[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        reference = ort_session.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-5)


def _check_size_and_arena(cnn, model, largest_shape):
    static = compile_static(cnn, largest_shape)
    gear_bytes = len(serialize(model, online=False))
    static_bytes = len(serialize(static, online=False))
    assert gear_bytes <= 1.05 * static_bytes, (gear_bytes, static_bytes)
    assert model.weight_size <= static.weight_size + 1024  # + the small gear table const
    assert model.memory_size == static.memory_size  # one arena, the largest gear's
    assert model.memory_size == max(g.memory_size for g in model.gears.gears)


def test_batch_gears_equal_static_compiles_and_onnxruntime(cnn, batch_model, ort_session):
    _check_gears_equal_static(cnn, batch_model, [(b, 3, 16, 16) for b in BATCHES], ort_session)


def test_batch_gear_om_is_within_5_percent_of_static_and_arena_is_largest(cnn, batch_model):
    _check_size_and_arena(cnn, batch_model, (8, 3, 16, 16))


def test_image_size_gears(cnn, ort_session):
    options = {
        "ge.inputShape": "x:1,3,-1,-1",
        "ge.dynamicImageSize": "16,16;32,24",
        "ge.inputFormat": "NCHW",
    }
    model = compile_with_gears(cnn, options)
    assert model.gears.kind == GearKind.IMAGE and model.gears.values == [(16, 16), (32, 24)]
    _check_gears_equal_static(cnn, model, [(1, 3, 16, 16), (1, 3, 32, 24)], ort_session)
    _check_size_and_arena(cnn, model, (1, 3, 32, 24))


def test_dims_gears(cnn, ort_session):
    options = {
        "ge.inputShape": "x:-1,3,-1,-1",
        "ge.dynamicDims": "1,16,16;2,32,24",
        "ge.inputFormat": "ND",
    }
    model = compile_with_gears(cnn, options)
    assert model.gears.kind == GearKind.DIMS and model.gears.k == 3
    _check_gears_equal_static(cnn, model, [(1, 3, 16, 16), (2, 3, 32, 24)], ort_session)
    _check_size_and_arena(cnn, model, (2, 3, 32, 24))


def test_compiled_form_is_ges(batch_model):
    m = batch_model
    assert [d.name for d in m.inputs] == ["x", SHAPE_DATA_NAME]
    shape_data = m.inputs[-1]
    assert shape_data.dtype == DataType.DT_INT32 and shape_data.shape == (1,)
    assert m.inputs[0].shape == (-1, 3, 16, 16)
    assert m.inputs[0].range == ((1, 8), (3, 3), (16, 16), (16, 16))
    root = m.graph
    case = root.node("ascend_mbatch_shape_case")
    index = root.node("ascend_mbatch_shape_mapindex")
    assert case.op_type == "Case" and index.op_type == "MapIndex"
    assert case.inputs[0].node is index
    assert [p.node.name for p in index.inputs] == [SHAPE_DATA_NAME, "ascend_mbatch_shape_const"]
    assert case.attrs["_batch_num"] == 4 and case.attrs["mbatch_dynamic_type"] == 1
    assert [case.attrs[f"_pred_value_{i}"] for i in range(4)] == [[b] for b in BATCHES]
    assert root.node("x").attrs["_mbatch_origin_input_dims"] == [-1, 3, 16, 16]
    assert root.node("x").output_descs[0].shape == (8, 3, 16, 16)  # the largest gear
    table = root.node("ascend_mbatch_shape_const").attrs["value"].numpy()
    assert table.tolist() == list(BATCHES)
    dims = root.node("NetOutput").attrs["_dynamic_output_dims"]
    assert dims == [f"{i},0,{b},10" for i, b in enumerate(BATCHES)]
    # one subgraph per gear, every node suffixed; the tasks of gear i are its subgraph's
    for i, gear in enumerate(m.gears.gears):
        sub = m.gears.graph(i)
        assert sub.name == f"Batch_{i}"
        assert all(n.name.endswith(f"{NODE_SUFFIX}{i}") for n in sub.nodes)
        tasks = m.tasks[gear.task_begin : gear.task_end]
        assert tasks and all(t.name.endswith(f"{NODE_SUFFIX}{i}") for t in tasks)
        assert gear.input_shapes == ((BATCHES[i], 3, 16, 16),)


def test_compiled_form_survives_the_om(batch_model):
    from openge.om.reader import deserialize

    back = deserialize(serialize(batch_model, online=False))
    assert back.gears == batch_model.gears
    assert back.inputs == batch_model.inputs and back.outputs == batch_model.outputs
    assert back.gears.graph(2).name == "Batch_2"
    assert back.graph.node("ascend_mbatch_shape_case").attrs["_pred_value_3"] == [8]


def _mlp(shape=(-1, 4)) -> Graph:
    g = Graph("mlp")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, shape)]
    )
    w = g.add_node("Const", name="w", attrs={"value": Tensor(np.ones((4, 3), np.float32))})
    mm = g.add_node("MatMulV2", [x.output(0), w.output(0)], name="mm")
    g.set_outputs([mm.output(0)])
    return g


def test_graph_api_gears_clone_the_graph_per_gear():
    from openge.compiler import compile_graph

    model = compile_graph(_mlp(), {"ge.inputShape": "x:-1,4", "ge.dynamicBatchSize": "3,5"})
    assert [g.input_shapes for g in model.gears.gears] == [((3, 4),), ((5, 4),)]
    runner = load(model)
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    np.testing.assert_allclose(runner.execute([x])[0], x @ np.ones((4, 3), np.float32))


def test_input_shape_naming_an_unknown_input_is_refused():
    from openge.compiler import compile_graph

    with pytest.raises(GeError) as info:
        compile_graph(_mlp(), {"ge.inputShape": "y:-1,4", "ge.dynamicBatchSize": "3,5"})
    assert "'y'" in info.value.message and "x" in info.value.message


def test_dims_rule_every_dynamic_input_listed():
    from openge.compiler import compile_graph

    g = _mlp()
    extra = g.add_node(
        "Data", name="z", attrs={"index": 1}, output_descs=[TensorDesc(DataType.DT_FLOAT, (-1,))]
    )
    relu = g.add_node("Relu", [extra.output(0)], name="relu")
    g.set_outputs([*g.outputs, relu.output(0)])
    with pytest.raises(GeError) as info:
        compile_graph(
            g, {"ge.inputShape": "x:-1,4", "ge.dynamicDims": "3;5", "ge.inputFormat": "ND"}
        )
    assert "dynamic inputs listed" in info.value.message and "'z'" in info.value.message
    # with batch gears, an unlisted input with -1 at dim 0 joins the gears (GE does so)
    model = compile_graph(g, {"ge.inputShape": "x:-1,4", "ge.dynamicBatchSize": "3,5"})
    assert model.gears.gears[1].input_shapes == ((5, 4), (5,))


def _plan(tasks):
    """A task list without names and weight offsets (which the shared weights renumber)."""

    def slot(s):
        return (s.kind, None if s.kind == SlotKind.WEIGHT else s.offset, s.dtype, s.shape)

    return [
        (t.op_type, sorted(t.attrs.items()), [slot(s) for s in (*t.inputs, *t.outputs)])
        for t in tasks
    ]


def test_every_gear_runs_the_static_plan_of_its_shape(cnn, batch_model):
    for i, b in enumerate(BATCHES):
        gear = batch_model.gears.gears[i]
        static = compile_static(cnn, (b, 3, 16, 16))
        assert _plan(batch_model.tasks[gear.task_begin : gear.task_end]) == _plan(static.tasks)
        assert gear.memory_size == static.memory_size


def test_external_weights_are_written_once_for_all_gears(tmp_path):
    from openge.compiler import compile_graph

    g = _mlp()
    w = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    g.node("w").attrs["value"] = Tensor(w)
    options = {
        "ge.inputShape": "x:-1,4",
        "ge.dynamicBatchSize": "1,6",
        "ge.externalWeight": "1",
        "ge.externalWeightDir": str(tmp_path),
    }
    model = compile_graph(g, options)
    assert len(model.external_weights) == 1 and len(list(tmp_path.iterdir())) == 1
    runner = load(model)
    x = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(runner.execute([x])[0], x @ w, rtol=1e-5, atol=1e-6)
