"""Image ops (Resize, GridSampler2D/3D) against onnx.reference's Resize and GridSample."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from openge.errors import GeError
from openge.graph import Graph, Tensor, TensorDesc, from_numpy_dtype
from openge.ops import evaluate, get_schema, infer_node

RNG = np.random.default_rng(3)


def _run_op(op: str, inputs: list, attrs: dict, name: str = "n"):
    """Infer and run one catalog op; constant inputs (non-x) are Const nodes."""
    g = Graph()
    ports = []
    for i, value in enumerate(inputs):
        if value is None:
            ports.append(None)
            continue
        value = np.asarray(value)
        if i == 0:
            node = g.add_node(
                "Data",
                name="x",
                attrs={"index": 0},
                output_descs=[TensorDesc(from_numpy_dtype(value.dtype), value.shape)],
            )
        else:
            node = g.add_node(
                "Const",
                name=f"c{i}",
                attrs={"value": Tensor(value)},
                output_descs=[TensorDesc(from_numpy_dtype(value.dtype), value.shape)],
            )
        ports.append(node.output(0))
    node = g.add_node(op, ports, name=name, attrs=attrs)
    consts = {
        p: np.asarray(v)
        for p, v in zip(ports, inputs)
        if p is not None and p.node.op_type == "Const"
    }
    norm, descs = infer_node(node, consts)
    return evaluate(get_schema(op), norm, inputs, descs)[0]


def _onnx_ref(op: str, inputs: list, attrs: dict, opset: int = 20):
    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    node = helper.make_node(op, names, ["y"], **attrs)
    vis = [
        helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.asarray(v).shape
        )
        for n, v in zip(names, inputs)
        if n
    ]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", 0, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: np.asarray(v) for n, v in zip(names, inputs) if n}
    return ReferenceEvaluator(model).run(None, feeds)[0]


# ----- Resize ---------------------------------------------------------------------------------

_CASES = [
    ("nearest", "asymmetric", "floor", [1, 1, 2.0, 3.0], None),
    ("nearest", "half_pixel", "round_prefer_ceil", [1, 1, 0.6, 1.7], None),
    ("nearest", "asymmetric", "ceil", None, [1, 2, 3, 7]),
    ("linear", "align_corners", "round_prefer_floor", None, [1, 2, 7, 3]),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", [1, 1, 0.5, 2.5], None),
    ("linear", "half_pixel_symmetric", "round_prefer_floor", [1, 1, 1.3, 0.7], None),
    ("cubic", "half_pixel", "round_prefer_floor", [1, 1, 1.8, 0.6], None),
    ("cubic", "asymmetric", "round_prefer_floor", None, [1, 2, 9, 2]),
]


@pytest.mark.parametrize(("mode", "ctm", "nearest", "scales", "sizes"), _CASES)
@pytest.mark.parametrize("exclude", [0, 1])
def test_resize_matches_onnx(mode, ctm, nearest, scales, sizes, exclude):
    x = RNG.standard_normal((1, 2, 5, 4)).astype(np.float32)
    sc = None if scales is None else np.array(scales, np.float32)
    sz = None if sizes is None else np.array(sizes, np.int64)
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": ctm,
        "nearest_mode": nearest,
        "exclude_outside": exclude,
        "cubic_coeff_a": -0.5,
    }
    got = _run_op("Resize", [x, None, sc, sz], attrs)
    want = _onnx_ref("Resize", [x, np.zeros(0, np.float32), sc, sz], attrs, opset=19)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_resize_tf_half_pixel_for_nn():
    # Not in onnx.reference (dropped from ONNX after opset 11): x_src = (x + 0.5) / scale.
    x = RNG.standard_normal((1, 1, 3, 5)).astype(np.float32)
    got = _run_op(
        "Resize",
        [x, None, np.array([1, 1, 2, 0.6], np.float32), None],
        {"coordinate_transformation_mode": "tf_half_pixel_for_nn"},
    )
    rows = np.minimum(np.floor((np.arange(6) + 0.5) / 2.0 + 0.5 - 1e-12), 2).astype(int)
    src = (np.arange(3) + 0.5) / np.float32(0.6)
    frac = src - np.floor(src)
    cols = np.minimum(np.where(frac <= 0.5, np.floor(src), np.floor(src) + 1), 4).astype(int)
    np.testing.assert_array_equal(got, x[:, :, rows][:, :, :, cols])


def test_resize_tf_crop_and_resize_with_extrapolation():
    x = RNG.standard_normal((1, 1, 4, 5)).astype(np.float32)
    roi = np.array([0, 0, 0.2, -0.3, 1, 1, 0.9, 1.2], np.float32)
    sizes = np.array([1, 1, 3, 6], np.int64)
    attrs = {
        "mode": "linear",
        "coordinate_transformation_mode": "tf_crop_and_resize",
        "extrapolation_value": 7.0,
    }
    got = _run_op("Resize", [x, roi, None, sizes], attrs)
    want = _onnx_ref("Resize", [x, roi, None, sizes], attrs, opset=19)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float16, np.float64])
def test_resize_dtypes_round_and_saturate(dtype):
    x = (RNG.random((1, 1, 3, 3)) * 200).astype(dtype)
    scales = np.array([1, 1, 1.5, 2.0], np.float32)
    attrs = {"mode": "cubic"}
    got = _run_op("Resize", [x, None, scales, None], attrs)
    want = _onnx_ref("Resize", [x, np.zeros(0, np.float32), scales, None], attrs, opset=19)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-3, atol=1)


def test_resize_rank_3_and_5():
    for shape, scales in (((2, 3, 4), [1, 2, 0.5]), ((1, 1, 2, 3, 4), [1, 1, 2, 1, 0.5])):
        x = RNG.standard_normal(shape).astype(np.float32)
        sc = np.array(scales, np.float32)
        got = _run_op("Resize", [x, None, sc, None], {"mode": "linear"})
        want = _onnx_ref(
            "Resize", [x, np.zeros(0, np.float32), sc, None], {"mode": "linear"}, opset=19
        )
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "attrs", "match"),
    [
        ([np.zeros((1, 1, 2, 2), np.float32), None, None, None], {}, "one of scales and sizes"),
        (
            [np.zeros((1, 1, 2, 2), np.float32), None, np.array([1, 2], np.float32), None],
            {},
            "must hold 4",
        ),
        (
            [np.zeros((1, 1, 2, 2), np.float32), None, np.array([1, 1, -1, 2], np.float32), None],
            {},
            "positive",
        ),
        (
            [np.zeros((1, 1, 2, 2), np.float32), None, np.array([1, 1, 2, 2], np.float32), None],
            {"mode": "area"},
            "mode",
        ),
        (
            [np.zeros((1, 1, 2, 2), bool), None, np.array([1, 1, 2, 2], np.float32), None],
            {},
            "dtype",
        ),
        (
            [np.zeros((1, 1, 2, 2), np.float32), None, None, np.array([1, 1, 2, 2], np.int64)],
            {"coordinate_transformation_mode": "tf_crop_and_resize"},
            "roi",
        ),
    ],
)
def test_resize_rejects_bad_input(inputs, attrs, match):
    with pytest.raises(GeError, match=match) as err:
        _run_op("Resize", inputs, attrs, name="rz")
    assert "rz" in str(err.value)


# ----- GridSampler2D / 3D ----------------------------------------------------------------------


@pytest.mark.parametrize("interp", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sampler_2d_matches_onnx(interp, padding, align):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    grid = (RNG.random((2, 3, 6, 2)) * 2.6 - 1.3).astype(np.float32)
    got = _run_op(
        "GridSampler2D",
        [x, grid],
        {"interpolation_mode": interp, "padding_mode": padding, "align_corners": align},
    )
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(interp, interp)
    want = _onnx_ref(
        "GridSample",
        [x, grid],
        {"mode": mode, "padding_mode": padding, "align_corners": int(align)},
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("interp", ["bilinear", "nearest"])
def test_grid_sampler_3d_matches_onnx(interp):
    x = RNG.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    grid = (RNG.random((1, 2, 3, 4, 3)) * 2.4 - 1.2).astype(np.float32)
    got = _run_op(
        "GridSampler3D", [x, grid], {"interpolation_mode": interp, "padding_mode": "border"}
    )
    mode = "linear" if interp == "bilinear" else interp
    want = _onnx_ref("GridSample", [x, grid], {"mode": mode, "padding_mode": "border"})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_grid_sampler_float64_and_float16():
    for dtype in (np.float64, np.float16):
        x = RNG.standard_normal((1, 1, 3, 3)).astype(dtype)
        grid = (RNG.random((1, 2, 2, 2)) * 2 - 1).astype(dtype)
        got = _run_op("GridSampler2D", [x, grid], {})
        want = _onnx_ref(
            "GridSample", [x.astype(np.float64), grid.astype(np.float64)], {"mode": "linear"}
        )
        assert got.dtype == dtype
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=3e-3, atol=3e-3)


@pytest.mark.parametrize(
    ("op", "x", "grid", "attrs", "match"),
    [
        ("GridSampler2D", (1, 1, 3, 3), (1, 2, 2, 3), {}, "grid must be"),
        ("GridSampler2D", (1, 1, 3), (1, 2, 2), {}, "4-D"),
        ("GridSampler2D", (1, 1, 3, 3), (2, 2, 2, 2), {}, "grid must be"),
        (
            "GridSampler3D",
            (1, 1, 2, 3, 3),
            (1, 2, 2, 2, 3),
            {"interpolation_mode": "bicubic"},
            "2-D only",
        ),
        ("GridSampler2D", (1, 1, 3, 3), (1, 2, 2, 2), {"padding_mode": "wrap"}, "padding_mode"),
    ],
)
def test_grid_sampler_rejects_bad_input(op, x, grid, attrs, match):
    with pytest.raises(GeError, match=match) as err:
        _run_op(op, [np.zeros(x, np.float32), np.zeros(grid, np.float32)], attrs, name="gs")
    assert "gs" in str(err.value)


def test_grid_sampler_rejects_integer_input():
    with pytest.raises(GeError, match="dtype"):
        _run_op(
            "GridSampler2D",
            [np.zeros((1, 1, 2, 2), np.int32), np.zeros((1, 1, 1, 2), np.float32)],
            {},
        )


def test_resize_onnx_type_constant():
    # The int64 sizes input may also be int32 (CANN allows both).
    x = RNG.standard_normal((1, 1, 2, 3)).astype(np.float32)
    got = _run_op("Resize", [x, None, None, np.array([1, 1, 4, 6], np.int32)], {})
    assert got.shape == (1, 1, 4, 6)
    assert TensorProto.FLOAT == 1
