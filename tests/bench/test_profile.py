"""bench/profile.py's product count: 2·M·N·K of every convolution and matrix product of a plan,
from its slots' shapes, against counts written out here by hand."""

from __future__ import annotations

from bench.profile import PRODUCT_OPS, product_flops
from openge.om.plan import Slot, SlotKind, Task


def _task(op_type, inputs, output, **attrs):
    slots = tuple(Slot(SlotKind.ARENA, 0, shape=s) for s in inputs)
    return Task("t", op_type, slots, (Slot(SlotKind.ARENA, 0, shape=output),), attrs)


def test_convolutions_count_their_filter_taps_per_output():
    # 3 -> 32 3x3 stride 2 to 112x112: each of 32·112·112 outputs sums 3·3·3 products
    stem = _task("FusedConv2D", [(1, 3, 224, 224), (32, 3, 3, 3)], (1, 32, 112, 112))
    assert product_flops(stem) == 2 * 32 * 112 * 112 * 27
    # depthwise (groups = 96): each output sums its own channel's 3·3 taps
    dw = _task("FusedConv2D", [(1, 96, 56, 56), (96, 1, 3, 3)], (1, 96, 56, 56), groups=96)
    assert product_flops(dw) == 2 * 96 * 56 * 56 * 9
    nhwc = _task("Conv2D", [(1, 8, 8, 3), (4, 3, 1, 1)], (1, 8, 8, 4), data_format="NHWC")
    assert product_flops(nhwc) == 0  # not counted rather than miscounted


def test_matrix_products_count_k_per_output_and_other_ops_nothing():
    mm = _task("BatchMatMulV2", [(1, 128, 768), (768, 3072)], (1, 128, 3072))
    assert product_flops(mm) == 2 * 128 * 3072 * 768
    adj = _task("BatchMatMulV2", [(12, 64, 128), (12, 64, 128)], (12, 128, 128), adj_x1=True)
    assert product_flops(adj) == 2 * 12 * 128 * 128 * 64
    gemm = _task("MatMulV2", [(1, 1280), (1000, 1280)], (1, 1000), transpose_x2=True)
    assert product_flops(gemm) == 2 * 1000 * 1280
    assert "SoftmaxV2" not in PRODUCT_OPS
    assert product_flops(_task("SoftmaxV2", [(1, 1000), (1,)], (1, 1000))) == 0
