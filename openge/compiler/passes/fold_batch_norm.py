"""FoldBatchNormPass: fold inference batch norms and constant scales into the preceding
Conv2D / MatMulV2 weights.

For ``y = BN(conv(x, W) + b)`` with per-channel ``s = scale / sqrt(var + eps)``:
``y = conv(x, W·s) + (b - mean)·s + offset`` — one convolution instead of a convolution and a
normalization pass (Caffe-style BNInference without scale/offset uses ``f = 1/momentum``:
``s = 1/sqrt(f·var + eps)``, ``b' = (b - f·mean)·s``). ``Mul(conv(x, W) + b, c)`` with a
per-output-channel constant ``c`` folds the same way (``W·c``, ``b·c``), and so does
``Add(conv(x, W) + b, c)`` when the conv has a bias already (``b + c``; e.g. the Scale layer a BN
is often followed by).

Safe because the algebra is exact; only the rounding changes (the per-channel factors are
computed in float64 and rounded to the weights' type, each folded weight is rounded once), hence
results agree to ~1e-6 relative in float32.
Checks: the filter (and bias) are constants read only by this node, the BN statistics are
constants, the conv/matmul result feeds only the BN/Mul, and the channel axis is the one the
conv/matmul produces.
"""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.base import PassContext
from openge.compiler.passes.rules import (
    Match,
    Rule,
    RuleBasedPass,
    add_const,
    add_inferred,
    const_value,
    is_graph_output,
    private_const,
    producer,
    replace_node,
    sole_user,
    used_by_control,
)
from openge.graph import Graph, Node
from openge.ops import get_schema, node_where, normalize_attrs

MAIN_OPS = frozenset({"Conv2D", "MatMulV2"})
#: float16 is left alone: its rounding after folding differs by more than float rounding.
_FLOATS = frozenset({"float32", "float64"})


def batch_norm_affine(
    op_type: str,
    mean: np.ndarray,
    var: np.ndarray,
    momentum: np.ndarray | None,
    scale: np.ndarray | None,
    offset: np.ndarray | None,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel (scale, shift), in float64, with which an inference batch norm is
    ``x * scale + shift``: BatchNorm, or a BNInference (whose ``momentum`` input divides the
    stored statistics when it has no scale and offset, as CANN's BNInferenceD does)."""
    mean64 = mean.astype(np.float64).reshape(-1)
    var64 = var.astype(np.float64).reshape(-1)
    if op_type == "BNInference" and scale is None and offset is None:
        mval = float(np.asarray(momentum).reshape(-1)[0])
        f = 0.0 if mval == 0.0 else 1.0 / mval
        s = 1.0 / np.sqrt(var64 * f + eps)
        return s, -mean64 * f * s
    s = 1.0 / np.sqrt(var64 + eps)
    if scale is not None:
        s = s * scale.astype(np.float64).reshape(-1)
    shift = -mean64 * s
    if offset is not None:
        shift = shift + offset.astype(np.float64).reshape(-1)
    return s, shift


def inference_only(graph: Graph, bn: Node, attrs: dict) -> str | None:
    """Why a BatchNorm/BNInference cannot be replaced by its affine form (None when it can):
    training mode, or its statistics outputs are read."""
    if bn.op_type != "BatchNorm":
        return None
    if attrs["is_training"]:
        return "training-mode batch norm"
    if any(bn.users(i) or is_graph_output(graph, bn.output(i)) for i in range(1, bn.num_outputs)):
        return "the batch norm's statistics outputs are read"
    return None


def constant_affine(bn: Node, attrs: dict) -> tuple[np.ndarray, np.ndarray] | str:
    """The (scale, shift) of :func:`batch_norm_affine` from ``bn``'s constant inputs, or why
    they are not all constants."""
    params = [None if p is None else const_value(p) for p in bn.inputs[1:]]
    if bn.op_type == "BatchNorm":
        scale, offset, mean, var = (params + [None] * 4)[:4]
        momentum = None
        needed = [scale, offset, mean, var]
    else:
        mean, var, momentum, scale, offset = (params + [None] * 5)[:5]
        needed = [mean, var, momentum]
    if any(v is None for v in needed):
        return "the batch norm parameters are not all constants"
    if bn.op_type == "BNInference" and any(
        i < len(bn.inputs) and bn.inputs[i] is not None and params[i - 1] is None for i in (4, 5)
    ):
        return "the batch norm scale/offset are not constants"
    assert mean is not None and var is not None
    return batch_norm_affine(
        bn.op_type, mean, var, momentum, scale, offset, float(attrs["epsilon"])
    )


def _channel_axis(main: Node) -> int:
    """The axis of the main op's output that its filter's output channels index."""
    if main.op_type == "Conv2D":
        return 1 if main.attrs.get("data_format", "NHWC") == "NCHW" else 3
    return 1


def _main_checks(graph: Graph, main: Node, user: Node) -> str | None:
    """Structural checks shared by the rules: const, private weights; result feeds ``user``."""
    if main.control_inputs or used_by_control(graph, main):
        return f"{main.name} takes part in control edges"
    if not sole_user(graph, main.output(0), user):
        return f"the result of {main.name} is read elsewhere too"
    reason = private_const(graph, main.inputs[1], main)
    if reason is not None:
        return "filter: " + reason
    if len(main.inputs) > 2 and main.inputs[2] is not None:
        reason = private_const(graph, main.inputs[2], main)
        if reason is not None:
            return "bias: " + reason
    if len(main.inputs) > 3 and main.inputs[3] is not None:
        return "quantized (offset_w) weights"
    if str(main.output_descs[0].dtype.np_dtype) not in _FLOATS:
        return f"{main.output_descs[0].dtype.short_name} is not a float type"
    return None


def _scaled_main(graph: Graph, main: Node, scale: np.ndarray, shift: np.ndarray, name: str) -> Node:
    """A copy of ``main`` computing ``main(x)·scale + shift`` per output channel."""
    fport = main.inputs[1]
    w = const_value(fport)
    assert fport is not None and w is not None  # checked
    wdt = w.dtype
    s = scale.astype(wdt)  # one rounding of the factor; the products are rounded once each
    if np.all(s == 1):
        w_new = w
    elif main.op_type == "Conv2D":
        nchw = main.attrs.get("data_format", "NHWC") == "NCHW"
        w_new = w * (s.reshape(-1, 1, 1, 1) if nchw else s.reshape(1, 1, 1, -1))
    elif normalize_attrs(get_schema("MatMulV2"), main.attrs, node_where(main))["transpose_x2"]:
        w_new = w * s.reshape(-1, 1)
    else:
        w_new = w * s.reshape(1, -1)
    old_bias = None
    if len(main.inputs) > 2 and main.inputs[2] is not None:
        old_bias = const_value(main.inputs[2])
    bias_shape = (scale.size,) if old_bias is None else old_bias.shape
    b64 = np.zeros(scale.size) if old_bias is None else old_bias.astype(np.float64).reshape(-1)
    if b64.size == 1 and scale.size > 1:
        b64 = np.broadcast_to(b64, scale.shape)
        bias_shape = (scale.size,)
    b64 = b64 * scale + shift
    bdt = wdt if old_bias is None else old_bias.dtype
    if np.all(s == 1):
        wport = fport  # a pure shift: the weights stay as they are
    else:
        wport = add_const(graph, w_new, fport.node.name + "_folded", fport.desc)
    bport = add_const(graph, b64.astype(bdt).reshape(bias_shape), main.name + "_bias_folded")
    return add_inferred(graph, main.op_type, [main.inputs[0], wport, bport], dict(main.attrs), name)


def _channels(main: Node) -> int:
    return main.output_descs[0].shape[_channel_axis(main)]


class _BatchNormRule(Rule):
    """BNInference / BatchNorm(is_training=False) after Conv2D or MatMulV2."""

    name = "BatchNormIntoWeights"
    anchors = frozenset({"BNInference", "BatchNorm"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        main = producer(node, 0)
        if main is None or main.op_type not in MAIN_OPS:
            return None
        return Match({"bn": node, "main": main})

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        bn, main = m["bn"], m["main"]
        reason = _main_checks(graph, main, bn)
        if reason is not None:
            return reason
        if bn.control_inputs or used_by_control(graph, bn):
            return f"{bn.name} takes part in control edges"
        attrs = normalize_attrs(get_schema(bn.op_type), bn.attrs, node_where(bn))
        reason = inference_only(graph, bn, attrs)
        if reason is not None:
            return reason
        axis = _channel_axis(main)
        if bn.op_type == "BatchNorm" and attrs["data_format"] not in ("NCHW", "NCDHW"):
            bn_axis = len(bn.output_descs[0].shape) - 1
        else:
            bn_axis = 1
        if bn_axis != axis:
            return f"the batch norm normalizes axis {bn_axis}, the channels are axis {axis}"
        affine = constant_affine(bn, attrs)
        if isinstance(affine, str):
            return affine
        s, shift = affine
        c = _channels(main)
        if s.size != c or shift.size != c:
            return f"parameters have {s.size} values for {c} channels"
        m.data.update(scale=s, shift=shift)
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        bn, main = m["bn"], m["main"]
        new = _scaled_main(graph, main, m.data["scale"], m.data["shift"], bn.name + "_folded")
        replace_node(graph, bn, new)


class _ScaleRule(Rule):
    """Mul(main(x), c) with a per-output-channel (or scalar) constant c."""

    name = "ScaleIntoWeights"
    anchors = frozenset({"Mul"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        for i in (0, 1):
            main = producer(node, i)
            if main is not None and main.op_type in MAIN_OPS and len(node.inputs) == 2:
                return Match({"mul": node, "main": main}, {"const_index": 1 - i})
        return None

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        mul, main = m["mul"], m["main"]
        reason = _main_checks(graph, main, mul)
        if reason is not None:
            return reason
        cport = mul.inputs[m.data["const_index"]]
        c = const_value(cport)
        if c is None:
            return "the factor is not a constant"
        out = main.output_descs[0]
        if mul.output_descs[0].shape != out.shape or mul.output_descs[0].dtype != out.dtype:
            return "the product broadcasts beyond the conv/matmul result"
        axis = _channel_axis(main)
        rank = len(out.shape)
        shape = (1,) * (rank - c.ndim) + tuple(c.shape)
        if c.ndim > rank or any(d != 1 for i, d in enumerate(shape) if i != axis):
            return f"factor shape {list(c.shape)} is not per output channel (axis {axis})"
        channels = out.shape[axis]
        flat = (
            np.broadcast_to(c.astype(np.float64).reshape(-1), (channels,))
            if c.size == 1
            else c.astype(np.float64).reshape(-1)
        )
        m.data.update(scale=np.array(flat), shift=np.zeros(channels))
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        mul, main = m["mul"], m["main"]
        new = _scaled_main(graph, main, m.data["scale"], m.data["shift"], mul.name + "_folded")
        replace_node(graph, mul, new)


class _ShiftRule(Rule):
    """Add(main(x) + b, c) with a per-output-channel (or scalar) constant c: the bias becomes b + c.

    Only when main has a bias already (typically a folded BN's): without one,
    FuseBiasActivationPass makes c the bias bit-exactly. ``(y + b) + c`` and ``y + (b + c)``
    differ by a rounding, as folding a BN does.
    """

    name = "ShiftIntoBias"
    anchors = frozenset({"Add", "AddV2"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        if len(node.inputs) != 2:
            return None
        for i in (0, 1):
            main = producer(node, i)
            if main is not None and main.op_type in MAIN_OPS:
                return Match({"add": node, "main": main}, {"const_index": 1 - i})
        return None

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        add, main = m["add"], m["main"]
        if len(main.inputs) < 3 or main.inputs[2] is None:
            return f"{main.name} has no bias (FuseBiasActivationPass folds the addend exactly)"
        reason = _main_checks(graph, main, add)
        if reason is not None:
            return reason
        c = const_value(add.inputs[m.data["const_index"]])
        if c is None:
            return "the addend is not a constant"
        out = main.output_descs[0]
        if add.output_descs[0].shape != out.shape or add.output_descs[0].dtype != out.dtype:
            return "the sum broadcasts beyond (or changes the type of) the conv/matmul result"
        axis = _channel_axis(main)
        rank = len(out.shape)
        shape = (1,) * (rank - c.ndim) + tuple(c.shape)
        if c.ndim > rank or any(d != 1 for i, d in enumerate(shape) if i != axis):
            return f"addend shape {list(c.shape)} is not per output channel (axis {axis})"
        channels = out.shape[axis]
        flat = np.broadcast_to(c.astype(np.float64).reshape(-1), (channels,))
        m.data.update(scale=np.ones(channels), shift=np.array(flat))
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        add, main = m["add"], m["main"]
        new = _scaled_main(graph, main, m.data["scale"], m.data["shift"], add.name + "_folded")
        replace_node(graph, add, new)


class FoldBatchNormPass(RuleBasedPass):
    """Fold BN, constant per-channel scales and (onto an existing bias) constant per-channel
    shifts into the preceding Conv2D/MatMulV2 weights."""

    name = "FoldBatchNormPass"
    fusion = True
    rules = (_BatchNormRule(), _ScaleRule(), _ShiftRule())


__all__ = ["FoldBatchNormPass"]
