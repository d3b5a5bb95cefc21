"""Convolutions on small output planes with the positions as the product's rows (ops layer):
float32 NCHW convolutions with a constant filter, one group, and at most
:data:`MAX_POSITIONS` output positions — a network's last stages (7×7, 14×14), 1×1 and
3×3 alike, with bias, residual and activation fused (openge.kernels.im2row).

At 7×7, numpy's OpenBLAS ran resnet50's 2048 ↔ 512 1×1 convolutions at 60-70 GFLOP/s and
openge's im2col panels waste 15 of every 64 columns; with the positions as rows, tiles of 7
cut the plane exactly and the filter streams once, contiguously.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openge import kernels
from openge.ops.conv_im2col import float32_operands

#: Output planes up to this many positions per sample take this path (measured on one
#: AVX-512 core against im2col panels, ms: 3×3 512 → 512 at 7² 2.59 → 1.91, 64 → 256 at 13²
#: 0.51 → 0.47, 256 → 256 at 10² 1.44 → 1.11; at 28² it loses, 1.31 → 1.81) ...
MAX_POSITIONS = 196
#: ... and a plain 1×1 convolution (stride 1, unpadded) up to this many where the CPU has
#: 512-bit vectors, against numpy's OpenBLAS (2048 → 512 at 7² 1.09 → 0.81 ms, 960 → 160
#: 0.153 → 0.124; at 14² BLAS wins, 256 → 1024 0.78 against 0.94) ...
MAX_PLAIN_POSITIONS = 64
#: ... and up to this many with narrower vectors, where the micro-kernel's tile is 4 × 24:
#: none. On an AVX2 Zen 3 core numpy's OpenBLAS (openge.ops.conv_pointwise) beat it on
#: every 7² shape of efficientnet_b0 and resnet50 (one thread, ms: 320 → 1280 0.559 → 0.521,
#: 1152 → 320 0.502 → 0.462, 672 → 192 0.182 → 0.168, 512 → 2048 1.809 → 1.457, 2048 →
#: 512 1.502 → 1.353; two threads 4-25 % too).
MAX_PLAIN_POSITIONS_NARROW = 0
#: Fewest output positions per sample: one tile of rows (MR_T = 7 on AVX-512). Fewer — a
#: squeeze-excite's 1×1 plane — make a matrix-vector product, which numpy's BLAS runs from a
#: smaller code path (openge.ops.conv_pointwise; in mobilenet_v3, right after a large
#: convolution, 18 → 72 at 1²: 0.053 → 0.015 ms).
MIN_POSITIONS = 7
#: Fewest output channels: one whole panel of NR_T (densenet's 128 → 32 3×3 at 7², a panel
#: two-thirds idle, lost to im2col: 0.113 → 0.120 ms).
MIN_CHANNELS = 48
#: Fewest channel panels per thread when openge's threads share a convolution (densenet's
#: 1×1 convolutions to 128 channels at 7², three panels, took 0.143 ms on two threads through
#: BLAS and 0.156 split over two here, 0.121 on one).
MIN_PANELS_PER_THREAD = 2
#: Products (2·Cout·K·P flops per sample) from which openge's threads share a convolution.
SPLIT_FLOPS = 2_000_000
#: Largest columns scratch (K × P floats) in bytes: a hostile geometry keeps another path.
MAX_COLUMNS_BYTES = 64 << 20


def plain_positions() -> int:
    """Most output positions of a plain 1×1 convolution on this path, for this CPU's vector
    width (MAX_PLAIN_POSITIONS with 512-bit vectors, else MAX_PLAIN_POSITIONS_NARROW); call
    with numba loaded."""
    from openge.ops.compiled import wide_vectors

    return MAX_PLAIN_POSITIONS if wide_vectors() else MAX_PLAIN_POSITIONS_NARROW


def prepare(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    residual: np.ndarray | None = None,
    act: tuple[int, float, float] = (0, 0.0, 0.0),
    groups: int = 1,
    constant_filter: bool = False,
) -> Callable[[], None] | None:
    """A closure computing ``act(conv(x, f) + bias [+ residual])`` into ``y`` (strides,
    dilations as (h, w), pads as (top, bottom, left, right)), the filter packed now; None
    where the path does not apply (a filter that may change, groups, another dtype, a large
    plane, few output channels, overlapping buffers, numba missing)."""
    from openge.kernels import team
    from openge.kernels.allocator import release_pages
    from openge.ops.compiled import load, thread_scratch, warm, warm_drive

    if (
        not constant_filter
        or groups != 1
        or not float32_operands(x, f, bias, y, residual)
        or y.shape[1] < MIN_CHANNELS
        or not MIN_POSITIONS <= y.shape[2] * y.shape[3] <= MAX_POSITIONS
        or min(*strides, *dilations) < 1
    ):
        return None
    module = load("im2row")
    phase_module = load("im2col")
    if module is None or phase_module is None:
        return None
    n, c, h, w = x.shape
    cout, _, kh, kw = f.shape
    oh, ow = y.shape[2], y.shape[3]
    p = oh * ow
    k = c * kh * kw
    (sh, sw), (dh, dw) = strides, dilations
    pt, pl = pads[0], pads[2]
    plain = (kh, kw, sh, sw, *pads) == (1, 1, 1, 1, 0, 0, 0, 0)
    if plain and p > plain_positions():
        return None  # numpy's OpenBLAS on the 1×1 product (openge.ops.conv_pointwise)
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, pt + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, pl + w)
    ph, pw = -(-hp // sh), -(-wp // sw)
    plane_floats = c * sh * sw * ph * pw
    if not plain and 4 * max(plane_floats, k * p) > max(
        MAX_COLUMNS_BYTES, 4 * (x[0].nbytes + y[0].nbytes)
    ):
        return None  # an odd geometry (huge pads or dilations around a tiny output)
    taps = phase_module.tap_offsets(c, (kh, kw), (dh, dw), (sh, sw, ph, pw))
    wt = module.pack_filter(f.reshape(cout, k))
    b = np.zeros(cout, np.float32) if bias is None else np.ascontiguousarray(bias.reshape(-1))
    has_res = residual is not None
    y3 = y.reshape(n, cout, p)
    r3 = residual.reshape(n, cout, p) if residual is not None else y3
    x3 = x.reshape(n, c, h * w)
    code, lo, hi = act
    act_args = (code, np.float32(lo), np.float32(hi))
    panels = module.panel_count(cout)
    items = module.item_count(cout)

    def scratch(name: str, floats: int, shape: tuple[int, ...]) -> np.ndarray:
        return thread_scratch(name, 1, floats, np.float32)[0][: int(np.prod(shape))].reshape(shape)

    out = scratch("im2row.out", p * cout, (p, cout))
    if plain:  # x itself is the columns
        whole, drive = module.conv, module.conv_drive
        probe: tuple = (x3[0], wt, out, y3[0], b, r3[0])
    else:  # phases and columns built per sample (per thread when shared)
        whole, drive = module.conv_windows, module.conv_windows_drive
        xph0 = scratch("phases", plane_floats, (c, sh, sw, ph, pw))
        a0 = scratch("im2row.cols", k * p, (k, p))
        probe = (x[0], xph0, taps, a0, ow, pt, pl, wt, out, y3[0], b, r3[0])
    if not (
        warm(whole, *probe, has_res, *act_args)
        and warm_drive(drive, *probe, has_res, *act_args, items)
    ):
        return None
    release_pages(f)  # the packed copy is read from now on
    big = 2 * cout * k * p >= SPLIT_FLOPS and panels >= 2 * MIN_PANELS_PER_THREAD
    get = kernels.get_num_threads

    def run() -> None:
        yt = scratch("im2row.out", p * cout, (p, cout))
        count = min(get(), panels // MIN_PANELS_PER_THREAD) if big else 1
        for i in range(n):
            if plain:
                args = (x3[i], wt, yt, y3[i], b, r3[i], has_res, *act_args)
            else:
                xph = scratch("phases", plane_floats, (c, sh, sw, ph, pw))
                a = scratch("im2row.cols", k * p, (k, p))
                args = (x[i], xph, taps, a, ow, pt, pl, wt, yt, y3[i], b, r3[i], has_res)
                args = (*args, *act_args)
            if count > 1:
                team.run(
                    drive, whole, args, items, min(items, count * team.PARTS_PER_THREAD), count
                )
            else:
                whole(*args)

    return run


__all__ = [
    "MAX_COLUMNS_BYTES",
    "MAX_PLAIN_POSITIONS",
    "MAX_PLAIN_POSITIONS_NARROW",
    "MAX_POSITIONS",
    "MIN_CHANNELS",
    "MIN_PANELS_PER_THREAD",
    "MIN_POSITIONS",
    "SPLIT_FLOPS",
    "plain_positions",
    "prepare",
]
