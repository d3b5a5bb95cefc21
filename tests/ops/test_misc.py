"""Misc ops (Cumprod, Bitcast) against NumPy formulas and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from openge.errors import GeError
from openge.graph import DataType, Graph, Tensor, TensorDesc, from_numpy_dtype
from openge.ops import evaluate, get_schema, infer_node

RNG = np.random.default_rng(11)


def _run(op: str, x: np.ndarray, attrs: dict, extra: list | None = None, name: str = "n"):
    g = Graph()
    data = g.add_node(
        "Data",
        name="x",
        attrs={"index": 0},
        output_descs=[TensorDesc(from_numpy_dtype(x.dtype), x.shape)],
    )
    ports = [data.output(0)]
    consts = {}
    for i, value in enumerate(extra or []):
        value = np.asarray(value)
        c = g.add_node(
            "Const",
            name=f"c{i}",
            attrs={"value": Tensor(value)},
            output_descs=[TensorDesc(from_numpy_dtype(value.dtype), value.shape)],
        )
        ports.append(c.output(0))
        consts[c.output(0)] = value
    node = g.add_node(op, ports, name=name, attrs=attrs)
    norm, descs = infer_node(node, consts)
    return evaluate(get_schema(op), norm, [x, *[np.asarray(v) for v in extra or []]], descs)[0]


def _ref_cumprod(x, axis, exclusive, reverse):
    node = helper.make_node("CumProd", ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), x.shape),
            helper.make_tensor_value_info("a", 7, []),
        ],
        [helper.make_tensor_value_info("y", 0, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    return ReferenceEvaluator(model).run(None, {"x": x, "a": np.array(axis, np.int64)})[0]


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumprod_matches_onnx(exclusive, reverse, axis):
    x = RNG.uniform(0.5, 1.5, (3, 4, 2)).astype(np.float32)
    got = _run(
        "Cumprod",
        x,
        {"exclusive": bool(exclusive), "reverse": bool(reverse)},
        [np.array(axis, np.int64)],
    )
    np.testing.assert_allclose(got, _ref_cumprod(x, axis, exclusive, reverse), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.float16, np.float64])
def test_cumprod_dtypes(dtype):
    x = RNG.integers(1, 4, (5, 3)).astype(dtype)
    got = _run("Cumprod", x, {}, [np.array([0], np.int32)])
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.cumprod(x, axis=0, dtype=dtype))


def test_cumprod_rejects_bad_axis_and_dtype():
    with pytest.raises(GeError, match="out of range") as err:
        _run("Cumprod", np.ones((2, 2), np.float32), {}, [np.array(2, np.int64)], name="cp")
    assert "cp" in str(err.value)
    with pytest.raises(GeError, match="one value"):
        _run("Cumprod", np.ones((2, 2), np.float32), {}, [np.array([0, 1], np.int64)])
    with pytest.raises(GeError, match="dtype"):
        _run("Cumprod", np.ones((2, 2), bool), {}, [np.array(0, np.int64)])


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (np.float32, DataType.DT_INT32),
        (np.int64, DataType.DT_DOUBLE),
        (np.uint16, DataType.DT_FLOAT16),
        (np.int8, DataType.DT_BOOL),
    ],
)
def test_bitcast_same_width_reinterprets(src, dst):
    x = (
        RNG.integers(0, 2, (3, 4)).astype(src)
        if src is np.int8
        else (RNG.standard_normal((3, 4)) * 100).astype(src)
    )
    got = _run("Bitcast", x, {"type": dst})
    np.testing.assert_array_equal(got.view(np.uint8), x.view(np.uint8))
    assert got.dtype == dst.np_dtype and got.shape == x.shape


def test_bitcast_changes_width_like_tensorflow():
    x = np.arange(6, dtype=np.int32).reshape(3, 2)
    wide = _run("Bitcast", x, {"type": DataType.DT_INT64})
    np.testing.assert_array_equal(wide, x.view(np.int64).reshape(3))
    narrow = _run("Bitcast", x, {"type": DataType.DT_INT16})
    assert narrow.shape == (3, 2, 2)
    np.testing.assert_array_equal(narrow.reshape(3, 4), x.view(np.int16))
    with pytest.raises(GeError, match="last dim of 2") as err:
        _run("Bitcast", np.zeros((3, 3), np.int32), {"type": DataType.DT_INT64}, name="bc")
    assert "bc" in str(err.value)
