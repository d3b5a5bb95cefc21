"""Inputs tests/fuzz/fuzz_device.py found, each a GeError now (built with devom_builder)."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.om import ge_ir_pb2 as pb
from openge.om.device import read_device_om
from openge.om.device.weights import iter_consts
from openge.runtime import Model
from tests.om.device import devom_builder as b


def _const_om(device_shape, layout, origin_format, origin_shape) -> bytes:
    md = b.simple_model_def("w", 1)
    weights = b.Weights()
    raw = np.zeros(device_shape, np.float16)
    b.add_const(md.graph[0], weights, "w", raw, pb.DT_FLOAT16, layout, origin_format, origin_shape)
    return b.device_om([[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data))]])


@pytest.mark.parametrize(
    ("device_shape", "layout", "origin_format", "origin_shape"),
    [
        ((9, 1, 0, 16), "FRACTAL_Z", "NCHW", [4, 3, 3, 3]),  # the fuzzer's input: N0 = 0
        ((9, 1, 16, 0), "FRACTAL_Z", "NCHW", [4, 3, 3, 3]),
        ((3, 1, 16, 0), "FRACTAL_Z_C04", "NCHW", [4, 3, 3, 3]),
        ((4, 1, 3, 3, 0), "NC1HWC0", "NCHW", [4, 3, 3, 3]),
        ((1, 3, 3, 4, 0, 0), "C1HWNCoC0", "NCHW", [4, 3, 3, 3]),
        ((1, 1, 0, 8), "FRACTAL_NZ", "ND", [5, 7]),
        ((1, 1, 16, 16), "FRACTAL_NZ", "ND", [-1, 7]),  # negative origin dim
    ],
)
def test_zero_block_sizes_and_negative_origin_dims(
    device_shape, layout, origin_format, origin_shape
):
    data = _const_om(device_shape, layout, origin_format, origin_shape)
    om = read_device_om(data)
    with pytest.raises(GeError, match=r"zero block size|negative dim"):
        list(iter_consts(om.model_def(), om.weights()))
    (kept,) = iter_consts(om.model_def(), om.weights(), lenient=True)  # `openge om weights`
    assert kept.array.shape == device_shape and kept.note
    with pytest.raises(GeError):
        Model.from_bytes(data)


def test_an_empty_weight_with_a_huge_dim_is_refused():
    """Fuzz finding: a Const of shape [0, 1, 16, 16, 2^63-1] passed the element bound (0
    elements) and NumPy refused to describe it ("array is too big": a ValueError)."""
    md = b.simple_model_def("w", 1)
    weights = b.Weights()
    raw = np.zeros((0, 16), np.float16)
    b.add_const(md.graph[0], weights, "w", raw, pb.DT_FLOAT16, "ND", "ND", [0, 16])
    (op,) = [op for op in md.graph[0].op if op.name == "w"]
    dims = op.attr["value"].t.desc.shape.dim
    del dims[:]
    dims.extend([0, 1, 16, 16, (1 << 63) - 1])
    data = b.device_om([[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data))]])
    om = read_device_om(data)
    for lenient in (False, True):
        with pytest.raises(GeError, match="more than"):
            list(iter_consts(om.model_def(), om.weights(), lenient=lenient))
    with pytest.raises(GeError):
        Model.from_bytes(data)
