"""DataType and Format with GE's C++ enum values, and their NumPy mapping (IR layer)."""

from __future__ import annotations

import sys
import threading
from enum import IntEnum

import numpy as np

from openge.errors import DATATYPE_INVALID, GeError


class DataType(IntEnum):
    """Tensor element types, numbered as GE's ``ge::DataType``."""

    DT_FLOAT = 0
    DT_FLOAT16 = 1
    DT_INT8 = 2
    DT_INT32 = 3
    DT_UINT8 = 4
    DT_INT16 = 6
    DT_UINT16 = 7
    DT_UINT32 = 8
    DT_INT64 = 9
    DT_UINT64 = 10
    DT_DOUBLE = 11
    DT_BOOL = 12
    DT_STRING = 13
    DT_COMPLEX64 = 16
    DT_COMPLEX128 = 17
    DT_BF16 = 27
    DT_FLOAT8_E5M2 = 35
    DT_FLOAT8_E4M3FN = 36

    @property
    def np_dtype(self) -> np.dtype:
        """The NumPy dtype that stores this type (raises GeError where none exists)."""
        return to_numpy_dtype(self)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return to_numpy_dtype(self).itemsize

    @property
    def short_name(self) -> str:
        """Lower-case name used in graph dumps, e.g. ``float32``."""
        return _SHORT_NAMES[self]


class Format(IntEnum):
    """Tensor layouts, numbered as GE's ``ge::Format``."""

    FORMAT_NCHW = 0
    FORMAT_NHWC = 1
    FORMAT_ND = 2
    FORMAT_NC1HWC0 = 3
    FORMAT_FRACTAL_Z = 4
    FORMAT_HWCN = 16
    FORMAT_NDHWC = 27
    FORMAT_FRACTAL_NZ = 29
    FORMAT_NCDHW = 30

    @property
    def layout_name(self) -> str:
        """The layout string GE writes in a ModelDef (``"NCHW"``, ``"ND"`` …)."""
        return self.name[len("FORMAT_") :]

    @classmethod
    def from_layout_name(cls, text: str) -> Format:
        """Parse ``"NCHW"`` / ``"FORMAT_NCHW"`` (case-insensitive)."""
        key = text.strip().upper()
        if not key.startswith("FORMAT_"):
            key = "FORMAT_" + key
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(f.layout_name for f in cls)
            raise GeError(
                DATATYPE_INVALID, f"unknown format {text!r}; accepted formats: {names}"
            ) from None


_NUMPY_OF: dict[DataType, np.dtype] = {
    DataType.DT_FLOAT: np.dtype(np.float32),
    DataType.DT_FLOAT16: np.dtype(np.float16),
    DataType.DT_INT8: np.dtype(np.int8),
    DataType.DT_INT32: np.dtype(np.int32),
    DataType.DT_UINT8: np.dtype(np.uint8),
    DataType.DT_INT16: np.dtype(np.int16),
    DataType.DT_UINT16: np.dtype(np.uint16),
    DataType.DT_UINT32: np.dtype(np.uint32),
    DataType.DT_INT64: np.dtype(np.int64),
    DataType.DT_UINT64: np.dtype(np.uint64),
    DataType.DT_DOUBLE: np.dtype(np.float64),
    DataType.DT_BOOL: np.dtype(np.bool_),
    DataType.DT_COMPLEX64: np.dtype(np.complex64),
    DataType.DT_COMPLEX128: np.dtype(np.complex128),
}

#: The low-precision floats, by their ml_dtypes names. ml_dtypes gives them NumPy storage (kind
#: "V"; arithmetic through float32, see openge.ops.lowp) and is imported the first time one is
#: asked for: importing it registers its types with NumPy, which takes ~0.6 s (measured on the
#: Intel VM of bench/RESULTS.md) — more than a small model's whole load and first run.
_ML_DTYPES_NAMES: dict[DataType, str] = {
    DataType.DT_BF16: "bfloat16",
    DataType.DT_FLOAT8_E5M2: "float8_e5m2",
    DataType.DT_FLOAT8_E4M3FN: "float8_e4m3fn",
}

#: Floating types NumPy has no arithmetic for: kernels see them as float32 (openge.ops.lowp).
LOW_PRECISION_TYPES = frozenset(
    {DataType.DT_BF16, DataType.DT_FLOAT8_E5M2, DataType.DT_FLOAT8_E4M3FN}
)

_SHORT_NAMES: dict[DataType, str] = {
    DataType.DT_FLOAT: "float32",
    DataType.DT_FLOAT16: "float16",
    DataType.DT_INT8: "int8",
    DataType.DT_INT32: "int32",
    DataType.DT_UINT8: "uint8",
    DataType.DT_INT16: "int16",
    DataType.DT_UINT16: "uint16",
    DataType.DT_UINT32: "uint32",
    DataType.DT_INT64: "int64",
    DataType.DT_UINT64: "uint64",
    DataType.DT_DOUBLE: "float64",
    DataType.DT_BOOL: "bool",
    DataType.DT_STRING: "string",
    DataType.DT_COMPLEX64: "complex64",
    DataType.DT_COMPLEX128: "complex128",
    DataType.DT_BF16: "bfloat16",
    DataType.DT_FLOAT8_E5M2: "float8_e5m2",
    DataType.DT_FLOAT8_E4M3FN: "float8_e4m3fn",
}

_DTYPE_OF_NUMPY: dict[np.dtype, DataType] = {v: k for k, v in _NUMPY_OF.items()}


_LOW_PRECISION_LOCK = threading.Lock()


def _load_low_precision() -> None:
    """Import ml_dtypes and add its types to the dtype maps (once; under a lock, so a thread
    never sees some of them mapped and not the others)."""
    if all(t in _NUMPY_OF for t in _ML_DTYPES_NAMES):
        return
    with _LOW_PRECISION_LOCK:
        import ml_dtypes

        for data_type, name in _ML_DTYPES_NAMES.items():
            dtype = np.dtype(getattr(ml_dtypes, name))
            _DTYPE_OF_NUMPY[dtype] = data_type
            _NUMPY_OF[data_type] = dtype


def to_numpy_dtype(data_type: DataType | int) -> np.dtype:
    """NumPy dtype for a GE DataType; GeError for types NumPy cannot hold (string)."""
    try:
        key = DataType(data_type)
    except ValueError:
        key = None
    if key in _ML_DTYPES_NAMES:
        _load_low_precision()
    try:
        return _NUMPY_OF[key]
    except KeyError:
        raise GeError(
            DATATYPE_INVALID,
            f"data type {data_type!r} has no NumPy storage in openge; supported: "
            + ", ".join([t.name for t in _NUMPY_OF if t not in _ML_DTYPES_NAMES])
            + ", "
            + ", ".join(t.name for t in _ML_DTYPES_NAMES),
        ) from None


def from_numpy_dtype(dtype: np.dtype | type | str) -> DataType:
    """GE DataType for a NumPy dtype (GeError when GE has no matching type)."""
    if isinstance(dtype, str) and dtype in _ML_DTYPES_NAMES.values():
        _load_low_precision()  # NumPy knows these names once ml_dtypes is imported
    try:
        key = np.dtype(dtype)
    except TypeError:
        raise GeError(DATATYPE_INVALID, f"{dtype!r} is not a NumPy dtype") from None
    if key not in _DTYPE_OF_NUMPY and key.kind == "V" and "ml_dtypes" in sys.modules:
        _load_low_precision()  # a low-precision dtype exists only once ml_dtypes is imported
    try:
        return _DTYPE_OF_NUMPY[key]
    except KeyError:
        raise GeError(
            DATATYPE_INVALID,
            f"NumPy dtype {key} has no GE DataType; use one of "
            + ", ".join(str(d) for d in _DTYPE_OF_NUMPY)
            + "".join(f", {n}" for t, n in _ML_DTYPES_NAMES.items() if t not in _NUMPY_OF),
        ) from None


def as_data_type(value: DataType | int | str | np.dtype | type) -> DataType:
    """Accept a DataType, its int value, a name (``"DT_FLOAT"``/``"float32"``) or a NumPy dtype."""
    if isinstance(value, DataType):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        try:
            return DataType(int(value))
        except ValueError:
            raise GeError(DATATYPE_INVALID, f"{value} is not a GE DataType value") from None
    if isinstance(value, str):
        key = value.strip()
        if key.upper() in DataType.__members__:
            return DataType[key.upper()]
        if "DT_" + key.upper() in DataType.__members__:
            return DataType["DT_" + key.upper()]
        for dt, short in _SHORT_NAMES.items():
            if short == key.lower():
                return dt
    return from_numpy_dtype(value)
