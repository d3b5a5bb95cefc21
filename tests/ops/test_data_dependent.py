"""NonZero, Unique, NonMaxSuppression and RoiAlign kernels against onnx.reference on seeded
random inputs (the conformance suite has only a few fixed cases each)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from openge.ops.data_dependent import non_max_suppression, unique
from openge.ops.detection import roi_align


def _reference(op: str, inputs: dict, outputs: list[str], opset: int = 21, ort=False, **attrs):
    node = helper.make_node(op, list(inputs), outputs, **attrs)
    x_type = helper.np_dtype_to_tensor_dtype(next(iter(inputs.values())).dtype)
    if op == "NonMaxSuppression":
        x_type = TensorProto.INT64
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in inputs.items()
        ],
        [
            helper.make_tensor_value_info(o, x_type if o == "y" else TensorProto.INT64, None)
            for o in outputs
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ort:
        import onnxruntime

        model.ir_version = 10
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return session.run(None, inputs)
    return ReferenceEvaluator(model).run(None, inputs)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("sort", [0, 1])
def test_unique_matches_reference(axis, sort):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(6, 4)).astype(np.float32)
    attrs = {"sorted": sort} if axis is None else {"sorted": sort, "axis": axis}
    # onnx.reference's unsorted path is wrong for 2-D input (axis None or ≠ 0): ONNX Runtime
    expected = _reference("Unique", {"x": x}, ["y", "i", "inv", "c"], ort=True, **attrs)
    got = unique(x, None if axis is None else axis % 2, bool(sort))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("seed", range(4))
def test_nms_matches_reference(center, seed):
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, 10, size=(2, 30, 4)).astype(np.float32)
    if center:
        boxes[..., 2:] = rng.uniform(0.5, 4, size=(2, 30, 2))
    scores = rng.uniform(size=(2, 3, 30)).astype(np.float32)
    scores[0, 0, :5] = 0.5  # ties: the lower index first
    feeds = {
        "boxes": boxes,
        "scores": scores,
        "m": np.array([7], np.int64),
        "iou": np.array([0.4], np.float32),
        "st": np.array([0.2], np.float32),
    }
    (expected,) = _reference("NonMaxSuppression", feeds, ["y"], center_point_box=center)
    got = non_max_suppression(boxes, scores, feeds["m"], feeds["iou"], feeds["st"], center)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("coords", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align_matches_reference(mode, coords, ratio):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 10, 12)).astype(np.float32)
    rois = np.array(
        [[0, 0, 9, 9], [2.5, 1.2, 11.9, 8.1], [-2, -2, 3, 4], [5, 5, 5.2, 5.1], [8, 1, 20, 15]],
        dtype=np.float32,
    )
    idx = np.array([0, 1, 1, 0, 1], np.int64)
    attrs = dict(
        mode=mode,
        output_height=3,
        output_width=4,
        sampling_ratio=ratio,
        spatial_scale=0.8,
    )
    (expected,) = _reference(
        "RoiAlign",
        {"x": x, "rois": rois, "idx": idx},
        ["y"],
        coordinate_transformation_mode=coords,
        **attrs,
    )
    got = roi_align(x, rois, idx, half_pixel=coords == "half_pixel", **attrs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_deform_conv_matches_reference():
    from openge.ops.detection import deform_conv

    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 4, 6, 5)).astype(np.float32)
    w = rng.normal(size=(4, 2, 2, 2)).astype(np.float32)  # group 2
    attrs = dict(strides=[2, 1], pads=[1, 0, 0, 1], dilations=[2, 1], group=2, offset_group=2)
    oh, ow = (6 + 1 - 2 - 1) // 2 + 1, (5 + 1 - 1 - 1) + 1
    offset = rng.uniform(-1.5, 1.5, size=(1, 2 * 2 * 2 * 2, oh, ow)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    mask = rng.uniform(size=(1, 2 * 2 * 2, oh, ow)).astype(np.float32)
    (expected,) = _reference(
        "DeformConv",
        {"x": x, "w": w, "offset": offset, "b": bias, "mask": mask},
        ["y"],
        opset=22,
        kernel_shape=[2, 2],
        **attrs,
    )
    got = deform_conv(x, w, offset, bias, mask, **attrs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
