"""Running gear models: the gear chosen by input shapes or by ascend_mbatch_shape_data, the
set_* calls that fill it, the description calls, and ACL's error codes."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError, Status
from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.om.gears import SHAPE_DATA_NAME
from openge.om.writer import serialize
from openge.runtime import Model

RNG = np.random.default_rng(3)
W = RNG.normal(size=(4, 3)).astype(np.float32)
B = RNG.normal(size=(3,)).astype(np.float32)


def mlp_graph() -> Graph:
    """y = relu(x @ W + B), z = a + 1 with x [-1, 4] and a [-1, -1] (dims gears use both)."""
    g = Graph("mlp")
    f32 = DataType.DT_FLOAT
    x = g.add_node("Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(f32, (-1, 4))])
    a = g.add_node("Data", name="a", attrs={"index": 1}, output_descs=[TensorDesc(f32, (-1, -1))])
    w = g.add_node("Const", name="w", attrs={"value": Tensor(W)})
    b = g.add_node("Const", name="b", attrs={"value": Tensor(B)})
    one = g.add_node("Const", name="one", attrs={"value": Tensor(np.ones((1,), np.float32))})
    mm = g.add_node("MatMulV2", [x.output(0), w.output(0), b.output(0)], name="mm")
    relu = g.add_node("Relu", [mm.output(0)], name="relu")
    add = g.add_node("Add", [a.output(0), one.output(0)], name="add")
    g.set_outputs([relu.output(0), add.output(0)])
    return g


def reference(x: np.ndarray, a: np.ndarray) -> list[np.ndarray]:
    return [np.maximum(x.astype(np.float64) @ W + B, 0), a.astype(np.float64) + 1]


def load(options: dict[str, str]) -> Model:
    return Model.from_bytes(serialize(compile_graph(mlp_graph(), options), online=False))


@pytest.fixture(scope="module")
def batch_model() -> Model:
    return load({"ge.inputShape": "x:-1,4;a:-1,2", "ge.dynamicBatchSize": "2,6,4"})


@pytest.fixture(scope="module")
def dims_model() -> Model:
    options = {"ge.inputShape": "x:-1,4;a:-1,-1", "ge.dynamicDims": "1,1,5;3,2,2"}
    return load({**options, "ge.inputFormat": "ND"})


def inputs_for(batch: int, cols: int = 2) -> list[np.ndarray]:
    return [
        RNG.normal(size=(batch, 4)).astype(np.float32),
        RNG.normal(size=(batch, cols)).astype(np.float32),
    ]


def check(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> None:
    for got, want in zip(outputs, reference(*inputs[:2])):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_description_shows_minus_one_and_ranges(batch_model):
    m = batch_model
    assert [d.name for d in m.inputs] == ["x", "a", SHAPE_DATA_NAME]
    assert m.inputs[0].shape == (-1, 4) and m.inputs[0].range == ((2, 6), (4, 4))
    assert m.inputs[2].dtype == DataType.DT_INT32 and m.inputs[2].shape == (1,)
    assert m.inputs[0].size == 6 * 4 * 4  # sized for the largest gear, as GE does
    assert m.outputs[0].shape == (6, 3)  # the largest gear's
    assert m.get_dynamic_batch() == [2, 6, 4]
    assert m.get_dynamic_hw() == []


def test_static_model_has_no_gears():
    g = mlp_graph()
    m = Model.from_bytes(
        serialize(compile_graph(g, {"ge.inputShape": "x:2,4;a:2,2"}), online=False)
    )
    assert m.gears is None and m.get_dynamic_batch() == [] and m.get_input_dynamic_dims() == []
    assert m.inputs[0].range == () and m.get_cur_output_dims(0) == [2, 3]
    with pytest.raises(GeError) as info:
        m.set_dynamic_batch_size([], 2, 2)
    assert "no gears" in info.value.message


def test_execute_picks_the_gear_of_the_input_shapes(batch_model):
    for batch in (2, 6, 4):
        inputs = inputs_for(batch)
        outputs = batch_model.execute(inputs)
        check(outputs, inputs)
        assert batch_model.get_cur_output_dims(0) == [batch, 3]


def test_execute_with_shape_data_the_acl_way(batch_model):
    inputs = inputs_for(4)
    shape_data = batch_model.set_dynamic_batch_size(inputs, 2, 4)
    assert len(inputs) == 3 and inputs[2] is shape_data
    assert shape_data.dtype == np.int32 and shape_data.tolist() == [4]
    check(batch_model.execute(inputs), inputs)
    # a second call writes into the same array
    inputs[:2] = inputs_for(2)
    assert batch_model.set_dynamic_batch_size(inputs, 2, 2) is shape_data
    assert shape_data.tolist() == [2]
    check(batch_model.execute(inputs), inputs)


def test_execute_with_a_dict(batch_model):
    x, a = inputs_for(6)
    feed = {"x": x, "a": a}
    check(batch_model.execute(feed), [x, a])
    batch_model.set_dynamic_batch_size(feed, 2, 6)
    assert feed[SHAPE_DATA_NAME].tolist() == [6]
    check(batch_model.execute(feed), [x, a])


def test_no_gear_set_runs_the_largest(batch_model):
    inputs = [*inputs_for(6), np.zeros(1, np.int32)]
    check(batch_model.execute(inputs), inputs)
    assert batch_model.get_cur_output_dims(0) == [6, 3]
    with pytest.raises(GeError) as info:  # inputs are checked against the chosen gear
        batch_model.execute([*inputs_for(2), np.zeros(1, np.int32)])
    assert info.value.code == Status.ACL_ERROR_GE_SHAPE_INVALID
    assert "[6, 4]" in info.value.message and "[2, 4]" in info.value.message
    assert "chose gear 6" in info.value.message


def test_value_that_is_no_gear_is_145013_listing_the_gears(batch_model):
    with pytest.raises(GeError) as info:
        batch_model.set_dynamic_batch_size(inputs_for(2), 2, 3)
    assert info.value.code == Status.ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID == 145013
    assert "2 | 6 | 4" in info.value.message
    with pytest.raises(GeError) as info:
        batch_model.execute([*inputs_for(2), np.array([5], np.int32)])
    assert info.value.code == 145013 and "= 5" in info.value.message
    with pytest.raises(GeError) as info:
        batch_model.execute(inputs_for(5))
    assert info.value.code == 145013 and "x[5, 4]" in info.value.message


def test_batch_zero_is_the_invalid_parameter_code(batch_model):
    with pytest.raises(GeError) as info:
        batch_model.set_dynamic_batch_size(inputs_for(2), 2, 0)
    assert info.value.code == Status.ACL_ERROR_INVALID_PARAM == 100000


def test_set_call_checks_the_index_and_the_kind(batch_model, dims_model):
    with pytest.raises(GeError) as info:
        batch_model.set_dynamic_batch_size(inputs_for(2), 0, 2)
    assert info.value.code == Status.ACL_ERROR_GE_PARAM_INVALID and "input 2" in info.value.message
    with pytest.raises(GeError) as info:
        dims_model.set_dynamic_batch_size(inputs_for(1), 2, 1)
    assert "--dynamic_dims" in info.value.message
    with pytest.raises(GeError) as info:
        batch_model.set_dynamic_hw_size(inputs_for(2), 2, 4, 4)
    assert "--dynamic_batch_size" in info.value.message


def test_dims_gears(dims_model):
    m = dims_model
    assert m.inputs[1].shape == (-1, -1) and m.inputs[2].shape == (3,)
    assert m.get_input_dynamic_dims() == [[1, 4, 1, 5], [3, 4, 2, 2]]
    inputs = [
        RNG.normal(size=(3, 4)).astype(np.float32),
        RNG.normal(size=(2, 2)).astype(np.float32),
    ]
    assert m.set_input_dynamic_dims(inputs, 2, [3, 4, 2, 2]).tolist() == [3, 2, 2]
    check(m.execute(inputs), inputs)
    assert m.get_cur_output_dims(1) == [2, 2]
    inputs = [
        RNG.normal(size=(1, 4)).astype(np.float32),
        RNG.normal(size=(1, 5)).astype(np.float32),
    ]
    check(m.execute(inputs), inputs)  # by shapes


def test_dims_static_position_mismatch_is_145012(dims_model):
    with pytest.raises(GeError) as info:
        dims_model.set_input_dynamic_dims([], 2, [3, 5, 2, 2])
    assert info.value.code == Status.ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID == 145012
    assert "dim 1" in info.value.message
    with pytest.raises(GeError) as info:
        dims_model.set_input_dynamic_dims([], 2, [3, 4, 2])
    assert info.value.code == 145012
    with pytest.raises(GeError) as info:
        dims_model.set_input_dynamic_dims([], 2, [3, 4, 5, 5])
    assert info.value.code == 145013 and "1,4,1,5" not in info.value.message
    assert "1,1,5 | 3,2,2" in info.value.message


def test_image_size_gears():
    g = Graph("img")
    x = g.add_node(
        "Data",
        name="img",
        attrs={"index": 0},
        output_descs=[TensorDesc(DataType.DT_FLOAT, (1, 2, -1, -1))],
    )
    relu = g.add_node("Relu", [x.output(0)], name="relu")
    g.set_outputs([relu.output(0)])
    options = {
        "ge.inputShape": "img:1,2,-1,-1",
        "ge.dynamicImageSize": "4,6;8,8",
        "ge.inputFormat": "NCHW",
    }
    m = Model.from_bytes(serialize(compile_graph(g, options), online=False))
    assert m.get_dynamic_hw(0) == [(4, 6), (8, 8)] and m.get_dynamic_batch() == []
    img = RNG.normal(size=(1, 2, 4, 6)).astype(np.float32)
    inputs = [img]
    assert m.set_dynamic_hw_size(inputs, 1, 4, 6).tolist() == [4, 6]
    np.testing.assert_array_equal(m.execute(inputs)[0], np.maximum(img, 0))
    with pytest.raises(GeError) as info:
        m.set_dynamic_hw_size(inputs, 1, 4, 8)
    assert info.value.code == 145013 and "4,6 | 8,8" in info.value.message
    with pytest.raises(GeError) as info:
        m.set_dynamic_hw_size(inputs, 1, 0, 8)
    assert info.value.code == 100000


def test_saved_gear_model_loads_from_file(tmp_path):
    from openge.offline_compile import build_finalize, build_initialize, build_model, save_model

    build_initialize({})
    try:
        options = {"ge.inputShape": "x:-1,4;a:-1,2", "ge.dynamicBatchSize": "1,3"}
        path = save_model(str(tmp_path / "mlp"), build_model(mlp_graph(), options))
    finally:
        build_finalize()
    with Model.from_file(path) as m:
        assert m.get_dynamic_batch() == [1, 3]
        inputs = inputs_for(3)
        check(m.execute(inputs), inputs)


def test_a_format_1_0_reader_refuses_a_gear_model(batch_model, monkeypatch):
    import openge.runtime.compat as compat

    buffer = serialize(batch_model.compiled, online=False)
    monkeypatch.setattr(compat, "OM_FORMAT_VERSION", (1, 0))
    result = compat.check_compatibility(buffer)
    assert not result.ok and result.format == "1.1" and "newer" in result.reason
    with pytest.raises(GeError) as info:
        Model.from_bytes(buffer)
    assert info.value.code == Status.ACL_ERROR_GE_LOAD_MODEL and "upgrade openge" in str(info.value)


def test_a_tampered_gear_table_is_refused(batch_model):
    from dataclasses import replace

    compiled = batch_model.compiled
    gears = compiled.gears
    bad = replace(gears, gears=[replace(gears.gears[0], task_end=gears.gears[0].task_end + 1)])
    bad.gears += gears.gears[1:]
    with pytest.raises(GeError) as info:
        Model.from_bytes(serialize(replace(compiled, gears=bad), online=False))
    assert "gear table" in info.value.message
