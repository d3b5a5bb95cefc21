"""``acl.mdl`` dynamic AIPP: parameter sets (``aclmdlAIPP``) filled field by field in GE's
binary layout, then written into the model's ``ascend_dynamic_aipp_data`` input buffer."""

from __future__ import annotations

import struct
from typing import Any

from openge.acl import _api
from openge.acl import _codes as codes
from openge.acl._aipp import _aipp_task
from openge.acl._api import fail, need_int
from openge.acl._memory import MEMORY
from openge.acl._models import MODELS
from openge.acl._state import STATE
from openge.ops.aipp import BATCH, BATCH_SIZE, HEAD, HEAD_SIZE, IN_CHANNELS, dynamic_params_size

_MAX_BATCH = 32


def _put(buf: bytearray, base: int, fields: dict, name: str, value: Any) -> None:
    offset, fmt = fields[name]
    struct.pack_into("<" + fmt, buf, base + offset, value)


def _set(handle: Any, call: str) -> bytearray | int:
    need_int(handle, "aipp_parms_set")
    buf = STATE.aipp_sets.get(handle)
    if buf is None:
        return fail(codes.INVALID_PARAM, f"acl.mdl.{call}: unknown AIPP parameter set")
    return buf


def _batch_base(buf: bytearray, batch_index: int, call: str) -> int:
    need_int(batch_index, "batch_index")
    if not 0 <= batch_index < (len(buf) - HEAD_SIZE) // BATCH_SIZE:
        return -fail(codes.INVALID_PARAM, f"acl.mdl.{call}: batch index {batch_index}")
    return HEAD_SIZE + BATCH_SIZE * batch_index


def create_aipp(batch_size: int) -> int:
    """``aclmdlCreateAIPP`` → parameter set handle (0 on failure)."""
    need_int(batch_size, "batch_size")
    if not 1 <= batch_size <= _MAX_BATCH:
        fail(codes.INVALID_PARAM, f"acl.mdl.create_aipp: batch size {batch_size} not in 1..32")
        return 0
    buf = bytearray(dynamic_params_size(batch_size))
    _put(buf, 0, HEAD, "batch_num", batch_size)
    for b in range(batch_size):
        for k in range(4):
            _put(buf, HEAD_SIZE + BATCH_SIZE * b, BATCH, f"var_{k}", 1.0)
    return STATE.aipp_sets.add(buf)


def destroy_aipp(aipp_parms_set: int) -> int:
    """``aclmdlDestroyAIPP``."""
    return _api.release(STATE.aipp_sets, aipp_parms_set, "acl.mdl.destroy_aipp")


def _head(aipp_parms_set: int, call: str, **values: int) -> int:
    buf = _set(aipp_parms_set, call)
    if isinstance(buf, int):
        return buf
    for name, value in values.items():
        need_int(value, name)
        try:
            _put(buf, 0, HEAD, name, value)
        except struct.error:
            return fail(codes.INVALID_PARAM, f"acl.mdl.{call}: {name} = {value} out of range")
    return codes.SUCCESS


def set_aipp_input_format(aipp_parms_set: int, input_format: int) -> int:
    """``aclmdlSetAIPPInputFormat`` (aclAippInputFormat: 1 YUV420SP, 2 XRGB8888, 3 RGB888,
    4 YUV400)."""
    need_int(input_format, "input_format")
    if input_format not in IN_CHANNELS:
        return fail(codes.INVALID_PARAM, f"acl.mdl.set_aipp_input_format: format {input_format}")
    return _head(aipp_parms_set, "set_aipp_input_format", input_format=input_format)


def set_aipp_csc_params(aipp_parms_set: int, csc_switch: int, *values: int) -> int:
    """``aclmdlSetAIPPCscParams(set, switch, r0c0 … r2c2, out_bias_r0..2, in_bias_r0..2)``."""
    if len(values) != 15:
        raise TypeError("set_aipp_csc_params takes the set, the switch and 15 ints")
    fields = {f"matrix_{k}": values[k] for k in range(9)}
    fields.update({f"output_bias_{k}": values[9 + k] for k in range(3)})
    fields.update({f"input_bias_{k}": values[12 + k] for k in range(3)})
    return _head(aipp_parms_set, "set_aipp_csc_params", csc_switch=csc_switch, **fields)


def set_aipp_rbuv_swap_switch(aipp_parms_set: int, rbuv_swap_switch: int) -> int:
    """``aclmdlSetAIPPRbuvSwapSwitch``."""
    return _head(aipp_parms_set, "set_aipp_rbuv_swap_switch", rbuv_swap_switch=rbuv_swap_switch)


def set_aipp_ax_swap_switch(aipp_parms_set: int, ax_swap_switch: int) -> int:
    """``aclmdlSetAIPPAxSwapSwitch``."""
    return _head(aipp_parms_set, "set_aipp_ax_swap_switch", ax_swap_switch=ax_swap_switch)


def set_aipp_src_image_size(
    aipp_parms_set: int, src_image_size_w: int, src_image_size_h: int
) -> int:
    """``aclmdlSetAIPPSrcImageSize(set, w, h)``."""
    return _head(
        aipp_parms_set, "set_aipp_src_image_size", src_w=src_image_size_w, src_h=src_image_size_h
    )


def _batch(aipp_parms_set: int, batch_index: int, call: str, **values: Any) -> int:
    buf = _set(aipp_parms_set, call)
    if isinstance(buf, int):
        return buf
    base = _batch_base(buf, batch_index, call)
    if base < 0:
        return -base
    for name, value in values.items():
        try:
            _put(buf, base, BATCH, name, value)
        except (struct.error, OverflowError):
            return fail(codes.INVALID_PARAM, f"acl.mdl.{call}: {name} = {value} out of range")
    return codes.SUCCESS


def set_aipp_scf_params(
    aipp_parms_set: int,
    scf_switch: int,
    scf_input_w: int,
    scf_input_h: int,
    scf_output_w: int,
    scf_output_h: int,
    batch_index: int,
) -> int:
    """``aclmdlSetAIPPScfParams``: scaling is not implemented (switch 1 → API_NOT_SUPPORT)."""
    for v in (scf_switch, scf_input_w, scf_input_h, scf_output_w, scf_output_h):
        need_int(v, "scf parameter")
    if scf_switch:
        return fail(codes.API_NOT_SUPPORT, "acl.mdl.set_aipp_scf_params: openge has no AIPP resize")
    return _batch(aipp_parms_set, batch_index, "set_aipp_scf_params", scf_switch=0)


def set_aipp_crop_params(
    aipp_parms_set: int,
    crop_switch: int,
    crop_start_pos_w: int,
    crop_start_pos_h: int,
    crop_size_w: int,
    crop_size_h: int,
    batch_index: int,
) -> int:
    """``aclmdlSetAIPPCropParams``."""
    for v in (crop_switch, crop_start_pos_w, crop_start_pos_h, crop_size_w, crop_size_h):
        need_int(v, "crop parameter")
    return _batch(
        aipp_parms_set,
        batch_index,
        "set_aipp_crop_params",
        crop_switch=crop_switch,
        crop_w0=crop_start_pos_w,
        crop_h0=crop_start_pos_h,
        crop_w=crop_size_w,
        crop_h=crop_size_h,
    )


def set_aipp_padding_params(
    aipp_parms_set: int,
    padding_switch: int,
    padding_size_top: int,
    padding_size_bottom: int,
    padding_size_left: int,
    padding_size_right: int,
    batch_index: int,
) -> int:
    """``aclmdlSetAIPPPaddingParams`` (the padding holds 0)."""
    sizes = (padding_size_top, padding_size_bottom, padding_size_left, padding_size_right)
    for v in (padding_switch, *sizes):
        need_int(v, "padding parameter")
    if any(not 0 <= v <= 32 for v in sizes):
        return fail(codes.INVALID_PARAM, f"acl.mdl.set_aipp_padding_params: sizes {sizes}")
    return _batch(
        aipp_parms_set,
        batch_index,
        "set_aipp_padding_params",
        pad_switch=padding_switch,
        pad_top=sizes[0],
        pad_bottom=sizes[1],
        pad_left=sizes[2],
        pad_right=sizes[3],
    )


def set_aipp_dtc_pixel_mean(
    aipp_parms_set: int, mean0: int, mean1: int, mean2: int, mean3: int, batch_index: int
) -> int:
    """``aclmdlSetAIPPDtcPixelMean``."""
    means = (mean0, mean1, mean2, mean3)
    for v in means:
        need_int(v, "mean")
    return _batch(
        aipp_parms_set,
        batch_index,
        "set_aipp_dtc_pixel_mean",
        **{f"mean_{k}": v for k, v in enumerate(means)},
    )


def _floats(values: tuple, name: str) -> tuple[float, ...]:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name} values must be numbers")
    return tuple(float(v) for v in values)


def set_aipp_dtc_pixel_min(
    aipp_parms_set: int, min0: float, min1: float, min2: float, min3: float, batch_index: int
) -> int:
    """``aclmdlSetAIPPDtcPixelMin`` (stored as float16, as on the device)."""
    mins = _floats((min0, min1, min2, min3), "min")
    return _batch(
        aipp_parms_set,
        batch_index,
        "set_aipp_dtc_pixel_min",
        **{f"min_{k}": v for k, v in enumerate(mins)},
    )


def set_aipp_pixel_var_reci(
    aipp_parms_set: int, var0: float, var1: float, var2: float, var3: float, batch_index: int
) -> int:
    """``aclmdlSetAIPPPixelVarReci`` (stored as float16)."""
    vars_ = _floats((var0, var1, var2, var3), "var_reci")
    return _batch(
        aipp_parms_set,
        batch_index,
        "set_aipp_pixel_var_reci",
        **{f"var_{k}": v for k, v in enumerate(vars_)},
    )


def _write(model_id: int, dataset: int, index: int, aipp_parms_set: int, call: str) -> int:
    for v, name in ((model_id, "model_id"), (dataset, "dataset"), (index, "index")):
        need_int(v, name)
    buf = _set(aipp_parms_set, call)
    if isinstance(buf, int):
        return buf
    entry = MODELS.get(model_id)
    if entry is None:
        return fail(codes.INVALID_MODEL_ID, f"acl.mdl.{call}: model {model_id} is not loaded")
    if _aipp_task(entry.model, index, position=1) is None:
        return fail(
            codes.INVALID_PARAM, f"acl.mdl.{call}: input {index} is not ascend_dynamic_aipp_data"
        )
    if len(buf) != entry.model.inputs[index].size:
        return fail(
            codes.INVALID_PARAM,
            f"acl.mdl.{call}: the set is for "
            f"{(len(buf) - HEAD_SIZE) // BATCH_SIZE} images; the model takes "
            f"{(entry.model.inputs[index].size - HEAD_SIZE) // BATCH_SIZE}",
        )
    ds = STATE.datasets.get(dataset)
    if ds is None or index >= len(ds.buffers):
        return fail(codes.INVALID_PARAM, f"acl.mdl.{call}: the dataset has no buffer {index}")
    target = STATE.buffers.get(ds.buffers[index])
    if target is None or target.size < len(buf) or MEMORY.check(target.addr, len(buf)):
        return fail(
            codes.INVALID_PARAM, f"acl.mdl.{call}: buffer {index} cannot hold {len(buf)} bytes"
        )
    MEMORY.view(target.addr, len(buf))[:] = memoryview(buf)
    return codes.SUCCESS


def set_input_aipp(model_id: int, dataset: int, index: int, aipp_parms_set: int) -> int:
    """``aclmdlSetInputAIPP``: ``index`` is the ``ascend_dynamic_aipp_data`` input."""
    return _write(model_id, dataset, index, aipp_parms_set, "set_input_aipp")


def set_aipp_by_input_index(model_id: int, dataset: int, index: int, aipp_parms_set: int) -> int:
    """``aclmdlSetAIPPByInputIndex``: ``index`` is the image input the parameters are for."""
    need_int(model_id, "model_id")
    need_int(index, "index")
    entry = MODELS.get(model_id)
    if entry is None:
        return fail(codes.INVALID_MODEL_ID, f"acl.mdl.set_aipp_by_input_index: model {model_id}")
    task = _aipp_task(entry.model, index)
    if task is None or not task.attrs.get("dynamic"):
        return fail(codes.INVALID_PARAM, f"input {index} has no dynamic AIPP")
    return _write(
        model_id, dataset, task.inputs[1].offset, aipp_parms_set, "set_aipp_by_input_index"
    )
