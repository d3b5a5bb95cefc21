"""An independent float64 3×3 stride-1 convolution for the Winograd tests (written here, not
taken from openge)."""

from __future__ import annotations

import numpy as np


def direct_3x3(x: np.ndarray, f: np.ndarray, bias, pads) -> np.ndarray:
    """float64 3×3 stride-1 convolution, padded with zeros (top, bottom, left, right)."""
    pt, pb, pl, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, _, hp, wp = xp.shape
    oh, ow = hp - 2, wp - 2
    out = np.zeros((n, f.shape[0], oh, ow))
    for i in range(3):
        for j in range(3):
            out += np.einsum(
                "oc,nchw->nohw", f[:, :, i, j].astype(np.float64), xp[:, :, i : i + oh, j : j + ow]
            )
    if bias is not None:
        out += bias.astype(np.float64).reshape(1, -1, 1, 1)
    return out
