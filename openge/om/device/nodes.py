"""Facts about single device-graph ops: fused or not, and why (shared by summary and loader).

Layer: om. Old ATC marks a UB-fusion group with ``fusion_scope`` > 0; CANN 8 with
``_is_fusion_op`` or ``pass_name_ub``; ``AutomaticBufferFusionOp`` is a fused group itself.
Such a node stands for several original ops (``_datadump_original_op_names``) whose own
attributes are not kept.
"""

from __future__ import annotations

from typing import Any

FUSED_TYPES = ("AutomaticBufferFusionOp",)


def original_ops(op: Any) -> list[str]:
    """The original op names a node was made from (``_datadump_original_op_names``)."""
    if "_datadump_original_op_names" not in op.attr:
        return []
    return [s.decode("utf-8", "replace") for s in op.attr["_datadump_original_op_names"].list.s]


def fusion_reason(op: Any) -> str:
    """Why ``op`` is a fused node ("" when it is not)."""
    attrs = op.attr
    if op.type in FUSED_TYPES:
        return f"a {op.type} group"
    if "fusion_scope" in attrs and attrs["fusion_scope"].i > 0:
        return f"fusion_scope {attrs['fusion_scope'].i}"
    if "_is_fusion_op" in attrs and attrs["_is_fusion_op"].b:
        return "_is_fusion_op"
    if "pass_name_ub" in attrs:
        return "pass_name_ub " + attrs["pass_name_ub"].s.decode("utf-8", "replace")
    return ""


__all__ = ["FUSED_TYPES", "fusion_reason", "original_ops"]
