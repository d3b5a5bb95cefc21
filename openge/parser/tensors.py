"""ONNX tensors as NumPy arrays, checked before anything is allocated (parser layer).

Every TensorProto (initializer, Constant attribute, sparse value) comes from an untrusted file, so
its dims, its stored element count and, for external data, the file it names are checked first:
dims must be non-negative and their byte size must fit in int64; the data stored must hold exactly
the element count the dims give (so decoding never allocates more than the file holds); external
data must be a regular file inside the model's folder (no absolute path, no ``..``, no symlink
leading out), with decimal ``offset`` / ``length`` that lie inside it. A sparse tensor's indices
are checked against its dims, and its dense size is charged to the parse budget before the dense
array is allocated. Every failure is a GeError naming the tensor and the field.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

import numpy as np

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, UNSUPPORTED, GeError
from openge.graph import DataType

#: The largest byte size a tensor may describe (int64, as ONNX and the .om format store sizes).
MAX_TENSOR_BYTES = (1 << 63) - 1

# ONNX TensorProto element types → GE DataType (types without a GE/NumPy equivalent are absent).
_ONNX_DTYPES: dict[int, DataType] = {
    1: DataType.DT_FLOAT,
    2: DataType.DT_UINT8,
    3: DataType.DT_INT8,
    4: DataType.DT_UINT16,
    5: DataType.DT_INT16,
    6: DataType.DT_INT32,
    7: DataType.DT_INT64,
    8: DataType.DT_STRING,
    9: DataType.DT_BOOL,
    10: DataType.DT_FLOAT16,
    11: DataType.DT_DOUBLE,
    12: DataType.DT_UINT32,
    13: DataType.DT_UINT64,
    14: DataType.DT_COMPLEX64,
    15: DataType.DT_COMPLEX128,
    16: DataType.DT_BF16,
    17: DataType.DT_FLOAT8_E4M3FN,
    19: DataType.DT_FLOAT8_E5M2,
}
_ONNX_DTYPE_NAMES = {
    0: "UNDEFINED",
    18: "FLOAT8E4M3FNUZ",
    20: "FLOAT8E5M2FNUZ",
    21: "UINT4",
    22: "INT4",
    23: "FLOAT4E2M1",
    24: "FLOAT8E8M0",
    25: "UINT2",
    26: "INT2",
    27: "FLOAT6E2M3",
    28: "FLOAT6E3M2",
}
#: DataTypes openge can compute with (NumPy storage).
_COMPUTABLE = frozenset(t for t in DataType if t != DataType.DT_STRING)

# Which repeated field holds the values of each element type when raw_data is absent, and how
# many field entries one element takes (complex numbers store two).
_FIELDS: dict[int, tuple[str, int]] = {
    1: ("float_data", 1),
    2: ("int32_data", 1),
    3: ("int32_data", 1),
    4: ("int32_data", 1),
    5: ("int32_data", 1),
    6: ("int32_data", 1),
    7: ("int64_data", 1),
    9: ("int32_data", 1),
    10: ("int32_data", 1),
    11: ("double_data", 1),
    12: ("uint64_data", 1),
    13: ("uint64_data", 1),
    14: ("float_data", 2),
    15: ("double_data", 2),
    16: ("int32_data", 1),  # bfloat16 bits
    17: ("int32_data", 1),  # float8 e4m3fn bits
    19: ("int32_data", 1),  # float8 e5m2 bits
}


def onnx_dtype(elem_type: int, where: str) -> DataType:
    """The GE DataType of an ONNX element type; GeError naming ``where`` when openge lacks it."""
    if not isinstance(elem_type, (int, np.integer)) or isinstance(elem_type, bool):
        raise GeError(DATATYPE_INVALID, f"{where}: {elem_type!r} is not an ONNX element type")
    dtype = _ONNX_DTYPES.get(int(elem_type))
    if dtype is None or dtype not in _COMPUTABLE:
        name = _ONNX_DTYPE_NAMES.get(int(elem_type)) or {8: "STRING"}.get(
            int(elem_type), str(elem_type)
        )
        raise GeError(
            DATATYPE_INVALID,
            f"{where}: ONNX element type {name} is not supported by openge "
            "(supported: float16/32/64, bfloat16, float8e4m3fn, float8e5m2, int8/16/32/64, "
            "uint8/16/32/64, bool, complex64/128)",
        )
    return dtype


def onnx_elem_type(dtype: DataType) -> int:
    """The ONNX element type of a GE DataType."""
    for k, v in _ONNX_DTYPES.items():
        if v == dtype:
            return k
    raise GeError(DATATYPE_INVALID, f"{dtype.name} has no ONNX element type")


def checked_dims(dims: Any, itemsize: int, where: str) -> tuple[tuple[int, ...], int]:
    """(dims, element count) of a tensor; GeError for a negative dim or a byte size past int64."""
    shape = tuple(int(d) for d in dims)
    count = 1
    for d in shape:
        if d < 0:
            raise GeError(SHAPE_INVALID, f"{where}: dims {list(shape)} have a negative dim")
        count *= d
    if count * max(itemsize, 1) > MAX_TENSOR_BYTES:
        raise GeError(
            SHAPE_INVALID,
            f"{where}: dims {list(shape)} describe {count} elements, more bytes than int64 holds",
        )
    return shape, count


def _stored_count(tensor: Any, dtype: DataType, where: str) -> int:
    """Elements the tensor's typed field holds (no raw_data)."""
    field, per = _FIELDS[int(tensor.data_type)]
    return len(getattr(tensor, field)) // per


def _check_count(
    stored: int,
    count: int,
    shape: tuple[int, ...],
    where: str,
    raw_size: int | None = None,
    dtype: DataType | None = None,
) -> None:
    """GeError when the data stored is not exactly what the dims need."""
    if raw_size is not None and dtype is not None and raw_size % dtype.np_dtype.itemsize:
        raise GeError(
            PARAM_INVALID,
            f"{where}: raw_data has {raw_size} bytes, not a multiple of the "
            f"{dtype.np_dtype.itemsize}-byte {dtype.short_name} element",
        )
    if stored != count:
        raise GeError(
            PARAM_INVALID,
            f"{where}: holds {stored} element(s) but dims {list(shape)} need {count}",
        )


def tensor_to_array(tensor: Any, base_dir: str | None = None, where: str = "") -> np.ndarray:
    """A TensorProto's value as a NumPy array (external data memory-mapped), checked first."""
    from onnx import numpy_helper

    name = tensor.name if isinstance(tensor.name, str) else repr(tensor.name)
    where = where or f"tensor {name}"
    dtype = onnx_dtype(tensor.data_type, where)
    shape, count = checked_dims(tensor.dims, dtype.np_dtype.itemsize, where)
    if tensor.HasField("segment"):
        raise GeError(UNSUPPORTED, f"{where}: segmented tensors are not supported")
    if tensor.data_location == 1:  # TensorProto.EXTERNAL
        return _external_array(tensor, base_dir, dtype, shape, count, where)
    if tensor.HasField("raw_data"):
        # Decoded here: each read of a protobuf bytes field copies it (hundreds of MB for a
        # big weight), so it is read once. ONNX stores raw data little-endian.
        raw = tensor.raw_data
        _check_count(len(raw) // dtype.np_dtype.itemsize, count, shape, where, len(raw), dtype)
        array = np.frombuffer(raw, dtype=dtype.np_dtype.newbyteorder("<"))
        return array.astype(dtype.np_dtype, copy=False).reshape(shape)
    _check_count(_stored_count(tensor, dtype, where), count, shape, where)
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as err:
        raise GeError(PARAM_INVALID, f"{where}: cannot decode tensor data: {err}") from err
    return np.asarray(array, dtype=dtype.np_dtype).reshape(shape)


def _decimal(info: dict[str, str], key: str, where: str) -> int | None:
    """An external-data field that must be a non-negative decimal integer (None when absent)."""
    text = info.get(key)
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()):
        raise GeError(
            PARAM_INVALID,
            f"{where}: external data {key} {text!r} is not a non-negative decimal integer",
        )
    return int(text)


def confined_file(base_dir: str, location: str, where: str) -> str:
    """The real path of ``location`` when it is a regular file inside ``base_dir``; GeError
    (naming ``where``) for absolute paths, ``..``, NUL bytes, symlinks leading out, or anything
    that is not a regular file."""
    parts = location.replace("\\", "/").split("/")
    if (
        not location
        or "\0" in location
        or os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or ".." in parts
    ):
        raise GeError(
            PARAM_INVALID,
            f"{where}: external data location {location!r} must be a relative path inside the "
            "model's folder",
        )
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root or path == root:
        raise GeError(
            PARAM_INVALID,
            f"{where}: external data {location!r} resolves outside the model's folder",
        )
    try:
        info = os.stat(path)
    except OSError as err:
        raise GeError(
            PARAM_INVALID, f"{where}: external data file {location!r} cannot be read: {err}"
        ) from err
    if not stat.S_ISREG(info.st_mode):
        raise GeError(PARAM_INVALID, f"{where}: external data {location!r} is not a regular file")
    return path


def _external_array(
    tensor: Any,
    base_dir: str | None,
    dtype: DataType,
    shape: tuple[int, ...],
    count: int,
    where: str,
) -> np.ndarray:
    """Map an initializer stored in an external data file (read-only, no copy of the bytes)."""
    info: dict[str, str] = {}
    for entry in tensor.external_data:
        if not isinstance(entry.key, str) or not isinstance(entry.value, str):
            raise GeError(PARAM_INVALID, f"{where}: an external data entry is not valid UTF-8")
        info[entry.key] = entry.value
    location = info.get("location", "")
    if base_dir is None:
        raise GeError(
            PARAM_INVALID,
            f"{where} keeps its data in external file {location!r}; pass the model as a file "
            "path so the file can be found next to it",
        )
    offset = _decimal(info, "offset", where) or 0
    length = _decimal(info, "length", where)
    path = confined_file(base_dir, location, where)
    nbytes = count * dtype.np_dtype.itemsize
    if length is not None and length != nbytes:
        raise GeError(
            PARAM_INVALID,
            f"{where}: external data length {length} differs from the {nbytes} bytes of "
            f"{dtype.short_name}{list(shape)}",
        )
    size = os.path.getsize(path)
    if offset + nbytes > size:
        raise GeError(
            PARAM_INVALID,
            f"{where}: external data {location!r} has {size} bytes; offset {offset} + {nbytes} "
            "bytes lies past its end",
        )
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype.np_dtype)
    try:
        return np.memmap(path, dtype=dtype.np_dtype, mode="r", offset=offset, shape=shape)
    except (OSError, ValueError) as err:
        raise GeError(
            PARAM_INVALID, f"{where}: cannot map external data {location!r}: {err}"
        ) from err


def sparse_to_array(
    sparse: Any, base_dir: str | None, where: str, charge: Callable[[int, str], None]
) -> np.ndarray:
    """The dense value of a SparseTensorProto.

    ``charge(nbytes, what)`` is called with the dense size before it is allocated (the parse
    budget raises a GeError when it is exceeded). Indices are ``[NNZ]`` (linear) or
    ``[NNZ, rank]`` (coordinates), each within the dims.
    """
    values = tensor_to_array(sparse.values, base_dir, f"{where}: values")
    indices = tensor_to_array(sparse.indices, base_dir, f"{where}: indices")
    shape, count = checked_dims(sparse.dims, values.dtype.itemsize, f"{where}: dims")
    if values.ndim != 1:
        raise GeError(SHAPE_INVALID, f"{where}: values must be 1-D, got {list(values.shape)}")
    nnz = values.shape[0]
    if indices.dtype.kind not in "iu":
        raise GeError(DATATYPE_INVALID, f"{where}: indices must be integers, got {indices.dtype}")
    if indices.ndim == 1:
        if indices.shape[0] != nnz:
            raise GeError(SHAPE_INVALID, f"{where}: {indices.shape[0]} indices for {nnz} values")
        bounds = np.array([count], dtype=np.int64)
    elif indices.ndim == 2 and indices.shape == (nnz, len(shape)):
        bounds = np.array(shape, dtype=np.int64)
    else:
        raise GeError(
            SHAPE_INVALID,
            f"{where}: indices of shape {list(indices.shape)} fit neither [{nnz}] nor "
            f"[{nnz}, {len(shape)}]",
        )
    idx = indices.astype(np.int64, copy=False).reshape(nnz, -1) if nnz else indices
    if nnz and (np.any(idx < 0) or np.any(idx >= bounds)):
        raise GeError(SHAPE_INVALID, f"{where}: an index lies outside dims {list(shape)}")
    charge(count * values.dtype.itemsize, f"{where} (dense {values.dtype}{list(shape)})")
    dense = np.zeros(shape, dtype=values.dtype)
    if nnz:
        if indices.ndim == 1:
            dense.reshape(-1)[idx[:, 0]] = values
        else:
            dense[tuple(idx.T)] = values
    return dense


__all__ = [
    "MAX_TENSOR_BYTES",
    "checked_dims",
    "confined_file",
    "onnx_dtype",
    "onnx_elem_type",
    "sparse_to_array",
    "tensor_to_array",
]
