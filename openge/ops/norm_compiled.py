"""LayerNorm's compiled path (ops layer): openge.kernels.norm bound to a task's arrays at load.

Applies to float32/float64 tensors whose gamma and beta cover exactly the normalized axes
(the usual transformer layer norm over the last axis); anything else keeps the NumPy kernel.
Results match the NumPy kernel within the conformance tolerance (sums in float64 here, in the
tensor's dtype there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def prepare_layer_norm(
    inputs: Sequence[np.ndarray | None],
    outputs: Sequence[np.ndarray],
    constant: Sequence[bool],
    *,
    begin_norm_axis: int,
    epsilon: float,
) -> Callable[[], None] | None:
    """LayerNorm's ``prepare``: a compiled closure, or None to keep the NumPy kernel."""
    del constant  # gamma and beta are read at each run; their shapes decide
    x, gamma, beta = inputs[0], inputs[1], inputs[2]
    y, mean, var = outputs[0], outputs[1], outputs[2]
    if x is None or gamma is None or beta is None or x.ndim == 0:
        return None
    dt = x.dtype
    if dt not in (np.float32, np.float64) or any(
        a.dtype != dt for a in (gamma, beta, y, mean, var)
    ):
        return None
    axis = begin_norm_axis % x.ndim
    inner = math.prod(x.shape[axis:])
    rows = math.prod(x.shape[:axis])
    arrays = (x, gamma, beta, y, mean, var)
    if (
        not inner
        or not rows
        or not all(a.flags.c_contiguous for a in arrays)
        or y.shape != x.shape
        or mean.size != rows
        or var.size != rows
    ):
        return None
    for p in (gamma, beta):
        if p.size != inner or np.broadcast_shapes(p.shape, x.shape) != x.shape:
            return None
    from openge.ops.compiled import (
        MIN_ELEMENTS,
        TEAM_ELEMENTS,
        launcher,
        load,
        loaded_here,
        warm,
        warm_drive,
    )

    if x.size < MIN_ELEMENTS and not loaded_here():
        return None  # a small model does not import numba for its layer norms alone

    module = load("norm")
    if module is None:
        return None
    args = (
        x.reshape(rows, inner),
        gamma.reshape(inner),
        beta.reshape(inner),
        y.reshape(rows, inner),
        mean.reshape(rows),
        var.reshape(rows),
        float(epsilon),
    )
    drive = module.layer_norm_drive
    if not (warm(module.layer_norm, *args) and warm_drive(drive, *args, rows)):
        return None
    # rows on openge's thread team from its threshold for row kernels (openge.ops.compiled):
    # through openge.kernels.blas's pool they did not scale at two threads, its thread
    # waiting for the core where the team's thread still spun after the previous kernel
    # (vit_block's 197 × 768 layer norms: ~290 µs at one thread, 250-490 at two in two
    # runs; on the team 160-260)
    big = x.size >= TEAM_ELEMENTS and rows >= 2
    return launcher(module.layer_norm, big, *args, driven=(drive, rows))


__all__ = ["prepare_layer_norm"]
