"""Depthwise convolutions (and grouped or full ones with few taps per output, such as a first
layer on RGB) on the compiled kernel openge.kernels.depthwise (ops layer): the activation of a
FusedConv2D epilogue recognized and fused into the convolution's store.

A MobileNet-style block runs depthwise 3×3/5×5 + bias + ReLU6 (or hard-swish) on every plane;
with the activation done while each output row is still in L1 the whole op is one pass over
the output instead of two or three. Used by Conv2D's and FusedConv2D's ``prepare`` for NCHW
float32/float64 depthwise convolutions (channel multiplier allowed), one of three kernels:
- at channel multiplier 1 and narrow output planes (:func:`_prefer_channels_last`: in
  float32 up to 14 wide, 28 for 3×3 with few padded channels, 7 for "same" stride-1
  planes or 14 with 5×5 filters): the channels-last kernel, 64 channels at a time — except
  3×3 filters at column stride 2 with at least 16 output columns (:func:`_stride2_lanes_fit`),
  which the row kernel's 16-lane path runs faster;
- stride 1 with output planes the input's size (MobileNet's and EfficientNet's "same"
  padding, most of their depthwise layers): the flat-plane kernel, each tap one contiguous
  loop over a whole plane, whatever its width;
- otherwise, output rows at least :data:`MIN_WIDTH` wide: the row kernel (stride phases);
  the rest keeps the channels-last einsum path of openge.ops.conv.
At more than one openge thread each runs on openge's thread team (openge.kernels.team).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Output widths from which the compiled row kernel beats the channels-last einsum path
#: (measured, one thread, AVX-512: 384×14² 178 vs 178 µs, 576×14² 247 vs 294 µs, but
#: 576×7² (stride 2) 224 vs 116 µs and 960×7² 251 vs 112 µs); narrower planes with a
#: channel multiplier of 1 take the compiled channels-last kernel instead.
MIN_WIDTH = 14
#: Output widths up to which a float32 depthwise convolution (channel multiplier 1) that is
#: not a "same" stride-1 one takes the compiled channels-last kernel (one AVX2 Zen 3 core,
#: hard-swish, against the row kernel: 240 × 28² → 14² 73 vs 189 µs, 576 × 14² → 7² 49 vs
#: 244, 672 × 14² → 7² 5×5 83 vs 396).
CL_MAX_WIDTH = 14
#: ... and up to this width with 3×3 filters when whole channel blocks add at most half
#: again (144 × 56² → 28²: 204-221 vs 261 µs at one thread, 239 vs 252 at two; 72 channels,
#: padded to 128, lose, 201 vs 155; 5×5 filters lose at two threads, 431 vs 312, its three
#: channel blocks leaving one thread idle a third of the time).
CL_WIDE_MAX_WIDTH = 28
#: "Same" stride-1 planes up to this width take it instead of the flat kernel (1152 × 7² 5×5
#: 103 vs 147 µs, 3×3 64 vs 91; at 14² only 5×5 filters win: 672 channels 228 vs 265, while
#: 3×3 ties, 97 vs 98 for 480 channels, and 184 channels lose, 42 vs 38).
CL_SAME_MAX_WIDTH = 7
#: Multiply-adds per output (input channels per group × kh × kw) up to which a grouped or full
#: convolution runs here too (a first layer on RGB: 3 × 3 × 3); beyond, im2col + GEMM wins.
MAX_TAPS = 75

#: Output channels per group from which a full or grouped convolution (not depthwise) is
#: left to openge.ops.conv_im2col's GEMM panels, in float32 (a 3×32 RGB stem: 0.88 → 0.3 ms).
GEMM_ROWS = 16

#: Multiply-adds from which a convolution is shared by the threads. The team hands parts out
#: in a few atomic operations, and a depthwise run whole on one core after a product shared
#: by two reads half its input from the other core, then leaves the next product's team
#: thread reading all of it there: mobilenet_v2's 192-channel 28² → 14² (338k) took 0.18 ms
#: and the 1×1 after it 0.15 at 2 threads, 0.10 and 0.05 shared (2^19 before).
PARALLEL_WORK = 1 << 17

# activation codes of openge.kernels.depthwise (the module itself imports numba)
_NONE, _RELU, _CLIP, _HARD_SWISH, _HARD_SIGMOID, _SILU, _X_HARD_SIGMOID, _SIGMOID = range(8)


def _scalar(operands: Sequence[np.ndarray | None], constant: Sequence[bool], k: int) -> Any:
    """The value of operand ``k`` when it is a constant one-element array, else None."""
    if k <= 0 or k >= len(operands) or not constant[k]:
        return None
    a = operands[k]
    if a is None or a.size != 1:
        return None
    return a.reshape(-1)[0]


def activation(
    steps: Sequence[tuple[str, Sequence[int], dict[str, Any]]],
    operands: Sequence[np.ndarray | None],
    constant: Sequence[bool],
) -> tuple[int, float, float] | None:
    """(code, lo, hi) of an epilogue that is one activation of the result (operand 0), or
    None. ``steps`` are (op, args, kernel attrs); ``operands`` the epilogue operands (0 = the
    result) with ``constant`` telling which are weights."""
    if not steps:
        return _NONE, 0.0, 0.0
    ops = [(op, list(args)) for op, args, _ in steps]
    if ops == [("Relu", [0])]:
        return _RELU, 0.0, 0.0
    if ops == [("Relu6", [0])]:
        return _CLIP, 0.0, 6.0
    if ops == [("HardSwish", [0])]:
        return _HARD_SWISH, 0.0, 0.0
    if ops == [("HardSigmoid", [0])]:
        kwargs = steps[0][2]
        return _HARD_SIGMOID, float(kwargs["alpha"]), float(kwargs["beta"])
    float32 = operands[0] is not None and operands[0].dtype == np.float32
    if ops == [("Sigmoid", [0])] and float32:
        return _SIGMOID, 0.0, 0.0  # a squeeze-excite's gate (float32 exp: mathf32)
    times_x = [("Mul", [0, -1])], [("Mul", [-1, 0])]
    if len(ops) == 2 and ops[0] == ("HardSigmoid", [0]) and ops[1:] in times_x:
        kwargs = steps[0][2]  # x·HardSigmoid(x, 1/6, 1/2): ONNX's HardSwish as parsed
        return _X_HARD_SIGMOID, float(kwargs["alpha"]), float(kwargs["beta"])
    silu = len(ops) == 2 and ops[0] == ("Sigmoid", [0]) and ops[1:] in times_x
    if silu and float32:
        return _SILU, 0.0, 0.0  # x·Sigmoid(x): EfficientNet's SiLU (float32 exp: mathf32)
    if len(ops) == 1 and ops[0][0] == "ClipByValue" and ops[0][1][0] == 0:
        lo = _scalar(operands, constant, ops[0][1][1])
        hi = _scalar(operands, constant, ops[0][1][2])
        if lo is not None and hi is not None:
            return _CLIP, lo, hi
    if len(ops) == 2 and ops[0][0] == "Maximum" and ops[1][0] == "Minimum":
        (a0, a1), (b0, b1) = ops[0][1], ops[1][1]
        lo = _scalar(operands, constant, a1 if a0 == 0 else a0 if a1 == 0 else -1)
        hi = _scalar(operands, constant, b1 if b0 == -1 else b0 if b1 == -1 else -1)
        if lo is not None and hi is not None:
            return _CLIP, lo, hi
    return None


def prepare(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    pads: Sequence[int],
    act: tuple[int, float, float] = (_NONE, 0.0, 0.0),
    constant_filter: bool = False,
) -> Callable[[], None] | None:
    """A closure running the depthwise convolution of ``x`` (N, C, H, W) with ``f``
    (C·M, 1, kh, kw) plus ``bias`` into ``y`` followed by ``act`` (see :func:`activation`),
    compiled now; None when the compiled kernel does not apply. Planes narrower than
    :data:`MIN_WIDTH` (channel multiplier 1) take the channels-last kernel, whose filter
    rearrangement is made once when ``constant_filter``."""
    from openge.ops.compiled import launcher, load, read_only, warm, warm_drive

    if (
        x.ndim != 4
        or f.ndim != 4
        or y.ndim != 4
        or f.shape[1] * f.shape[2] * f.shape[3] > MAX_TAPS
        or (f.shape[1] > 1 and f.shape[2] * f.shape[3] == 1)  # 1×1: a GEMM (conv_pointwise)
        or (  # enough output channels per group for GEMM tiles: openge.ops.conv_im2col
            f.shape[1] > 1
            and y.dtype == np.float32
            and f.shape[0] // max(1, x.shape[1] // f.shape[1]) >= GEMM_ROWS
        )
        or x.shape[1] % f.shape[1]
        or y.shape[1] % (x.shape[1] // f.shape[1])
        or f.shape[0] != y.shape[1]
        or (
            y.shape[3] < MIN_WIDTH
            and not _channels_last_fits(x, f)
            and not _flat_fits(x, f, y, strides, dilations, pads)
        )
        or y.dtype not in (np.float32, np.float64)
        or x.dtype != y.dtype
        or f.dtype != y.dtype
        or not (x.flags.c_contiguous and f.flags.c_contiguous and y.flags.c_contiguous)
        or (bias is not None and (bias.dtype != y.dtype or bias.size != y.shape[1]))
        or (bias is not None and not bias.flags.c_contiguous)  # so reshape is a view
        or not y.size
    ):
        return None
    module = load("depthwise")
    if module is None:
        return None
    b = read_only(np.zeros(y.shape[1], y.dtype) if bias is None else bias.reshape(-1))
    f = read_only(f)
    code, lo, hi = act
    t = y.dtype.type
    big = y.size * f.shape[1] * f.shape[2] * f.shape[3] >= PARALLEL_WORK
    rest = (strides[0], strides[1], dilations[0], dilations[1], pads[0], pads[2])
    rest = (*rest, code, t(lo), t(hi))
    same = _flat_fits(x, f, y, strides, dilations, pads)
    lanes = _stride2_lanes_fit(x, f, y, strides, dilations, pads, module)
    if not lanes and _prefer_channels_last(x, f, y, same, module.CL_BLOCK):
        return _channels_last(module, x, f, b, y, rest, big, constant_filter)
    if same:
        return _flat(module, x, f, b, y, rest, big)
    args = (x, f, b, y, *rest)
    planes = y.shape[0] * y.shape[1]
    if not (
        warm(module.depthwise_act, *args) and warm_drive(module.depthwise_act_drive, *args, planes)
    ):
        return None
    return launcher(module.depthwise_act, big, *args, driven=(module.depthwise_act_drive, planes))


def _stride2_lanes_fit(
    x: np.ndarray,
    f: np.ndarray,
    y: np.ndarray,
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    module: Any,
) -> bool:
    """Whether the row kernel takes this convolution through its 16-lane stride-2 path
    (openge.kernels.stride2_lanes): depthwise, 3 filter columns at column stride 2 without
    column dilation, and the rows the kernel's own rule (``row_fits``, called here in its
    Python form) admits: 3 filter rows, at most one left padding column, at least 16 output
    columns whose taps end inside the row. There it beats the channels-last kernel on the
    planes that would take it (144 × 56² → 28², one thread 166 → 113 µs, two 112 → 64; 96 ×
    56² 113 → 75 and 73 → 46; 256 × 56² 285 → 199 and 147 → 107; AVX-512 Zen 4)."""
    left, wd, ow = pads[2], x.shape[3], y.shape[3]
    interior = module.interior_columns.py_func(wd, left, ow)
    return (
        f.shape[1] == 1
        and f.shape[3] == 3
        and strides[1] == 2
        and dilations[1] == 1
        and module.row_fits.py_func(f.shape[2], left, interior)
    )


def _prefer_channels_last(
    x: np.ndarray, f: np.ndarray, y: np.ndarray, same: bool, block: int
) -> bool:
    """Whether the channels-last kernel is the one (measured per shape: decisions.md, "The
    channels-last depthwise kernel in registers"): in float32 — where it moves 8 × 8 blocks
    and keeps its sums in registers — output rows up to :data:`CL_MAX_WIDTH` wide, or
    :data:`CL_WIDE_MAX_WIDTH` for 3×3 filters when padding the channels to whole blocks adds
    at most half again; "same" stride-1 planes (the flat kernel's) up to
    :data:`CL_SAME_MAX_WIDTH`, or :data:`CL_MAX_WIDTH` with 5×5 filters. Other dtypes:
    narrow planes the flat kernel does not take."""
    if not _channels_last_fits(x, f):
        return False
    ow, c = y.shape[3], x.shape[1]
    if y.dtype != np.float32:
        return not same and ow <= CL_MAX_WIDTH
    if same:
        return ow <= CL_SAME_MAX_WIDTH or (ow <= CL_MAX_WIDTH and f.shape[2] * f.shape[3] >= 25)
    padded = -(-c // block) * block
    wide = ow <= CL_WIDE_MAX_WIDTH and 2 * padded <= 3 * c and f.shape[2] * f.shape[3] <= 9
    return ow <= CL_MAX_WIDTH or wide


def _flat_fits(
    x: np.ndarray,
    f: np.ndarray,
    y: np.ndarray,
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
) -> bool:
    """Whether the flat-plane kernel applies: depthwise (any channel multiplier) at stride 1
    with output planes the input's size ("same" padding: pads (top, bottom, left, right)
    adding up to the filter's dilated extent)."""
    return (
        f.shape[1] == 1
        and tuple(strides) == (1, 1)
        and y.shape[2:] == x.shape[2:]
        and min(pads) >= 0
        and pads[0] + pads[1] == (f.shape[2] - 1) * dilations[0]
        and pads[2] + pads[3] == (f.shape[3] - 1) * dilations[1]
    )


def _flat(
    module: Any, x: np.ndarray, f: np.ndarray, b: np.ndarray, y: np.ndarray, rest: tuple, big: bool
) -> Callable[[], None] | None:
    """The flat-plane kernel (stride 1, "same" padding): every tap one contiguous run over a
    whole plane, reads that wrap into the next row masked (masks made once, here)."""
    from openge.ops.compiled import launcher, warm, warm_drive

    _, _, dh, dw, top, left, *act = rest
    h, wd = x.shape[2], x.shape[3]
    masks = module.flat_masks(h, wd, f.shape[3], dw, left)
    args = (x.reshape(-1), f, b, y.reshape(-1), masks, x.shape[1], h, wd, dh, dw, top, left)
    args = (*args, *act)
    planes = y.shape[0] * y.shape[1]
    drive = module.depthwise_flat_act_drive
    if not (warm(module.depthwise_flat_act, *args) and warm_drive(drive, *args, planes)):
        return None
    return launcher(module.depthwise_flat_act, big, *args, driven=(drive, planes))


def _channels_last_fits(x: np.ndarray, f: np.ndarray) -> bool:
    """Whether the channels-last kernel applies: depthwise with a channel multiplier of 1."""
    return f.shape[1] == 1 and f.shape[0] == x.shape[1]


def _channels_last(
    module: Any,
    x: np.ndarray,
    f: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    rest: tuple,
    big: bool,
    constant_filter: bool,
) -> Callable[[], None] | None:
    """The channels-last kernel for narrow planes (7×7, 14×14 at stride 2), the filter
    rearranged to (kh, kw, C) once (constant) or before each run."""
    from openge.ops.compiled import launcher, read_only, warm, warm_drive

    c, kh, kw = f.shape[0], f.shape[2], f.shape[3]
    block = module.CL_BLOCK
    wt = np.zeros((kh, kw, -(-c // block) * block), f.dtype)  # channels padded with zeros
    source = f.reshape(c, kh, kw).transpose(1, 2, 0)
    np.copyto(wt[:, :, :c], source)
    args = (x, read_only(wt), b, y, *rest)
    items = y.shape[0] * -(-c // block)
    drive = module.depthwise_cl_act_drive
    if not (warm(module.depthwise_cl_act, *args) and warm_drive(drive, *args, items)):
        return None
    run = launcher(module.depthwise_cl_act, big, *args, driven=(drive, items))
    if constant_filter:
        return run

    def rearrange_and_run() -> None:
        np.copyto(wt[:, :, :c], source)
        run()

    return rearrange_and_run


__all__ = [
    "CL_MAX_WIDTH",
    "CL_SAME_MAX_WIDTH",
    "CL_WIDE_MAX_WIDTH",
    "GEMM_ROWS",
    "MAX_TAPS",
    "MIN_WIDTH",
    "PARALLEL_WORK",
    "activation",
    "prepare",
]
