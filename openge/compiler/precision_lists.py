"""The mixed-precision op lists: data, one place (docs/precision.md prints them per op).

GE's mixed-precision modes (``allow_mix_precision*``, ``mixed_float16`` / ``mixed_bfloat16``)
sort every op into one of three lists:

* **white** — may be lowered: computed in float16 / bfloat16 (the cube ops: convolution and
  matrix products, whose accumulation stays float32 on the NPU; openge's is exact, correctly
  rounded to float32: ``openge.ops.exact_cube``);
* **black** — never lowered: computed in float32 because the result is sensitive to the
  input's precision (exp/log, powers, divisions, normalizations, large reductions, softmax);
* **gray** — follows its input: lowered when one of its non-constant float inputs already is
  (elementwise math, activations, pooling, data movement).

``CUBE`` names the ops the ``force_fp32`` / ``cube_fp16in_fp32out`` / ``allow_fp32_to_fp16`` /
``allow_fp32_to_bf16`` modes treat as cube ops. ``UNTOUCHED`` ops never change dtype (they
convert, produce or store values). An op in none of the lists is gray. ``--modify_mixlist``
(option ``ge.exec.modify_mixlist``) edits the lists per op type for one compilation.
"""

from __future__ import annotations

CUBE: frozenset[str] = frozenset(
    {"Conv2D", "Conv2DTranspose", "MatMulV2", "BatchMatMulV2", "FusedConv2D", "FusedMatMul"}
)

WHITE: frozenset[str] = CUBE

BLACK: frozenset[str] = frozenset(
    {
        # exponentials, logarithms, powers
        "Exp",
        "Expm1",
        "Log",
        "Log1p",
        "Pow",
        "Softplus",
        "Erf",
        # divisions and roots
        "RealDiv",
        "Div",
        "Reciprocal",
        "Sqrt",
        "Rsqrt",
        "SquaredDifference",
        # softmax and normalizations
        "SoftmaxV2",
        "LogSoftmaxV2",
        "LayerNorm",
        "GroupNorm",
        "InstanceNorm",
        "BNInference",
        "BatchNorm",
        "LRN",
        # reductions that sum or multiply many values
        "ReduceSum",
        "ReduceSumD",
        "ReduceMean",
        "ReduceMeanD",
        "ReduceProd",
        "ReduceProdD",
        "ReduceLogSumExp",
        "EuclideanNorm",
        "Cumsum",
        "CumsumD",
        "Cumprod",
    }
)

UNTOUCHED: frozenset[str] = frozenset(
    {
        "Cast",
        "Data",
        "Const",
        "FileConstant",
        "Variable",
        "Assign",
        "AssignAdd",
        "AssignSub",
        "NetOutput",
        "Shape",
        "Size",
        "Rank",
        "Range",
        "Bitcast",
    }
)

LISTS = ("white", "black", "gray")


def default_list(op_type: str) -> str | None:
    """``"white"``, ``"black"``, ``"gray"`` or None (untouched) for an op type."""
    if op_type in UNTOUCHED:
        return None
    if op_type in WHITE:
        return "white"
    if op_type in BLACK:
        return "black"
    return "gray"
