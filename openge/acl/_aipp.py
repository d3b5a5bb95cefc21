"""``acl.mdl`` AIPP queries: which inputs carry static AIPP and its parameters, read from the
loaded model's ``Aipp`` tasks (``aclmdlGetFirstAippInfo`` / ``aclmdlGetAippType``)."""

from __future__ import annotations

from typing import Any

from openge.acl import _codes as codes
from openge.acl._api import fail, need_int
from openge.acl._models import MODELS
from openge.om.plan import SlotKind

AIPP_NOT_EXIST = 145015  # ACL_ERROR_GE_AIPP_NOT_EXIST
AIPP_MODE_INVALID = 145016  # ACL_ERROR_GE_AIPP_MODE_INVALID
DATA_WITHOUT_AIPP, DATA_WITH_STATIC_AIPP, DATA_WITH_DYNAMIC_AIPP, DYNAMIC_AIPP_NODE = 0, 1, 2, 3


def _aipp_task(model: Any, index: int, position: int = 0) -> Any:
    """The Aipp task reading model input ``index`` as its input ``position`` (None: none)."""
    for task in model.compiled.tasks:
        if task.op_type != "Aipp" or len(task.inputs) <= position:
            continue
        slot = task.inputs[position]
        if slot.kind == SlotKind.INPUT and slot.offset == index:
            return task
    return None


def _aipp_attrs(model: Any, index: int) -> dict | None:
    task = _aipp_task(model, index)
    return None if task is None else task.attrs


def _info(a: dict, model: Any, index: int) -> dict[str, Any]:
    top, bottom, left, right = a["padding"]
    h0, w0, ch, cw = a["crop"]
    src = model.inputs[index]
    info: dict[str, Any] = {
        "inputFormat": a["input_format"],
        "srcImageSizeW": a["src_size"][1],
        "srcImageSizeH": a["src_size"][0],
        "cropSwitch": int(bool(h0 or w0 or ch != a["src_size"][0] or cw != a["src_size"][1])),
        "loadStartPosW": w0,
        "loadStartPosH": h0,
        "cropSizeW": cw,
        "cropSizeH": ch,
        "resizeSwitch": 0,
        "resizeOutputW": 0,
        "resizeOutputH": 0,
        "paddingSwitch": int(bool(top or bottom or left or right)),
        "leftPaddingSize": left,
        "rightPaddingSize": right,
        "topPaddingSize": top,
        "bottomPaddingSize": bottom,
        "cscSwitch": int(a["csc_switch"]),
        "rbuvSwapSwitch": int(a["rbuv_swap_switch"]),
        "axSwapSwitch": int(a["ax_swap_switch"]),
        "singleLineMode": 0,
    }
    for i, v in enumerate(a["matrix"]):
        info[f"matrixR{i // 3}C{i % 3}"] = v
    for i in range(3):
        info[f"outputBias{i}"] = a["output_bias"][i]
        info[f"inputBias{i}"] = a["input_bias"][i]
    for i in range(4):
        info[f"meanChn{i}"] = a["mean_chn"][i]
        info[f"minChn{i}"] = a["min_chn"][i]
        info[f"varReciChn{i}"] = a["var_reci_chn"][i]
    info.update(
        srcFormat=int(src.format),
        srcDatatype=int(src.dtype),
        srcDimNum=len(src.shape),
        shapeCount=1,
        outDims=[
            {"srcDims": {"name": src.name, "dimCount": len(src.shape), "dims": list(src.shape)}}
        ],
    )
    return info


def get_first_aipp_info(model_id: int, index: int) -> tuple[dict, int]:
    """``aclmdlGetFirstAippInfo`` → ``(aipp_info, ret)``: the static AIPP parameters of input
    ``index`` (aclAippInfo's fields as keys); ACL_ERROR_GE_AIPP_NOT_EXIST when it has none."""
    need_int(model_id, "model_id")
    need_int(index, "index")
    entry = MODELS.get(model_id)
    if entry is None:
        return {}, fail(codes.INVALID_MODEL_ID, f"acl.mdl.get_first_aipp_info: model {model_id}")
    if not 0 <= index < len(entry.model.inputs):
        return {}, fail(codes.INVALID_PARAM, f"acl.mdl.get_first_aipp_info: no input {index}")
    attrs = _aipp_attrs(entry.model, index)
    if attrs is None:
        return {}, AIPP_NOT_EXIST
    if attrs.get("dynamic"):
        return {}, AIPP_MODE_INVALID
    return _info(attrs, entry.model, index), codes.SUCCESS


def get_aipp_type(model_id: int, index: int) -> tuple[int, int, int]:
    """``aclmdlGetAippType`` → ``(type, dynamic_attached_index, ret)``: 1 static AIPP, 0 none."""
    need_int(model_id, "model_id")
    need_int(index, "index")
    entry = MODELS.get(model_id)
    if entry is None:
        return 0, 0, fail(codes.INVALID_MODEL_ID, f"acl.mdl.get_aipp_type: model {model_id}")
    if not 0 <= index < len(entry.model.inputs):
        return 0, 0, fail(codes.INVALID_PARAM, f"acl.mdl.get_aipp_type: no input {index}")
    task = _aipp_task(entry.model, index)
    if task is not None and task.attrs.get("dynamic"):
        return DATA_WITH_DYNAMIC_AIPP, task.inputs[1].offset, codes.SUCCESS
    if task is not None:
        return DATA_WITH_STATIC_AIPP, -1, codes.SUCCESS
    if _aipp_task(entry.model, index, position=1) is not None:
        return DYNAMIC_AIPP_NODE, -1, codes.SUCCESS
    return DATA_WITHOUT_AIPP, -1, codes.SUCCESS
