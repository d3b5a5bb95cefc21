"""Const weights of a device om: located in WEIGHTS_DATA and turned back into origin arrays.

Layer: om. A device Const's ``value`` TensorDef usually has empty data: its descriptor's
``data_offset`` / ``weight_size`` point into WEIGHTS_DATA, and its ``layout`` is the device
layout, with the origin layout, shape and dtype in the ``origin_format`` / ``origin_shape`` /
``origin_data_type`` attrs. ``iter_consts`` yields each Const with its origin array (fp16
weights of a float32 origin are widened; other dtypes are kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from openge.errors import GeError
from openge.graph import Format
from openge.om import ge_ir_pb2 as pb
from openge.om.device.binio import invalid
from openge.om.device.weights_layout import DEVICE_FORMATS, nchw_to_origin, to_origin

#: ge.proto.DataType → NumPy dtype (the types a weight can hold).
NUMPY_OF: dict[int, np.dtype] = {
    pb.DT_FLOAT: np.dtype(np.float32),
    pb.DT_FLOAT16: np.dtype(np.float16),
    pb.DT_INT8: np.dtype(np.int8),
    pb.DT_UINT8: np.dtype(np.uint8),
    pb.DT_INT16: np.dtype(np.int16),
    pb.DT_UINT16: np.dtype(np.uint16),
    pb.DT_INT32: np.dtype(np.int32),
    pb.DT_INT64: np.dtype(np.int64),
    pb.DT_UINT32: np.dtype(np.uint32),
    pb.DT_UINT64: np.dtype(np.uint64),
    pb.DT_BOOL: np.dtype(np.bool_),
    pb.DT_DOUBLE: np.dtype(np.float64),
    pb.DT_BF16: np.dtype(ml_dtypes.bfloat16),
}
_FLOATS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16)}
CONST_TYPES = ("Const", "Constant")
#: Largest weight decoded (elements), a guard against absurd shapes.
MAX_ELEMENTS = 1 << 31


@dataclass
class DeviceConst:
    """One Const of a device graph with its weight in the origin layout."""

    graph: str
    name: str
    device_format: str
    device_shape: tuple[int, ...]
    device_dtype: str
    origin_format: str
    origin_shape: tuple[int, ...]
    array: np.ndarray
    #: Why the weight was kept in its device layout ("" when it is in the origin layout).
    note: str = ""


def dtype_name(value: int) -> str:
    """The ge.proto name of a DataType value (``DT_FLOAT16`` …)."""
    try:
        return pb.DataType.Name(value)
    except ValueError:
        return f"DT_{value}"


def attr_text(attrs: Any, key: str) -> str:
    """A string attr (``s``) as text, or ""."""
    return attrs[key].s.decode("utf-8", "replace") if key in attrs else ""


def attr_ints(attrs: Any, key: str) -> tuple[int, ...] | None:
    """A list-of-int attr, or None when absent."""
    return tuple(attrs[key].list.i) if key in attrs else None


def _numel(shape: tuple[int, ...], what: str) -> int:
    """Elements of ``shape``; the product of its non-zero dims is bounded too (an empty shape
    such as [0, 2^62] is no array NumPy can describe)."""
    n = bound = 1
    for d in shape:
        if d < 0:
            raise invalid(f"{what}: shape {list(shape)} is not static")
        n *= d
        bound *= max(d, 1)
        if bound > MAX_ELEMENTS:
            raise invalid(f"{what}: shape {list(shape)} has more than {MAX_ELEMENTS} elements")
    return n


def device_array(tdef: Any, weights: memoryview, what: str) -> np.ndarray:
    """The weight as stored (device layout and dtype): a read-only view, no copy."""
    desc = tdef.desc
    if desc.dtype not in NUMPY_OF:
        raise invalid(f"{what}: weights of {dtype_name(desc.dtype)} are not decoded by openge")
    dtype = NUMPY_OF[desc.dtype]
    shape = tuple(desc.shape.dim)
    count = _numel(shape, what)
    nbytes = count * dtype.itemsize
    if tdef.data:
        if len(tdef.data) < nbytes:
            raise invalid(f"{what}: {len(tdef.data)} data bytes for {list(shape)} ({nbytes})")
        return np.frombuffer(tdef.data, dtype=dtype, count=count).reshape(shape)
    offset, size = desc.data_offset, desc.weight_size
    if nbytes == 0:
        return np.empty(shape, dtype=dtype)
    if size < nbytes or offset < 0 or offset > len(weights) - nbytes:
        raise invalid(
            f"{what}: weight at data_offset {offset}, weight_size {size} ({nbytes} needed) is "
            f"outside WEIGHTS_DATA ({len(weights)} bytes)"
        )
    return np.frombuffer(weights, dtype=dtype, count=count, offset=offset).reshape(shape)


def origin_array(
    tdef: Any, weights: memoryview, what: str, *, lenient: bool = False
) -> DeviceConst:
    """The weight of a TensorDef in its origin layout, shape and (float) dtype.

    With ``lenient``, a weight whose layout cannot be converted is returned as stored, with the
    reason in ``note`` (a weight outside WEIGHTS_DATA is always an error).
    """
    raw = device_array(tdef, weights, what)
    try:
        return _to_origin(tdef.desc, raw, what)
    except GeError as err:
        if not lenient:
            raise
        return DeviceConst(
            "",
            "",
            tdef.desc.layout or "ND",
            tuple(raw.shape),
            dtype_name(tdef.desc.dtype),
            tdef.desc.layout or "ND",
            tuple(raw.shape),
            raw,
            err.message,
        )


_FROM_4D = {"NCHW": (0, 1, 2, 3), "NHWC": (0, 3, 1, 2), "HWCN": (3, 2, 0, 1), "CHWN": (3, 0, 1, 2)}


def _plain(layout: str) -> bool:
    """A layout without blocking (ND, NCHW, NHWC …): its data is the tensor in C order."""
    try:
        Format.from_layout_name(layout)
    except GeError:
        return layout in _FROM_4D
    return layout not in DEVICE_FORMATS


def _plain_4d(layout: str, origin: str, raw: np.ndarray, origin_shape: tuple[int, ...]) -> bool:
    """A 4-D weight stored in another plain 4-D layout than its origin one (transposed)."""
    return (
        layout != origin
        and layout in _FROM_4D
        and origin in _FROM_4D
        and raw.ndim == 4
        and len(origin_shape) == 4
    )


def _to_origin(desc: Any, raw: np.ndarray, what: str) -> DeviceConst:
    layout = desc.layout or "ND"
    origin_format = attr_text(desc.attr, "origin_format") or layout
    origin_shape = attr_ints(desc.attr, "origin_shape")
    if origin_shape is None or (not origin_shape and raw.size != 1):
        origin_shape = tuple(raw.shape)
    if layout in DEVICE_FORMATS and layout != origin_format:
        try:
            array = to_origin(raw, layout, origin_format, origin_shape)
        except (ValueError, IndexError) as err:
            raise invalid(f"{what}: {layout} → {origin_format}: {err}") from None
    elif not _plain(layout):
        raise invalid(f"{what}: device format {layout} is not one openge converts")
    elif _plain_4d(layout, origin_format, raw, origin_shape):
        array = nchw_to_origin(raw.transpose(_FROM_4D[layout]), origin_format)
    elif raw.size == _numel(origin_shape, what):
        array = raw.reshape(origin_shape)
    else:
        raise invalid(
            f"{what}: {raw.size} elements in {layout} do not fill origin shape {list(origin_shape)}"
        )
    origin_dtype = attr_text(desc.attr, "origin_data_type")
    if origin_dtype in set(pb.DataType.keys()):
        target = NUMPY_OF.get(pb.DataType.Value(origin_dtype))
        if target is not None and target != array.dtype and {target, array.dtype} <= _FLOATS:
            array = array.astype(target)
    return DeviceConst(
        graph="",
        name="",
        device_format=layout,
        device_shape=tuple(raw.shape),
        device_dtype=dtype_name(desc.dtype),
        origin_format=origin_format,
        origin_shape=tuple(origin_shape),
        array=array,
    )


def iter_consts(md: Any, weights: memoryview, *, lenient: bool = False) -> Iterator[DeviceConst]:
    """Every Const of every graph of a ModelDef, with its origin array (see origin_array)."""
    for graph in md.graph:
        for op in graph.op:
            if op.type not in CONST_TYPES or "value" not in op.attr:
                continue
            what = f"Const {op.name!r}"
            const = origin_array(op.attr["value"].t, weights, what, lenient=lenient)
            const.graph, const.name = graph.name, op.name
            yield const


__all__ = [
    "CONST_TYPES",
    "NUMPY_OF",
    "DeviceConst",
    "attr_ints",
    "attr_text",
    "device_array",
    "dtype_name",
    "iter_consts",
    "origin_array",
]
