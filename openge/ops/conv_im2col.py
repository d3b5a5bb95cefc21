"""Convolutions as im2col panels on openge's own GEMM micro-kernel (ops layer): float32 NCHW
convolutions without groups that no more specific path takes — the 7×7 and 3×3 stride-2
stems, strided 3×3 and 1×1 convolutions, 5×5 and 11×11 filters, 3×3 convolutions on planes
too small for Winograd — with bias, residual and activation fused (openge.kernels.im2col).
With at most :data:`DIRECT_MAX_ROWS` output channels per group the windows are read in place
from the padded stride phases (``conv_direct``) instead of copied into panels: few tiles
share each panel there, so the copy is what costs. At more than one thread the team builds
the phases too, in bands of phase rows, before it shares the product: each thread writes the
rows its part of the product reads first. The caller alone wrote them before, and the other
core read its half across (two threads, an AVX-512 Zen 4 VM: mobilenet_v2's stem, 3 → 32
at 224² stride 2, 250 → 180 µs; squeezenet's 16 → 64 3×3 at 55² 326 → 312 µs).

They used to build an im2col matrix from a strided view with NumPy and hand it to numpy's
OpenBLAS; both steps cost about as much as the products (resnet18's stem: 0.6 ms to copy the
windows, 2.6 ms of GEMM at 92 GFLOP/s, where ONNX Runtime takes 1.7 ms for the convolution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openge import kernels

#: Output positions of a work item (its panels, at most KC × BLOCK floats per pass over K,
#: stay in L2 while every block of output channels is multiplied into them).
BLOCK = 256
#: Planes of up to this many output positions are one block.
MAX_BLOCK = 384
#: Products (2·Cout·K·P flops per sample) from which a convolution is shared by openge's
#: threads.
SPLIT_FLOPS = 2_000_000
#: A sample's padded stride phases may take this many bytes, or 4× the sample's input and
#: output if more: a hostile geometry (pads and dilation of 10⁶ around a 1×1 output) keeps
#: the NumPy kernel instead of a huge scratch.
MIN_PHASES_BYTES = 64 << 20
#: Most idle columns of the last panel, as a share of the plane. 7×7 planes (15 of 64 idle)
#: still win over the generic path since the filter is packed and prefetched (resnet18's
#: 512 → 512 3×3 at 7²: 3.5 → 2.95 ms); 4×4 and smaller planes do not.
MAX_WASTE = 1 / 3
#: Fewest output channels per group (fewer: tiles of mostly idle rows).
MIN_GROUP_ROWS = 8
#: Most output channels per group for the direct path (windows read in place from the
#: phases, openge.kernels.im2col.conv_direct). With few rows each copied panel is used by few
#: tiles and the copy is what costs: squeezenet's 16 → 64 3×3 at 55² 0.48 → 0.44 ms,
#: mobilenet's 3 → 32 3×3 stride-2 stem 0.35 → 0.25, resnet's 3 → 64 7×7 stem 2.09 → 1.79,
#: zfnet's 3 → 96 7×7 2.81 → 2.31 (one core, Intel Xeon AVX-512). With 128 and more the
#: packed panels win (32 → 128 at 27²: 0.37 against 0.41).
DIRECT_MAX_ROWS = 96
#: Most extra positions of the direct path's grid (each output row computed PW wide, the
#: windows across a row's end dropped), as a share of the plane: 3×3 at 55² computes 3.6 %
#: more, at 28² 7 %; at 13² (15 %) the packed panels won (64 → 256: 0.37 against 0.44 ms).
DIRECT_MAX_GRID_WASTE = 1 / 8
#: Grid positions of a direct work item (tiles of up to 96 channels × 512 positions, 192
#: KiB, stay in L2 until the epilogue stores them); grids of up to 768 are one item.
DIRECT_BLOCK = 512
DIRECT_MAX_BLOCK = 768
#: Fewest output channels of an item when a convolution is cut along its channels.
MIN_ROWS = 48


def float32_operands(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    residual: np.ndarray | None,
    groups: int = 1,
) -> bool:
    """Whether a convolution's arrays suit the compiled GEMM paths (this module's and
    openge.ops.conv_im2row's): float32 NCHW, C-contiguous, shapes that agree for ``groups``,
    a bias of Cout values, a residual of y's shape, and y overlapping neither x nor it."""
    return not (
        x.ndim != 4
        or f.ndim != 4
        or y.ndim != 4
        or not all(a.dtype == np.float32 for a in (x, f, y))
        or groups < 1
        or x.shape[1] != f.shape[1] * groups
        or f.shape[0] != y.shape[1]
        or f.shape[0] % groups
        or x.shape[0] != y.shape[0]
        or not (x.flags.c_contiguous and f.flags.c_contiguous and y.flags.c_contiguous)
        or (bias is not None and (bias.dtype != np.float32 or bias.size != y.shape[1]))
        or not y.size
        or np.shares_memory(x, y)
        or (
            residual is not None
            and (
                residual.shape != y.shape
                or residual.dtype != np.float32
                or not residual.flags.c_contiguous
                or np.shares_memory(residual, y)
            )
        )
    )


def balanced_block(positions: int, block: int, max_block: int, nr: int, threads: int) -> int:
    """Positions per work item: a plane of up to ``max_block`` positions is one item; a larger
    one is cut into blocks of whole ``nr``-column panels, from half to twice ``block`` wide,
    whose items split the most evenly over ``threads`` (the team's contiguous parts,
    openge.kernels.sync.bounds; an item costs its panels plus one for reading the filter),
    the width closest to ``block`` among equals. Blocks of ``block`` left a small last block:
    resnet's 3×3 stride-2 convolutions to 28² as 256, 256, 256 and 16 positions, one of two
    threads doing 512 and the other 272 (64 → 128 channels, two threads: 853 → 729 µs with
    blocks of 416; one thread unchanged, an AVX-512 Zen 4 VM)."""
    if positions <= max_block:
        return positions
    panels = -(-positions // nr)
    best_key, best = None, block
    low, high = max(1, block // (2 * nr)), max(1, 2 * block // nr)
    for width in range(low, high + 1):
        count = -(-panels // width)
        short = width - (panels - (count - 1) * width)  # panels the last block lacks
        parts = min(threads, count)
        span = 0
        for t in range(parts):  # items [count·t // parts, count·(t + 1) // parts)
            first, stop = count * t // parts, count * (t + 1) // parts
            span = max(span, (stop - first) * (width + 1) - (short if stop == count else 0))
        key = (span, abs(width * nr - block))
        if best_key is None or key < best_key:
            best_key, best = key, width * nr
    return best


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
    dilations as (h, w), pads as (top, bottom, left, right); ``groups`` ≥ 1, each group its
    own product); None where the path does not apply (another dtype, overlapping buffers, a
    small plane, numba missing). A ``constant_filter`` is packed now in blocks of MR rows
    (openge.kernels.gemm.pack_rows) and the model file's pages under it released; another
    is read in place at each run."""
    from openge.kernels import team
    from openge.ops.compiled import load, thread_scratch, warm, warm_drive

    if not float32_operands(x, f, bias, y, residual, groups) or min(*strides, *dilations) < 1:
        return None
    module = load("im2col")
    if module is None:
        return None
    n = x.shape[0]
    cg, h, w = f.shape[1], x.shape[2], x.shape[3]
    cout, _, kh, kw = f.shape
    coutg = cout // groups
    oh, ow = y.shape[2], y.shape[3]
    p = oh * ow
    if groups > 1 and (cg == 1 or coutg < MIN_GROUP_ROWS):
        return None  # depthwise-like: openge.ops.conv_depthwise's loops, not products
    if (kh, kw, *strides, *pads) == (1, 1, 1, 1, 0, 0, 0, 0):
        return None  # a plain product: copying x into panels costs as much as BLAS's call
    if -(-p // module.NR) * module.NR > p * (1 + MAX_WASTE):
        return None  # a small plane: the last panel's idle columns would cost too much
    (sh, sw), (dh, dw) = strides, dilations
    pt, pl = pads[0], pads[2]
    # the padded plane every tap of every output reads, rounded up to whole stride phases
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, pt + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, pl + w)
    ph, pw = -(-hp // sh), -(-wp // sw)
    k = cg * kh * kw
    if 4 * cg * sh * sw * ph * pw > max(MIN_PHASES_BYTES, 4 * (x[0].nbytes + y[0].nbytes)):
        return None  # an odd geometry (huge pads and dilations, tiny output): NumPy kernel
    taps = module.tap_offsets(cg, (kh, kw), (dh, dw), (sh, sw, ph, pw))
    extent = (oh - 1) * pw + ow  # positions of the direct path's grid
    direct = coutg <= DIRECT_MAX_ROWS and extent <= p * (1 + DIRECT_MAX_GRID_WASTE)
    threads = max(2, kernels.default_num_threads())
    if direct:
        block = balanced_block(extent, DIRECT_BLOCK, DIRECT_MAX_BLOCK, module.NR, threads)
    else:
        block = balanced_block(p, BLOCK, MAX_BLOCK, module.NR, threads)
    mr = module.MR
    rows = -(-coutg // mr) * mr
    if -(-(extent if direct else p) // block) < threads and coutg >= 2 * MIN_ROWS:
        rows = max(MIN_ROWS, -(-coutg // threads) // mr * mr)
    if direct:
        items = module.direct_item_count(coutg, oh, ow, pw, block, rows)
    else:
        items = module.item_count(coutg, p, block, rows)
    w3 = f.reshape(groups, coutg, k)
    if constant_filter:
        from openge.kernels.allocator import release_pages

        filters = [module.pack_rows(w3[g]) for g in range(groups)]
        release_pages(f)
        lda, astep = 1, mr
    else:
        filters = [w3[g].reshape(-1) for g in range(groups)]
        lda, astep = k, 1
    b = np.zeros(cout, np.float32) if bias is None else np.ascontiguousarray(bias.reshape(-1))
    b2 = b.reshape(groups, coutg)
    has_res = residual is not None
    y4 = y.reshape(n, groups, coutg, p)
    r4 = residual.reshape(n, groups, coutg, p) if residual is not None else y4
    x4 = x.reshape(n, groups, cg, h, w)
    code, lo, hi = act
    act_args = (code, np.float32(lo), np.float32(hi))
    shape = (ow, pw, block, rows, lda, astep)
    plane_floats = cg * sh * sw * ph * pw
    # the direct path's last tile reads up to NR floats past the phases: zeros there
    tail = module.NR if direct else 0
    if direct:
        scratch_floats = module.direct_scratch_floats(rows, block)
        whole, drive = module.conv_direct, module.conv_direct_drive
    else:
        scratch_floats = module.scratch_floats(k, block)
        whole, drive = module.conv, module.conv_drive

    def phases_buffer() -> np.ndarray:
        return thread_scratch("phases", 1, plane_floats + tail, np.float32)[0]

    def operand(buffer: np.ndarray) -> np.ndarray:
        """What the kernel reads: the phases flattened with their tail, or shaped."""
        return buffer if direct else buffer.reshape(cg, sh, sw, ph, pw)

    buffer = phases_buffer()
    xph_view = buffer[:plane_floats].reshape(cg, sh, sw, ph, pw)
    buffer[plane_floats:] = 0.0
    probe = (
        filters[0],
        operand(buffer),
        taps,
        y4[0, 0],
        b2[0],
        r4[0, 0],
        has_res,
        *act_args,
        shape,
    )
    scratch = thread_scratch("panels", 1, scratch_floats, np.float32)[0]
    if not (
        warm(module.phases, x4[0, 0], xph_view, pt, pl)
        and warm_drive(module.phases_drive, x4[0, 0], xph_view, pt, pl, ph)
        and warm(whole, *probe, scratch)
        and warm_drive(drive, *probe, scratch, items)
    ):
        return None
    big = 2 * coutg * k * p >= SPLIT_FLOPS and items > 1
    get = kernels.get_num_threads
    phases, phases_drive = module.phases, module.phases_drive
    units = [(i, g) for i in range(n) for g in range(groups)]

    def run() -> None:
        buffer = phases_buffer()
        xph = buffer[:plane_floats].reshape(cg, sh, sw, ph, pw)
        if tail:
            buffer[plane_floats:] = 0.0  # the buffer is shared with other tasks
        source = operand(buffer)
        panels = thread_scratch("panels", 1, scratch_floats, np.float32)[0]
        count = min(get(), items) if big else 1
        for i, g in units:
            if count > 1:  # each thread writes the phase rows its part reads first
                plane = (x4[i, g], xph, pt, pl)
                team.run(phases_drive, phases, plane, ph, count * team.PARTS_PER_THREAD, count)
            else:
                phases(x4[i, g], xph, pt, pl)
            args = (
                filters[g],
                source,
                taps,
                y4[i, g],
                b2[g],
                r4[i, g],
                has_res,
                *act_args,
                shape,
                panels,
            )
            if count > 1:
                team.run(drive, whole, args, items, count * team.PARTS_PER_THREAD, count)
            else:
                whole(*args)

    return run


__all__ = [
    "BLOCK",
    "DIRECT_BLOCK",
    "DIRECT_MAX_BLOCK",
    "DIRECT_MAX_GRID_WASTE",
    "DIRECT_MAX_ROWS",
    "MAX_BLOCK",
    "MAX_WASTE",
    "MIN_GROUP_ROWS",
    "MIN_PHASES_BYTES",
    "MIN_ROWS",
    "SPLIT_FLOPS",
    "balanced_block",
    "float32_operands",
    "prepare",
]
