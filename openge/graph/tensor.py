"""TensorDesc (dtype, shape, format) and Tensor (a desc plus NumPy data) — IR layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph.types import DataType, Format, as_data_type, from_numpy_dtype

UNKNOWN_DIM = -1


def normalize_shape(shape: Sequence[int] | int | None, *, where: str = "shape") -> tuple[int, ...]:
    """Turn a shape-like into a tuple of ints, checking each dim is ≥ -1."""
    if shape is None:
        return ()
    if type(shape) is tuple and all(type(d) is int and d >= UNKNOWN_DIM for d in shape):
        return shape  # the common case, already normal (a parse of 100k nodes makes 200k)
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise GeError(SHAPE_INVALID, f"{where} {shape!r} is not a sequence of ints") from None
    for d in dims:
        if d < UNKNOWN_DIM:
            raise GeError(
                SHAPE_INVALID, f"{where} {dims} has dim {d}; dims must be ≥ 0, or -1 for unknown"
            )
    return dims


@dataclass(frozen=True)
class TensorDesc:
    """The static description of one tensor: element type, shape and layout.

    ``shape`` may contain -1 (unknown) before compilation. ``origin_format`` is the layout the
    user gave (GE keeps it when the compiler changes ``format``); it defaults to ``format``.
    """

    dtype: DataType = DataType.DT_FLOAT
    shape: tuple[int, ...] = ()
    format: Format = Format.FORMAT_ND
    origin_format: Format | None = None
    name: str = ""
    origin_shape: tuple[int, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if type(self.dtype) is not DataType:
            object.__setattr__(self, "dtype", as_data_type(self.dtype))
        object.__setattr__(self, "shape", normalize_shape(self.shape))
        if type(self.format) is not Format:
            try:
                object.__setattr__(self, "format", Format(self.format))
            except ValueError:
                raise GeError(
                    DATATYPE_INVALID, f"{self.format!r} is not a GE Format value"
                ) from None
        if self.origin_format is None:
            object.__setattr__(self, "origin_format", self.format)
        elif type(self.origin_format) is not Format:
            object.__setattr__(self, "origin_format", Format(self.origin_format))

    @property
    def is_static(self) -> bool:
        """True when every dim is known."""
        return all(d >= 0 for d in self.shape)

    @property
    def numel(self) -> int:
        """Number of elements (-1 when a dim is unknown)."""
        if not self.is_static:
            return -1
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def size_bytes(self) -> int:
        """Bytes the tensor takes in memory (-1 when a dim is unknown)."""
        n = self.numel
        return -1 if n < 0 else n * self.dtype.itemsize

    def with_shape(self, shape: Sequence[int]) -> TensorDesc:
        """A copy with another shape."""
        return replace(self, shape=tuple(shape))

    def with_dtype(self, dtype: DataType) -> TensorDesc:
        """A copy with another dtype."""
        return replace(self, dtype=dtype)

    def with_format(self, fmt: Format) -> TensorDesc:
        """A copy with another format (origin format kept)."""
        return replace(self, format=fmt)

    def type_str(self) -> str:
        """Short text form, e.g. ``float32[1,3,224,224]``."""
        dims = ",".join("?" if d < 0 else str(d) for d in self.shape)
        fmt = "" if self.format in (Format.FORMAT_ND,) else f"@{self.format.layout_name}"
        return f"{self.dtype.short_name}[{dims}]{fmt}"

    # CANN-style accessors, so scripts written against ge.TensorDesc keep working.
    def get_data_type(self) -> DataType:
        """The element type."""
        return self.dtype

    def get_shape(self) -> list[int]:
        """The dims as a list."""
        return list(self.shape)

    def get_format(self) -> Format:
        """The layout."""
        return self.format


class Tensor:
    """A tensor value: a TensorDesc and its data as a NumPy array.

    Accepts the CANN Python signature ``Tensor(data, tensor_desc=None, data_type=..., format=...,
    shape=...)`` as well as a plain NumPy array. ``numpy()`` returns the array without a copy.
    """

    __slots__ = ("_array", "_desc")

    def __init__(
        self,
        data: Any = None,
        tensor_desc: TensorDesc | None = None,
        data_type: DataType | int | str | None = None,
        format: Format | int = Format.FORMAT_ND,
        shape: Sequence[int] | None = None,
    ) -> None:
        if tensor_desc is not None:
            dtype = tensor_desc.dtype
            dims: tuple[int, ...] | None = tensor_desc.shape
            fmt = tensor_desc.format
        else:
            dtype = as_data_type(data_type) if data_type is not None else None
            dims = normalize_shape(shape) if shape is not None else None
            fmt = Format(format)
        if isinstance(data, Tensor):
            data = data.numpy()
        if data is None:
            if dtype is None or dims is None or not all(d >= 0 for d in dims):
                raise GeError(
                    PARAM_INVALID,
                    "Tensor without data needs a data_type and a static shape (got "
                    f"data_type={dtype}, shape={dims})",
                )
            array = np.zeros(dims, dtype=dtype.np_dtype)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            if dtype is None or dims is None:
                raise GeError(PARAM_INVALID, "Tensor from raw bytes needs data_type and shape")
            expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if len(data) != expected:
                raise GeError(
                    PARAM_INVALID,
                    f"Tensor data has {len(data)} bytes; {dtype.name}{list(dims)} needs {expected}",
                )
            array = np.frombuffer(data, dtype=dtype.np_dtype).reshape(dims)
        else:
            if isinstance(data, np.ndarray):
                array = data
            else:
                try:
                    array = np.asarray(data)
                except (TypeError, ValueError) as err:
                    raise GeError(PARAM_INVALID, f"Tensor data {data!r} is not array-like") from err
            if dtype is not None and array.dtype != dtype.np_dtype:
                array = array.astype(dtype.np_dtype)
            if dims is not None and tuple(array.shape) != dims:
                if array.size != int(np.prod(dims, dtype=np.int64)):
                    raise GeError(
                        SHAPE_INVALID,
                        f"Tensor data has {array.size} elements but shape {list(dims)} needs "
                        f"{int(np.prod(dims, dtype=np.int64))}",
                    )
                array = array.reshape(dims)
        self._array = array
        self._desc = TensorDesc(from_numpy_dtype(array.dtype), array.shape, fmt)

    @property
    def desc(self) -> TensorDesc:
        """The tensor's description."""
        return self._desc

    @property
    def dtype(self) -> DataType:
        """Element type."""
        return self._desc.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """Dims."""
        return self._desc.shape

    @property
    def format(self) -> Format:
        """Layout."""
        return self._desc.format

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (no copy)."""
        return self._array

    def get_tensor_desc(self) -> TensorDesc:
        """CANN-style accessor for the description."""
        return self._desc

    def get_data(self) -> np.ndarray:
        """CANN-style accessor for the data."""
        return self._array

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._array if dtype is None else self._array.astype(dtype)

    def __repr__(self) -> str:
        return f"Tensor({self._desc.type_str()})"
