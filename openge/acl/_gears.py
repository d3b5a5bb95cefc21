"""``acl.mdl`` gear calls (dynamic batch / image size / dims) over the runtime Model's gear
methods. A model without them (static) answers like a static model on the device: empty gear
lists and ACL_ERROR_MODEL_NOT_DYNAMIC for the set calls."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from openge.acl import _codes as codes
from openge.acl._api import fail, need_int
from openge.acl._memory import MEMORY
from openge.acl._models import MODELS, largest_shape
from openge.acl._state import STATE
from openge.errors import GeError


def _model_of_desc(model_desc: Any) -> Any:
    need_int(model_desc, "model_desc")
    desc = STATE.descs.get(model_desc)
    return None if desc is None else desc.model


def _call(model: Any, method: str, *args: Any) -> tuple[Any, int]:
    """``model.method(*args)`` → (result, code); (None, 0) when the model has no such method."""
    fn = getattr(model, method, None)
    if fn is None:
        return None, codes.SUCCESS
    try:
        return fn(*args), codes.SUCCESS
    except GeError as err:
        return None, fail(codes.from_error(err.code), f"acl.mdl.{method}: {err}")


def get_dynamic_batch(model_desc: int) -> tuple[dict, int]:
    """``({"batchCount": n, "batch": [...]}, ret)``; count 0 for a model without batch gears."""
    model = _model_of_desc(model_desc)
    if model is None:
        return {}, fail(codes.INVALID_PARAM, "acl.mdl.get_dynamic_batch: unknown or empty desc")
    gears, code = _call(model, "get_dynamic_batch")
    if code:
        return {}, code
    batch = [int(b) for b in (gears or [])]
    return {"batchCount": len(batch), "batch": batch}, codes.SUCCESS


def get_dynamic_hw(model_desc: int, index: int) -> tuple[dict, int]:
    """``({"hwCount": n, "hw": [[h, w], ...]}, ret)``."""
    need_int(index, "index")
    model = _model_of_desc(model_desc)
    if model is None:
        return {}, fail(codes.INVALID_PARAM, "acl.mdl.get_dynamic_hw: unknown or empty desc")
    gears, code = _call(model, "get_dynamic_hw", index)
    if code:
        return {}, code
    hw = [[int(h), int(w)] for h, w in (gears or [])]
    return {"hwCount": len(hw), "hw": hw}, codes.SUCCESS


def get_input_dynamic_gear_count(model_desc: int, index: int) -> tuple[int, int]:
    """``(count, ret)`` of ``--dynamic_dims`` gears (index -1: all inputs)."""
    need_int(index, "index")
    model = _model_of_desc(model_desc)
    if model is None:
        return 0, fail(codes.INVALID_PARAM, "acl.mdl.get_input_dynamic_gear_count: unknown desc")
    gears, code = _call(model, "get_input_dynamic_dims")
    return (len(gears or []), code)


def get_input_dynamic_dims(model_desc: int, index: int, gear_count: int) -> tuple[list, int]:
    """``([{"name", "dimCount", "dims"}, ...], ret)``: each gear's concatenated dims."""
    need_int(index, "index")
    need_int(gear_count, "gear_count")
    model = _model_of_desc(model_desc)
    if model is None:
        return [], fail(codes.INVALID_PARAM, "acl.mdl.get_input_dynamic_dims: unknown desc")
    gears, code = _call(model, "get_input_dynamic_dims")
    if code:
        return [], code
    gears = list(gears or [])
    if gear_count != len(gears):
        return [], fail(
            codes.INVALID_PARAM,
            f"acl.mdl.get_input_dynamic_dims: gear_count {gear_count}; the model has {len(gears)}",
        )
    return [
        {"name": "", "dimCount": len(g), "dims": [int(d) for d in g]} for g in gears
    ], codes.SUCCESS


def dataset_input_views(model: Any, dataset: int) -> list[np.ndarray] | int:
    """The dataset's buffers as arrays of the model's input types (largest gear for dynamic
    axes; a raw byte view where a buffer is smaller)."""
    ds = STATE.datasets.get(dataset)
    if ds is None:
        return fail(codes.INVALID_PARAM, f"unknown dataset {dataset!r}")
    views: list[np.ndarray] = []
    for handle, desc in zip(ds.buffers, model.inputs):
        buf = STATE.buffers.get(handle)
        if buf is None:
            return fail(codes.INVALID_PARAM, "a dataset buffer was destroyed")
        why = MEMORY.check(buf.addr, buf.size)
        if why:
            return fail(codes.INVALID_PARAM, why)
        raw = MEMORY.view(buf.addr, buf.size)
        shape = largest_shape(desc)
        need = math.prod(shape) * desc.dtype.itemsize
        views.append(
            raw[:need].view(desc.dtype.np_dtype).reshape(shape) if need <= buf.size else raw
        )
    return views


def _set(model_id: int, dataset: int, index: int, method: str, *values: Any) -> int:
    for v, name in ((model_id, "model_id"), (dataset, "dataset"), (index, "index")):
        need_int(v, name)
    entry = MODELS.get(model_id)
    if entry is None:
        return fail(codes.INVALID_MODEL_ID, f"acl.mdl.{method}: model id {model_id} is not loaded")
    fn = getattr(entry.model, method, None)
    if fn is None or getattr(entry.model, "gears", "n/a") is None:  # runtime without / no gears
        return fail(codes.MODEL_NOT_DYNAMIC, f"acl.mdl.{method}: the model has no gears")
    views = dataset_input_views(entry.model, dataset)
    if isinstance(views, int):
        return views
    if not 0 <= index < len(views):
        return fail(codes.INVALID_PARAM, f"acl.mdl.{method}: input {index} is not in the dataset")
    try:
        fn(views, index, *values)
    except GeError as err:
        return fail(codes.from_error(err.code), f"acl.mdl.{method}: {err}")
    return codes.SUCCESS


def set_dynamic_batch_size(model_id: int, dataset: int, index: int, batch_size: int) -> int:
    """``aclmdlSetDynamicBatchSize``: write the batch into ``ascend_mbatch_shape_data``."""
    need_int(batch_size, "batch_size")
    return _set(model_id, dataset, index, "set_dynamic_batch_size", batch_size)


def set_dynamic_hw_size(model_id: int, dataset: int, index: int, height: int, width: int) -> int:
    """``aclmdlSetDynamicHWSize``."""
    need_int(height, "height")
    need_int(width, "width")
    return _set(model_id, dataset, index, "set_dynamic_hw_size", height, width)


def set_input_dynamic_dims(model_id: int, dataset: int, index: int, dims: dict) -> int:
    """``aclmdlSetInputDynamicDims`` (``dims``: ``{"dimCount": n, "dims": [...]}`` or a list)."""
    values = dims.get("dims") if isinstance(dims, dict) else dims
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) for v in values):
        raise TypeError("dims must be {'dimCount': n, 'dims': [int, ...]} or a list of ints")
    return _set(model_id, dataset, index, "set_input_dynamic_dims", list(values))
