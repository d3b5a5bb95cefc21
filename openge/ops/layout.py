"""Layout ops: TransData (NCHW ↔ NHWC ↔ NC1HWC0, ND/NCHW/NHWC ↔ FRACTAL_NZ).

Layout rules, as GE's host-side format transfer (``formats::GetCubeSizeByDataType``) applies them:

* ``C0`` (the innermost block of NC1HWC0, and ``W0`` of FRACTAL_NZ) is 32 for 1-byte element
  types (int8, uint8, bool) and 16 for every other type — float16 *and* float32 alike. (Some
  chips' TransData kernels can also use C0 = 8 for float32; GE's default, and openge's only
  choice, is 16.) ``H0`` of FRACTAL_NZ is always 16.
* NCHW → NC1HWC0: ``C1 = ceil(C / C0)``; ``dst[n, c1, h, w, c0] = src[n, c1*C0 + c0, h, w]``; the
  channels past C are zero.
* ND ``[..., H, W]`` → FRACTAL_NZ ``[..., W1, H1, H0, W0]`` with ``H1 = ceil(H / 16)``,
  ``W1 = ceil(W / W0)`` and ``dst[..., w1, h1, h0, w0] = src[..., h1*16 + h0, w1*W0 + w0]`` (zero
  padded). A 1-D ``[N]`` is treated as ``[1, N]`` with no batch dims: ``[W1, 1, 16, W0]``.
  NCHW/NHWC sources are handled as ND over their last two dims (as GE does).

The inverse transforms drop the padding, so they need the original (unpadded) shape. openge
takes it, in this order, from:

1. the node's current output description, when its shape is already set (the compiler, or a
   caller, may preset it) and is consistent with the input;
2. the input description's ``origin_shape`` — a forward TransData records the source shape there
   (with ``origin_format`` = the source layout), as GE keeps the origin shape on 5HD / NZ tensors;
3. otherwise: no padding is assumed (``C = C1 * C0``; ``H = H1 * 16``, ``W = W1 * W0``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID, UNSUPPORTED, GeError
from openge.graph import DataType, Format, TensorDesc
from openge.ops.common import ALL_TYPES, type_names
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

#: ``H0`` of FRACTAL_NZ (rows per fractal), fixed by the cube unit.
NZ_H0 = 16

_PLAIN_4D = (Format.FORMAT_NCHW, Format.FORMAT_NHWC)
_ND_LIKE = (Format.FORMAT_ND, Format.FORMAT_NCHW, Format.FORMAT_NHWC)

#: Every (src_format, dst_format) pair TransData converts.
SUPPORTED_PAIRS: frozenset[tuple[Format, Format]] = frozenset(
    [
        (Format.FORMAT_NCHW, Format.FORMAT_NHWC),
        (Format.FORMAT_NHWC, Format.FORMAT_NCHW),
        (Format.FORMAT_NCHW, Format.FORMAT_NC1HWC0),
        (Format.FORMAT_NHWC, Format.FORMAT_NC1HWC0),
        (Format.FORMAT_NC1HWC0, Format.FORMAT_NCHW),
        (Format.FORMAT_NC1HWC0, Format.FORMAT_NHWC),
    ]
    + [(f, Format.FORMAT_FRACTAL_NZ) for f in _ND_LIKE]
    + [(Format.FORMAT_FRACTAL_NZ, f) for f in _ND_LIKE]
)


def cube_c0(dtype: DataType) -> int:
    """GE's C0 (and FRACTAL_NZ W0) for ``dtype``: 32 for 1-byte types, else 16."""
    return 32 if dtype.itemsize == 1 else 16


def _ceil_div(a: int, b: int) -> int:
    return -1 if a < 0 else -(-a // b)


def _same(a: int, b: int) -> bool:
    """Dims agree (an unknown dim, -1, agrees with anything)."""
    return a < 0 or b < 0 or a == b


def _pair_names() -> str:
    return ", ".join(sorted(f"{s.layout_name}->{d.layout_name}" for s, d in SUPPORTED_PAIRS))


def _parse_format(ctx: InferContext, attr: str) -> Format:
    text = ctx.attrs[attr]
    try:
        return Format.from_layout_name(text)
    except GeError:
        raise ctx.error(
            f"attr {attr} = {text!r} is not a known format; TransData converts: {_pair_names()}",
            UNSUPPORTED,
        ) from None


# ----- shape rules -----------------------------------------------------------------------------


def _nchw_dims(fmt: Format, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a 4-D shape in NCHW or NHWC."""
    if fmt == Format.FORMAT_NHWC:
        n, h, w, c = shape
    else:
        n, c, h, w = shape
    return n, c, h, w


def _in_layout(fmt: Format, n: int, c: int, h: int, w: int) -> tuple[int, ...]:
    return (n, h, w, c) if fmt == Format.FORMAT_NHWC else (n, c, h, w)


def _check_rank(ctx: InferContext, fmt: Format, shape: Sequence[int], rank: int) -> None:
    if len(shape) != rank:
        raise ctx.error(
            f"input 0 has shape {list(shape)} (rank {len(shape)}); src_format "
            f"{fmt.layout_name} needs rank {rank}",
            SHAPE_INVALID,
        )


def _plain_to_5hd(shape: Sequence[int], fmt: Format, c0: int) -> tuple[int, ...]:
    n, c, h, w = _nchw_dims(fmt, shape)
    return (n, _ceil_div(c, c0), h, w, c0)


def _nd_to_nz(shape: Sequence[int], w0: int) -> tuple[int, ...]:
    if len(shape) == 1:
        return (_ceil_div(shape[0], w0), 1, NZ_H0, w0)
    *batch, h, w = shape
    return (*batch, _ceil_div(w, w0), _ceil_div(h, NZ_H0), NZ_H0, w0)


def _consistent_5hd(src: Sequence[int], plain: Sequence[int], fmt: Format, c0: int) -> bool:
    if len(plain) != 4:
        return False
    return all(_same(a, b) for a, b in zip(_plain_to_5hd(plain, fmt, c0), src, strict=True))


def _consistent_nz(src: Sequence[int], plain: Sequence[int], w0: int) -> bool:
    if not plain or len(_nd_to_nz(plain, w0)) != len(src):
        return False
    return all(_same(a, b) for a, b in zip(_nd_to_nz(plain, w0), src, strict=True))


def _inverse_5hd_shape(ctx: InferContext, d: TensorDesc, dst: Format, c0: int) -> tuple[int, ...]:
    n, c1, h, w, _ = d.shape
    preset = ctx.current_outputs[0].shape if ctx.current_outputs else ()
    if _consistent_5hd(d.shape, preset, dst, c0):
        return tuple(preset)
    if d.origin_shape is not None and d.origin_format in _PLAIN_4D:
        origin = d.origin_shape
        if _consistent_5hd(d.shape, origin, d.origin_format, c0):  # type: ignore[arg-type]
            on, oc, oh, ow = _nchw_dims(d.origin_format, origin)  # type: ignore[arg-type]
            return _in_layout(dst, on, oc, oh, ow)
    return _in_layout(dst, n, -1 if c1 < 0 else c1 * c0, h, w)


def _inverse_nz_shape(ctx: InferContext, d: TensorDesc, dst: Format, w0: int) -> tuple[int, ...]:
    preset = ctx.current_outputs[0].shape if ctx.current_outputs else ()
    rank_ok = dst == Format.FORMAT_ND or len(preset) == 4
    if rank_ok and _consistent_nz(d.shape, preset, w0):
        return tuple(preset)
    origin = d.origin_shape
    origin_rank_ok = origin is not None and (dst == Format.FORMAT_ND or len(origin) == 4)
    if origin_rank_ok and _consistent_nz(d.shape, origin, w0):  # type: ignore[arg-type]
        return tuple(origin)  # type: ignore[arg-type]
    *batch, w1, h1, _, _ = d.shape
    return (*batch, -1 if h1 < 0 else h1 * NZ_H0, -1 if w1 < 0 else w1 * w0)


def _check_src_format(ctx: InferContext, d: TensorDesc, src: Format) -> None:
    """The input desc's format must be src_format (ND is accepted as 'unspecified')."""
    if d.format in (src, Format.FORMAT_ND):
        return
    if src == Format.FORMAT_ND and d.format in _PLAIN_4D:
        return
    raise ctx.error(
        f"input 0 is in format {d.format.layout_name} but src_format is {src.layout_name}; "
        "set src_format to the input's format",
        UNSUPPORTED,
    )


def _infer_transdata(ctx: InferContext) -> Sequence[TensorDesc]:
    src = _parse_format(ctx, "src_format")
    dst = _parse_format(ctx, "dst_format")
    if (src, dst) not in SUPPORTED_PAIRS:
        raise ctx.error(
            f"conversion {src.layout_name} -> {dst.layout_name} is not supported; "
            f"supported: {_pair_names()}",
            UNSUPPORTED,
        )
    if ctx.attrs["groups"] != 1:
        raise ctx.error(
            f"attr groups = {ctx.attrs['groups']} is not supported; groups > 1 applies to "
            "FRACTAL_Z only, which openge does not implement (use groups=1)"
        )
    for attr in ("src_subformat", "dst_subformat"):
        if ctx.attrs[attr] != 0:
            raise ctx.error(f"attr {attr} = {ctx.attrs[attr]} is not supported; use 0")
    d = ctx.input(0)
    if d.dtype not in ALL_TYPES:
        raise ctx.error(
            f"input 0 has dtype {d.dtype.name}; TransData accepts {type_names(ALL_TYPES)}",
            DATATYPE_INVALID,
        )
    _check_src_format(ctx, d, src)
    c0 = cube_c0(d.dtype)
    shape = d.shape
    origin_format: Format | None = None
    origin_shape: tuple[int, ...] | None = None
    if src in _PLAIN_4D and dst in _PLAIN_4D:
        _check_rank(ctx, src, shape, 4)
        out = _in_layout(dst, *_nchw_dims(src, shape))
    elif dst == Format.FORMAT_NC1HWC0:
        _check_rank(ctx, src, shape, 4)
        out = _plain_to_5hd(shape, src, c0)
        origin_format, origin_shape = src, tuple(shape)
    elif src == Format.FORMAT_NC1HWC0:
        _check_rank(ctx, src, shape, 5)
        if not _same(shape[4], c0):
            raise ctx.error(
                f"input 0 has shape {list(shape)}; an NC1HWC0 {d.dtype.short_name} tensor "
                f"has C0 = {c0} as its last dim",
                SHAPE_INVALID,
            )
        out = _inverse_5hd_shape(ctx, d, dst, c0)
    elif dst == Format.FORMAT_FRACTAL_NZ:
        if src in _PLAIN_4D:
            _check_rank(ctx, src, shape, 4)
        elif not shape:
            raise ctx.error("input 0 is a scalar; ND -> FRACTAL_NZ needs rank ≥ 1", SHAPE_INVALID)
        out = _nd_to_nz(shape, c0)
        origin_format, origin_shape = src, tuple(shape)
    else:  # FRACTAL_NZ -> ND / NCHW / NHWC
        if len(shape) < 4 or not (_same(shape[-2], NZ_H0) and _same(shape[-1], c0)):
            raise ctx.error(
                f"input 0 has shape {list(shape)}; a FRACTAL_NZ {d.dtype.short_name} tensor "
                f"has rank ≥ 4 and ends in [{NZ_H0}, {c0}]",
                SHAPE_INVALID,
            )
        if dst in _PLAIN_4D and len(shape) != 6:
            raise ctx.error(
                f"input 0 has shape {list(shape)}; FRACTAL_NZ -> {dst.layout_name} needs a "
                "rank-6 input (a 4-D tensor in NZ)",
                SHAPE_INVALID,
            )
        out = _inverse_nz_shape(ctx, d, dst, c0)
    return [
        TensorDesc(
            d.dtype,
            out,
            dst,
            origin_format=dst if origin_format is None else origin_format,
            origin_shape=origin_shape,
        )
    ]


# ----- kernels ---------------------------------------------------------------------------------


def _plain_to_plain(x: np.ndarray, out: np.ndarray, src: Format, dst: Format) -> None:
    perm = (0, 2, 3, 1) if src == Format.FORMAT_NCHW else (0, 3, 1, 2)
    np.copyto(out, x.transpose(perm))


def _to_5hd(x: np.ndarray, out: np.ndarray, src: Format, dst: Format) -> None:
    n, c1, h, w, c0 = out.shape
    if src == Format.FORMAT_NCHW:
        padded = np.zeros((n, c1 * c0, h, w), dtype=out.dtype)
        padded[:, : x.shape[1]] = x
        np.copyto(out, padded.reshape(n, c1, c0, h, w).transpose(0, 1, 3, 4, 2))
    else:
        padded = np.zeros((n, h, w, c1 * c0), dtype=out.dtype)
        padded[..., : x.shape[3]] = x
        np.copyto(out, padded.reshape(n, h, w, c1, c0).transpose(0, 3, 1, 2, 4))


def _from_5hd(x: np.ndarray, out: np.ndarray, src: Format, dst: Format) -> None:
    n, c1, h, w, c0 = x.shape
    if dst == Format.FORMAT_NCHW:
        full = x.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c0, h, w)
        np.copyto(out, full[:, : out.shape[1]])
    else:
        full = x.transpose(0, 2, 3, 1, 4).reshape(n, h, w, c1 * c0)
        np.copyto(out, full[..., : out.shape[3]])


def _to_nz(x: np.ndarray, out: np.ndarray, src: Format, dst: Format) -> None:
    mat = x.reshape(1, -1) if x.ndim == 1 else x
    *batch, h, w = mat.shape
    *_, w1, h1, h0, w0 = out.shape
    padded = np.zeros((*batch, h1 * h0, w1 * w0), dtype=out.dtype)
    padded[..., :h, :w] = mat
    blocks = padded.reshape(*batch, h1, h0, w1, w0)
    k = len(batch)
    perm = (*range(k), k + 2, k, k + 1, k + 3)
    np.copyto(out, blocks.transpose(perm).reshape(out.shape))


def _from_nz(x: np.ndarray, out: np.ndarray, src: Format, dst: Format) -> None:
    *batch, w1, h1, h0, w0 = x.shape
    k = len(batch)
    full = x.transpose(*range(k), k + 1, k + 2, k, k + 3).reshape(*batch, h1 * h0, w1 * w0)
    if out.ndim == 1:
        np.copyto(out, full[..., 0, : out.shape[0]].reshape(out.shape))
    else:
        np.copyto(out, full[..., : out.shape[-2], : out.shape[-1]])


def _kernel_for(src: Format, dst: Format) -> Callable[..., None]:
    if src in _PLAIN_4D and dst in _PLAIN_4D:
        return _plain_to_plain
    if dst == Format.FORMAT_NC1HWC0:
        return _to_5hd
    if src == Format.FORMAT_NC1HWC0:
        return _from_5hd
    if dst == Format.FORMAT_FRACTAL_NZ:
        return _to_nz
    return _from_nz


def _transdata_kernel(inputs, outputs, *, src_format, dst_format):
    src = Format.from_layout_name(src_format)
    dst = Format.from_layout_name(dst_format)
    _kernel_for(src, dst)(inputs[0], outputs[0], src, dst)


SCHEMAS = [
    OpSchema(
        "TransData",
        inputs=(Input("src", doc="the tensor in src_format"),),
        outputs=(Output("dst", doc="the same values in dst_format"),),
        attrs=(
            Attr("src_format", AttrType.STR, doc='source layout, e.g. "NCHW"'),
            Attr("dst_format", AttrType.STR, doc='target layout, e.g. "NC1HWC0"'),
            Attr("src_subformat", AttrType.INT, 0, doc="must be 0"),
            Attr("dst_subformat", AttrType.INT, 0, doc="must be 0"),
            Attr("groups", AttrType.INT, 1, doc="must be 1 (groups > 1 is FRACTAL_Z only)"),
        ),
        infer=_infer_transdata,
        kernel=_transdata_kernel,
        doc="Converts a tensor between layouts: NCHW <-> NHWC <-> NC1HWC0 (C padded with zeros "
        "to a multiple of C0; C0 = 32 for 1-byte types, 16 otherwise, as GE) and "
        "ND/NCHW/NHWC <-> FRACTAL_NZ ([..., H, W] -> [..., W1, H1, 16, W0]); the inverse drops "
        "the padding, taking the original shape from the preset output desc, else the input's "
        "origin_shape, else assuming no padding.",
        onnx="(none: a layout change; NCHW<->NHWC is Transpose, the blocked layouts are "
        "Pad + Reshape + Transpose)",
    ),
]

__all__ = ["NZ_H0", "SCHEMAS", "SUPPORTED_PAIRS", "cube_c0"]
