"""Batch columns to model inputs and model outputs to columns (numpy, pandas or pyarrow batches).

Ray Data hands a ``map_batches`` function a dict of NumPy arrays, a pandas DataFrame or a pyarrow
Table. A model input column holds one sample per row: either an N-d tensor column (rows ×
sample shape) or a column of per-row lists/arrays, possibly flattened; both are turned into one
C-contiguous array of the model input's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, GeError


def batch_columns(batch: Any) -> dict[str, Any]:
    """The batch as ``{column: values}`` whatever its format (dict, DataFrame, Table)."""
    if isinstance(batch, Mapping):
        return dict(batch)
    if hasattr(batch, "column_names") and hasattr(batch, "column"):  # pyarrow.Table
        return {name: batch.column(name) for name in batch.column_names}
    if hasattr(batch, "columns") and hasattr(batch, "__getitem__"):  # pandas.DataFrame
        return {str(name): batch[name] for name in batch.columns}
    raise GeError(
        PARAM_INVALID,
        f"cannot read a batch of type {type(batch).__name__}: use batch_format 'numpy', "
        "'pandas' or 'pyarrow'",
    )


def column_rows(values: Any, column: str) -> np.ndarray:
    """One array of shape (rows, ...) from a column's values."""
    if hasattr(values, "combine_chunks"):  # pyarrow.ChunkedArray
        values = values.combine_chunks()
    if hasattr(values, "to_numpy_ndarray"):  # Ray's ArrowTensorArray
        values = values.to_numpy_ndarray()
    elif hasattr(values, "type") and hasattr(values, "flatten") and hasattr(values, "offsets"):
        values = _arrow_list_rows(values, column)
    elif type(values).__module__.startswith("pyarrow"):  # other pyarrow arrays (strings, ...)
        values = values.to_numpy(zero_copy_only=False)
    elif hasattr(values, "to_numpy"):  # pandas Series
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype == object:
        try:
            rows = [np.asarray(v) for v in array]
            array = np.stack(rows) if rows else np.empty((0,), dtype=np.float32)
        except (ValueError, TypeError) as err:
            raise GeError(
                SHAPE_INVALID,
                f"column {column!r}: rows have different shapes or are not numeric ({err})",
            ) from err
    return array


def _arrow_list_rows(values: Any, column: str) -> np.ndarray:
    """A pyarrow list column as (rows, width): every row must have the same length."""
    offsets = np.asarray(values.offsets)
    lengths = np.diff(offsets)
    if len(lengths) and (lengths != lengths[0]).any():
        raise GeError(SHAPE_INVALID, f"column {column!r}: list rows have different lengths")
    flat = np.asarray(values.flatten().to_numpy(zero_copy_only=False))
    width = int(lengths[0]) if len(lengths) else 0
    return flat.reshape(len(lengths), width)


def as_model_rows(
    array: np.ndarray, column: str, sample_shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """``array`` (rows, ...) reshaped to (rows, *sample_shape) and converted to ``dtype``.

    Flattened rows are reshaped when their size matches; a dtype is converted only within its
    kind (float64 → float32, int64 → int32), never float → int.
    """
    rows = array.shape[0] if array.ndim else 0
    if array.ndim == 0:
        raise GeError(SHAPE_INVALID, f"column {column!r} is a scalar, not one value per row")
    known = all(d >= 0 for d in sample_shape)
    if tuple(array.shape[1:]) != tuple(sample_shape):
        if known and int(np.prod(array.shape[1:], dtype=np.int64)) == int(
            np.prod(sample_shape, dtype=np.int64)
        ):
            array = array.reshape(rows, *sample_shape)
        elif not _fits(array.shape[1:], sample_shape):
            raise GeError(
                SHAPE_INVALID,
                f"column {column!r}: each row has shape {list(array.shape[1:])}; the model "
                f"input takes {list(sample_shape)} per row",
            )
    if array.dtype != dtype:
        if not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise GeError(
                DATATYPE_INVALID,
                f"column {column!r} holds {array.dtype}; the model input takes {dtype} "
                "(convert the column first)",
            )
        array = array.astype(dtype)
    return np.ascontiguousarray(array)


def _fits(shape: Sequence[int], pattern: Sequence[int]) -> bool:
    return len(shape) == len(pattern) and all(p < 0 or p == s for s, p in zip(shape, pattern))


def resolve_mapping(
    mapping: Mapping[str, str] | Sequence[str] | None, names: Sequence[str], what: str
) -> list[str]:
    """Column names in model order: a dict model-name → column, a list in model order, or None
    (the model's own names)."""
    if mapping is None:
        return list(names)
    if isinstance(mapping, Mapping):
        unknown = [k for k in mapping if k not in names]
        if unknown:
            raise GeError(
                PARAM_INVALID,
                f"{what} mapping names {', '.join(map(repr, unknown))}, which the model does "
                f"not have; its {what}s are {', '.join(names)}",
            )
        return [mapping.get(n, n) for n in names]
    columns = [str(c) for c in mapping]
    if len(columns) != len(names):
        raise GeError(
            PARAM_INVALID,
            f"{len(columns)} {what} columns given for a model with {len(names)} {what}s "
            f"({', '.join(names)})",
        )
    return columns
