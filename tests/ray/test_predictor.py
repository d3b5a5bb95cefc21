"""OmPredictor without Ray: column forms, mappings, padding, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from openge.errors import GeError
from openge.ray import OmPredictor
from tests.ray.models import cnn_onnx, compile_onnx, loop_reference, mlp_onnx


@pytest.fixture(scope="module")
def cnn_om():
    return compile_onnx(cnn_onnx(batch=8))


@pytest.fixture(scope="module")
def mlp_om():
    return compile_onnx(mlp_onnx(batch=64))


def _images(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, 16, 16)).astype(np.float32)


def test_numpy_pandas_and_arrow_batches_give_the_loop_result(cnn_om):
    x = _images(21)
    ref = loop_reference(cnn_om, x, 8)
    pred = OmPredictor(cnn_om, gear_column="gear", passthrough_columns=["id"])
    ids = np.arange(21)
    out = pred({"img": x, "id": ids})
    np.testing.assert_array_equal(out["scores"], ref)
    np.testing.assert_array_equal(out["id"], ids)
    assert (out["gear"] == 8).all() and pred.runs_by_gear == {8: 3}
    frame = pd.DataFrame({"img": list(x.reshape(21, -1)), "id": ids})
    np.testing.assert_array_equal(pred(frame)["scores"], ref)
    table = pa.table({"img": pa.FixedShapeTensorArray.from_numpy_ndarray(x), "id": ids})
    np.testing.assert_array_equal(pred(table)["scores"], ref)
    lists = pa.table({"img": pa.array(list(x.reshape(21, -1).astype(np.float64))), "id": ids})
    np.testing.assert_array_equal(pred(lists)["scores"], ref)


def test_column_mappings(mlp_om):
    x = np.random.default_rng(1).normal(size=(70, 16)).astype(np.float32)
    ref = loop_reference(mlp_om, x, 64)
    by_dict = OmPredictor(mlp_om, input_columns={"x": "features"}, output_columns={"prob": "p"})
    np.testing.assert_array_equal(by_dict({"features": x})["p"], ref)
    by_list = OmPredictor(mlp_om, input_columns=["features"], output_columns=["p"])
    np.testing.assert_array_equal(by_list({"features": x})["p"], ref)
    assert OmPredictor(mlp_om)({"x": x[:0]})["prob"].shape == (0, 4)


def test_errors_name_the_column(mlp_om):
    pred = OmPredictor(mlp_om)
    with pytest.raises(GeError, match="no column 'x'"):
        pred({"y": np.zeros((3, 16), np.float32)})
    with pytest.raises(GeError, match=r"takes \[16\] per row"):
        pred({"x": np.zeros((3, 15), np.float32)})
    with pytest.raises(GeError, match="convert the column"):
        pred({"x": np.zeros((3, 16), np.complex64)})
    with pytest.raises(GeError, match="does not have"):
        OmPredictor(mlp_om, input_columns={"nope": "x"})
    with pytest.raises(GeError, match="1 inputs"):
        OmPredictor(mlp_om, input_columns=["a", "b"])
    with pytest.raises(GeError, match="not a file"):
        OmPredictor("/nonexistent/model.om")


def test_sliced_arrow_tables_with_string_columns(cnn_om):
    x = _images(10, seed=2)
    table = pa.table(
        {
            "img": pa.FixedShapeTensorArray.from_numpy_ndarray(x),
            "file": [f"f{i}" for i in range(10)],
        }
    ).slice(3, 4)
    out = OmPredictor(cnn_om, passthrough_columns=["file"])(table)
    assert list(out["file"]) == ["f3", "f4", "f5", "f6"]
    np.testing.assert_array_equal(out["scores"], loop_reference(cnn_om, x[3:7], 8))
