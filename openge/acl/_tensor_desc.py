"""``aclTensorDesc`` calls (top-level ``acl.*_tensor_desc*``) and the dataset tensor descs of
``acl.mdl`` (the actual dims of a dynamic-shape run)."""

from __future__ import annotations

import math
from typing import Any

from openge.acl import _api
from openge.acl import _codes as codes
from openge.acl._state import STATE, TensorDesc
from openge.graph import DataType


def _desc(handle: Any) -> TensorDesc | None:
    _api.need_int(handle, "tensor_desc")
    return STATE.tensor_descs.get(handle)


def create_tensor_desc(data_type: int, dims: list[int], format: int) -> int:
    """``aclCreateTensorDesc(dataType, dims, format)`` → handle (0 on failure)."""
    _api.need_int(data_type, "data_type")
    _api.need_int(format, "format")
    if not isinstance(dims, (list, tuple)) or not all(isinstance(d, int) for d in dims):
        raise TypeError("dims must be a list of ints")
    return STATE.tensor_descs.add(TensorDesc(data_type, list(dims), format))


def destroy_tensor_desc(tensor_desc: int) -> None:
    """``aclDestroyTensorDesc``."""
    _api.need_int(tensor_desc, "tensor_desc")
    STATE.tensor_descs.pop(tensor_desc)


def get_tensor_desc_type(tensor_desc: int) -> int:
    """aclDataType of the desc (-1 when unknown)."""
    desc = _desc(tensor_desc)
    return desc.dtype if desc is not None else -1


def get_tensor_desc_format(tensor_desc: int) -> int:
    """aclFormat of the desc (-1 when unknown)."""
    desc = _desc(tensor_desc)
    return desc.format if desc is not None else -1


def get_tensor_desc_num_dims(tensor_desc: int) -> int:
    """Number of dims (0 when unknown)."""
    desc = _desc(tensor_desc)
    return len(desc.dims) if desc is not None else 0


def get_tensor_desc_dim_v2(tensor_desc: int, index: int) -> tuple[int, int]:
    """``(dim, ret)`` of dim ``index``."""
    desc = _desc(tensor_desc)
    _api.need_int(index, "index")
    if desc is None or not 0 <= index < len(desc.dims):
        return -1, _api.fail(codes.INVALID_PARAM, f"get_tensor_desc_dim_v2: no dim {index}")
    return desc.dims[index], codes.SUCCESS


def get_tensor_desc_dim(tensor_desc: int, index: int) -> int:
    """Dim ``index`` (deprecated form; -1 on failure)."""
    return get_tensor_desc_dim_v2(tensor_desc, index)[0]


def get_tensor_desc_element_count(tensor_desc: int) -> int:
    """Number of elements (0 when unknown or dynamic)."""
    desc = _desc(tensor_desc)
    if desc is None or any(d < 0 for d in desc.dims):
        return 0
    return math.prod(desc.dims)


def get_tensor_desc_size(tensor_desc: int) -> int:
    """Bytes of a tensor of this desc (0 when unknown or dynamic)."""
    desc = _desc(tensor_desc)
    if desc is None:
        return 0
    try:
        itemsize = DataType(desc.dtype).itemsize
    except (ValueError, Exception):
        return 0
    return get_tensor_desc_element_count(tensor_desc) * itemsize


def set_tensor_desc_name(tensor_desc: int, name: str) -> None:
    """``aclSetTensorDescName``."""
    desc = _desc(tensor_desc)
    _api.need_str(name, "name")
    if desc is not None:
        desc.name = name


def get_tensor_desc_name(tensor_desc: int) -> str:
    """``aclGetTensorDescName``."""
    desc = _desc(tensor_desc)
    return desc.name if desc is not None else ""


def set_dataset_tensor_desc(dataset: int, tensor_desc: int, index: int) -> int:
    """``aclmdlSetDatasetTensorDesc``: the actual dims of input ``index`` for the next run."""
    _api.need_int(dataset, "dataset")
    _api.need_int(index, "index")
    ds = STATE.datasets.get(dataset)
    if ds is None or _desc(tensor_desc) is None or index < 0:
        return _api.fail(codes.INVALID_PARAM, "acl.mdl.set_dataset_tensor_desc: unknown handle")
    ds.tensor_descs[index] = tensor_desc
    return codes.SUCCESS


def get_dataset_tensor_desc(dataset: int, index: int) -> int:
    """``aclmdlGetDatasetTensorDesc``: the desc set on (or, for outputs of a dynamic-shape
    run, recorded in) the dataset at ``index``; 0 when none."""
    _api.need_int(dataset, "dataset")
    _api.need_int(index, "index")
    ds = STATE.datasets.get(dataset)
    if ds is None:
        return 0
    return ds.tensor_descs.get(index, 0)
