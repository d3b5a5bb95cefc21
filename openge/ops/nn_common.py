"""Helpers shared by the nn op families (conv, pooling, normalization, ...): dtype sets, attr
checks, output sizes, padding and the strided tap views (ops layer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID, UNSUPPORTED
from openge.graph import DataType
from openge.ops.common import (
    FLOAT_TYPES,
)
from openge.ops.schema import InferContext

_I8 = DataType.DT_INT8
_I32 = DataType.DT_INT32
_CONV_TYPES = FLOAT_TYPES | {_I8}
_MATMUL_TYPES = FLOAT_TYPES | {_I32}
_MAXPOOL_TYPES = FLOAT_TYPES | {
    DataType.DT_INT8,
    DataType.DT_INT16,
    DataType.DT_INT32,
    DataType.DT_INT64,
    DataType.DT_UINT8,
    DataType.DT_UINT16,
}
_FORMATS_2D = ("NCHW", "NHWC")
_NORM_FORMATS = ("NCHW", "NHWC", "NCDHW", "NDHWC", "ND")


# ----- shared helpers -----------------------------------------------------------------------


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel computes in: float16 → float32, int8 → float64 (exact sums of
    int8 products), int32 → int64 (wraps to int32 at the end, as hardware does)."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.int8:
        return np.dtype(np.float64)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    return dtype


def _opt(inputs: Sequence[np.ndarray | None], index: int) -> np.ndarray | None:
    """Optional input ``index`` (None when omitted or not given at all)."""
    return inputs[index] if index < len(inputs) else None


def _store(out: np.ndarray, value: np.ndarray) -> None:
    """Write ``value`` into ``out`` (cast to out's dtype)."""
    np.copyto(out, value, casting="unsafe")


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """True when ``shape`` broadcasts to ``target`` without changing it (-1 matches anything)."""
    if len(shape) > len(target):
        return False
    tail = target[len(target) - len(shape) :]
    return all(s in (1, t) or s < 0 or t < 0 for s, t in zip(shape, tail, strict=True))


def _known(*dims: int) -> bool:
    return all(d >= 0 for d in dims)


def _hw_axes(fmt: str) -> tuple[int, int]:
    return (2, 3) if fmt == "NCHW" else (1, 2)


def _channel_axis(fmt: str, rank: int) -> int:
    """Channel axis for a layout name: 1 for NC…/ND, the last axis for N…C."""
    return 1 if fmt.startswith("NC") or fmt == "ND" else rank - 1


def _hw_pair(
    ctx: InferContext, name: str, fmt: str, minimum: int, nc_value: int = 1
) -> tuple[int, int]:
    """(h, w) entries of a 4-value attr in ``fmt`` order; N and C entries must be ``nc_value``."""
    values = ctx.attrs[name]
    if len(values) != 4:
        raise ctx.error(f"attr {name} = {values} must have 4 values, in {fmt} order")
    ha, wa = _hw_axes(fmt)
    if any(values[i] != nc_value for i in range(4) if i not in (ha, wa)):
        raise ctx.error(
            f"attr {name} = {values}: the N and C entries ({fmt} order) must be {nc_value}"
        )
    h, w = values[ha], values[wa]
    if h < minimum or w < minimum:
        raise ctx.error(f"attr {name} = {values}: the H and W entries must be ≥ {minimum}")
    return h, w


def _pads4(ctx: InferContext, name: str = "pads") -> tuple[int, int, int, int]:
    pads = ctx.attrs[name]
    if len(pads) != 4:
        raise ctx.error(f"attr {name} = {pads} must have 4 values [top, bottom, left, right]")
    if any(p < 0 for p in pads):
        raise ctx.error(f"attr {name} = {pads} must be ≥ 0")
    return pads[0], pads[1], pads[2], pads[3]


def _rank(ctx: InferContext, index: int, rank: int, what: str) -> tuple[int, ...]:
    shape = ctx.input(index).shape
    if len(shape) != rank:
        raise ctx.error(
            f"input {index} ({what}) must be {rank}-D, got shape {list(shape)}", SHAPE_INVALID
        )
    return shape


def _check_vector(ctx: InferContext, index: int, length: int, what: str) -> None:
    """Input ``index`` must be 1-D of ``length`` (unknown dims pass)."""
    shape = ctx.input(index).shape
    if len(shape) != 1 or (length >= 0 and shape[0] >= 0 and shape[0] != length):
        raise ctx.error(
            f"input {index} ({what}) must have shape [{length}], got {list(shape)}",
            SHAPE_INVALID,
        )


def _no_quant(ctx: InferContext, offset_w_index: int) -> None:
    if ctx.has_input(offset_w_index):
        raise ctx.error(
            f"input {offset_w_index} (offset_w) is not supported: openge has no quantized "
            "weight offsets; fold the offset into the weights",
            UNSUPPORTED,
        )
    if ctx.attrs.get("offset_x", 0) != 0:
        raise ctx.error(
            f"attr offset_x = {ctx.attrs['offset_x']} is not supported (only 0)", UNSUPPORTED
        )


def _out_dim(
    ctx: InferContext, what: str, size: int, k: int, s: int, d: int, p0: int, p1: int
) -> int:
    """Convolution output length; error when the dilated kernel exceeds the padded input."""
    if size < 0:
        return -1
    extent = d * (k - 1) + 1
    if size + p0 + p1 < extent:
        raise ctx.error(
            f"the {what} kernel extent {extent} (kernel {k}, dilation {d}) is larger than the "
            f"padded input ({size} + pads {p0} + {p1} = {size + p0 + p1})",
            SHAPE_INVALID,
        )
    return (size + p0 + p1 - extent) // s + 1


def _pad_hw(
    x: np.ndarray,
    fmt: str,
    top: int,
    left: int,
    height: int,
    width: int,
    fill: float | int,
    dtype: np.dtype,
) -> np.ndarray:
    """``x`` placed at (top, left) in a (height, width) spatial buffer of ``fill``, as ``dtype``.

    Returns ``x`` itself (cast if needed) when no padding is required.
    """
    ha, wa = _hw_axes(fmt)
    h, w = x.shape[ha], x.shape[wa]
    if top == 0 and left == 0 and height == h and width == w:
        return x.astype(dtype, copy=False)
    shape = list(x.shape)
    shape[ha], shape[wa] = height, width
    buf = np.full(shape, fill, dtype=dtype)
    idx = [slice(None)] * 4
    hh, ww = max(min(h, height - top), 0), max(min(w, width - left), 0)
    idx[ha], idx[wa] = slice(top, top + hh), slice(left, left + ww)
    src = [slice(None)] * 4
    src[ha], src[wa] = slice(0, hh), slice(0, ww)
    buf[tuple(idx)] = x[tuple(src)]
    return buf


class _Phases:
    """The padded input split into stride phases and flattened, so that every kernel tap is a
    contiguous shifted slice (no strided reads on the hot path).

    Phase ``(a, b)`` holds padded rows ``a::sh`` and cols ``b::sw``, flattened to
    ``(N, C, hq*wq)`` (NCHW) or ``(N, hq*wq, C)`` (NHWC). Results are computed on an
    ``oh × wq`` grid (``length`` flat positions) and cropped to ``ow`` columns by ``crop``.
    """

    __slots__ = ("flat", "fmt", "hq", "length", "oh", "ow", "sh", "sw", "wq")

    def __init__(
        self,
        x: np.ndarray,
        fmt: str,
        top: int,
        left: int,
        oh: int,
        ow: int,
        k: tuple[int, int],
        s: tuple[int, int],
        d: tuple[int, int],
        fill: float | int,
        dtype: np.dtype,
    ) -> None:
        (kh, kw), (sh, sw), (dh, dw) = k, s, d
        self.fmt, self.oh, self.ow, self.sh, self.sw = fmt, oh, ow, sh, sw
        self.hq = oh + (kh - 1) * dh // sh
        self.wq = ow + (kw - 1) * dw // sw
        self.length = (oh - 1) * self.wq + ow
        rows = sorted({i * dh % sh for i in range(kh)})
        cols = sorted({j * dw % sw for j in range(kw)})
        nchw = fmt == "NCHW"
        ha, wa = _hw_axes(fmt)
        h, w = x.shape[ha], x.shape[wa]
        self.flat: dict[tuple[int, int], np.ndarray] = {}
        for a in rows:
            for b in cols:
                if sh == sw == 1:
                    part = np.ascontiguousarray(
                        _pad_hw(x, fmt, top, left, self.hq, self.wq, fill, dtype)
                    )
                else:  # gather this phase straight from x: padded row a + sh*q
                    shape = list(x.shape)
                    shape[ha], shape[wa] = self.hq, self.wq
                    part = np.empty(shape, dtype=dtype)
                    r0, c0 = (a - top) % sh, (b - left) % sw
                    q0, p0 = min((r0 + top) // sh, self.hq), min((c0 + left) // sw, self.wq)
                    nr = max(min(-(-(h - r0) // sh), self.hq - q0), 0)
                    nc = max(min(-(-(w - c0) // sw), self.wq - p0), 0)
                    # fill the border strips, copy the interior (each element written once)
                    for rs, cs in (
                        (slice(0, q0), slice(None)),
                        (slice(q0 + nr, None), slice(None)),
                        (slice(q0, q0 + nr), slice(0, p0)),
                        (slice(q0, q0 + nr), slice(p0 + nc, None)),
                    ):
                        if nchw:
                            part[:, :, rs, cs] = fill
                        else:
                            part[:, rs, cs] = fill
                    if nr and nc:
                        src = (
                            slice(r0, r0 + (nr - 1) * sh + 1, sh),
                            slice(c0, c0 + (nc - 1) * sw + 1, sw),
                        )
                        dst = (slice(q0, q0 + nr), slice(p0, p0 + nc))
                        if nchw:
                            part[:, :, dst[0], dst[1]] = x[:, :, src[0], src[1]]
                        else:
                            part[:, dst[0], dst[1]] = x[:, src[0], src[1]]
                n = part.shape[0]
                if nchw:
                    self.flat[a, b] = part.reshape(n, part.shape[1], -1)
                else:
                    self.flat[a, b] = part.reshape(n, -1, part.shape[3])

    def tap(self, row: int, col: int, length: int | None = None) -> np.ndarray:
        """The slice read by padded offset (row, col): flat ``(N, C, L)`` or ``(N, L, C)``."""
        src = self.flat[row % self.sh, col % self.sw]
        start = (row // self.sh) * self.wq + col // self.sw
        stop = start + (self.length if length is None else length)
        return src[:, :, start:stop] if self.fmt == "NCHW" else src[:, start:stop]

    def grid(self, lead: tuple[int, ...], dtype: np.dtype, fill: float = 0) -> np.ndarray:
        """A result buffer on the ``oh × wq`` grid: ``lead + (oh*wq,)`` or NHWC-ordered."""
        n, rest = lead[0], lead[1:]
        shape = (
            (n, *rest, self.oh * self.wq) if self.fmt == "NCHW" else (n, self.oh * self.wq, *rest)
        )
        return np.full(shape, fill, dtype=dtype)

    def valid(self, buf: np.ndarray) -> np.ndarray:
        """The first ``length`` flat positions of a grid buffer (the part taps write)."""
        return buf[..., : self.length] if self.fmt == "NCHW" else buf[:, : self.length]

    def crop(self, buf: np.ndarray) -> np.ndarray:
        """A grid buffer as (N, C, oh, ow) / (N, oh, ow, C), trailing dims merged into C."""
        n = buf.shape[0]
        if self.fmt == "NCHW":
            return buf.reshape(n, -1, self.oh, self.wq)[:, :, :, : self.ow]
        return buf.reshape(n, self.oh, self.wq, -1)[:, :, : self.ow]
