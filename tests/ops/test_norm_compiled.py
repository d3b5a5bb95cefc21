"""LayerNorm prepared on its compiled path (openge.ops.norm_compiled) against the NumPy kernel
and an independent float64 formula; shapes it does not cover keep the NumPy kernel."""

from __future__ import annotations

import numpy as np
import pytest

from openge.ops.registry import get_schema

pytest.importorskip("numba")
RNG = np.random.default_rng(9)


@pytest.mark.parametrize(
    ("shape", "axis", "pshape", "size"),
    [
        ((2, 64, 128), -1, (128,), "small"),  # serial twin
        ((4, 197, 384), 2, (384,), "large"),  # parallel loop
        ((3, 8, 16), 1, (8, 16), "small"),  # two normalized axes
    ],
)
def test_layer_norm_prepared_matches_kernel(shape, axis, pshape, size):
    schema = get_schema("LayerNorm")
    x = np.zeros(shape, np.float32)
    g = RNG.standard_normal(pshape).astype(np.float32)
    b = RNG.standard_normal(pshape).astype(np.float32)
    a = axis % len(shape)
    stat = shape[:a] + (1,) * (len(shape) - a)
    outs = [np.empty(shape, np.float32), np.empty(stat, np.float32), np.empty(stat, np.float32)]
    attrs = {"begin_norm_axis": axis, "epsilon": 1e-5}  # the kernel's attrs
    run = schema.prepare([x, g, b], outs, [False, True, True], **attrs)
    assert run is not None
    for _ in range(2):
        x[...] = RNG.standard_normal(shape) * 4 + 1
        run()
        want = [np.empty_like(o) for o in outs]
        schema.kernel([x, g, b], want, **attrs)
        for got, exp in zip(outs, want):
            np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5)
        x64 = x.astype(np.float64)
        axes = tuple(range(a, len(shape)))
        mu = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mu) ** 2).mean(axis=axes, keepdims=True)
        ref = (x64 - mu) / np.sqrt(var + 1e-5) * g + b
        np.testing.assert_allclose(outs[0], ref, rtol=1e-5, atol=1e-5)


def test_layer_norm_declines_what_it_does_not_cover():
    schema = get_schema("LayerNorm")
    attrs = {"begin_norm_axis": -1, "epsilon": 1e-5}
    x = np.zeros((4, 8), np.float16)
    outs = [
        np.empty((4, 8), np.float16),
        np.empty((4, 1), np.float16),
        np.empty((4, 1), np.float16),
    ]
    g = np.ones(8, np.float16)
    assert schema.prepare([x, g, g], outs, [False, True, True], **attrs) is None  # float16
    x = np.zeros((4, 8), np.float32)
    outs = [
        np.empty((4, 8), np.float32),
        np.empty((4, 1), np.float32),
        np.empty((4, 1), np.float32),
    ]
    g1 = np.ones(1, np.float32)  # a broadcast gamma
    assert schema.prepare([x, g1, g1], outs, [False, True, True], **attrs) is None
