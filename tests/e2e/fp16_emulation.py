"""An independent NumPy emulation of an NPU running an ONNX model under ``force_fp16``.

Every float tensor — inputs, weights, each op's result — is float16; each op reads float16
values, computes in float32 and rounds its result to float16 once. Convolutions and matrix
products follow openge's documented cube rule (docs/precision.md): the float16 products
summed exactly — in float64 (each product of two float16 values is exact there), plus the
bias — rounded once to float32 (the cube's float32 accumulator, correctly rounded), then to
float16. Written from the ONNX operator definitions for the ops the acceptance models use
(im2col windows and einsum); it shares no code with openge.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F16, F32, F64 = np.float16, np.float32, np.float64


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pad(x: np.ndarray, pads: list[int], value: float = 0.0) -> np.ndarray:
    n = len(pads) // 2
    width = [(0, 0)] * (x.ndim - n) + [(pads[i], pads[i + n]) for i in range(n)]
    return np.pad(x, width, constant_values=value)


def _windows(x: np.ndarray, k: list[int], s: list[int]) -> np.ndarray:
    w = sliding_window_view(x, tuple(k), axis=(2, 3))
    return w[:, :, :: s[0], :: s[1]]


def cube_round(acc: np.ndarray) -> np.ndarray:
    """An exact (float64) cube accumulation rounded to the float32 accumulator."""
    assert acc.dtype == F64
    return acc.astype(F32)


def conv(x, w, b, a):
    """Convolution: im2col windows · weights summed in float64, + bias, rounded to float32."""
    k = list(w.shape[2:])
    s = a.get("strides", [1, 1])
    xp = _pad(x.astype(F64), a.get("pads", [0, 0, 0, 0]))
    win = _windows(xp, k, s)  # N, C, OH, OW, kh, kw
    y = np.einsum("nchwij,ocij->nohw", win, w.astype(F64), optimize=True)
    if b is not None:
        y = y + b.astype(F64).reshape(1, -1, 1, 1)
    return cube_round(y)


def matmul(x, w, b=None, alpha: float = 1.0, beta: float = 1.0):
    """Matrix product summed in float64 (``alpha`` · x @ w + ``beta`` · b), rounded to
    float32."""
    y = np.matmul(x.astype(F64), w.astype(F64))
    if alpha != 1.0:
        y = y * alpha
    if b is not None:
        y = y + b.astype(F64) * beta
    return cube_round(y)


def max_pool(x, a):
    xp = _pad(x, a.get("pads", [0, 0, 0, 0]), -np.inf)
    return _windows(xp, a["kernel_shape"], a.get("strides", [1, 1])).max(axis=(4, 5))


def avg_pool(x, a):
    xp = _pad(x, a.get("pads", [0, 0, 0, 0]))
    return _windows(xp, a["kernel_shape"], a.get("strides", [1, 1])).mean(axis=(4, 5))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, g, b, a):
    axis = a.get("axis", -1)
    eps = a.get("epsilon", 1e-5)
    mean = x.mean(axis=axis, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axis, keepdims=True)
    # ONNX's function body: Normalized = Mul(D, Reciprocal(Sqrt(Add(Var, Epsilon))))
    return d * (1 / np.sqrt(var + eps)) * g + b


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def fold_batch_norms(model, values: dict[str, np.ndarray]) -> list:
    """The nodes with each Conv → BatchNormalization pair folded into the Conv (stored in
    ``values``): GE fuses BN into the convolution on the float32 graph, before it converts
    weights to float16, so the device rounds the folded weights. As a float32 fusion does:
    the per-channel factor scale/sqrt(var + eps) rounded to float32, each folded weight the
    float32 product of weight and factor; the bias computed in float64, rounded to float32."""
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    producer = {o: n for n in model.graph.node for o in n.output}
    nodes, skip = [], set()
    for node in model.graph.node:
        conv_node = producer.get(node.input[0]) if node.input else None
        if (
            node.op_type == "BatchNormalization"
            and conv_node is not None
            and conv_node.op_type == "Conv"
            and readers[node.input[0]] == 1
        ):
            scale, bias, mean, var = (values[i].astype(np.float64) for i in node.input[1:5])
            k = scale / np.sqrt(var + _attrs(node).get("epsilon", 1e-5))
            w = values[conv_node.input[1]].astype(F32)
            b = values[conv_node.input[2]] if len(conv_node.input) > 2 else 0.0
            wname, bname = node.output[0] + "/w", node.output[0] + "/b"
            values[wname] = w * k.astype(F32).reshape(-1, 1, 1, 1)
            values[bname] = ((b - mean) * k + bias).astype(F32)
            nodes[nodes.index(conv_node)] = (
                conv_node,
                [conv_node.input[0], wname, bname],
                node.output[0],
            )
            skip.add(id(node))
            continue
        nodes.append(node)
    return nodes


def fuse_bias_adds(model, nodes: list, values: dict[str, np.ndarray]) -> list:
    """MatMul → Add(bias initializer) pairs become one step that adds the bias before
    rounding: GE fuses them into MatMulV2 with a bias on the float32 graph, and the cube
    unit adds the bias to its float32 accumulator."""
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    out: list = []
    pending: dict[str, int] = {}
    for entry in nodes:
        node = entry[0] if isinstance(entry, tuple) else entry
        if node.op_type == "MatMul" and readers.get(node.output[0]) == 1:
            pending[node.output[0]] = len(out)
        if node.op_type == "Add" and node.input[0] in pending:
            bias = values.get(node.input[1])
            if bias is not None and bias.ndim == 1:
                mm = out[pending.pop(node.input[0])]
                index = out.index(mm)
                out[index] = (_BiasedMatMul(mm), [*mm.input, node.input[1]], node.output[0])
                continue
        out.append(entry)
    return out


class _BiasedMatMul:
    """A MatMul node plus its bias (op type ``MatMulBias`` for :func:`run_fp16`)."""

    op_type = "MatMulBias"

    def __init__(self, node) -> None:
        self.attribute = node.attribute


def run_fp16(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs computed op by op in float16 (float32 inside each op)."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    plan = fuse_bias_adds(model, fold_batch_norms(model, values), values)
    env = {k: v.astype(F16) if v.dtype.kind == "f" else v for k, v in values.items()}
    for name, v in feeds.items():
        env[name] = v.astype(F16)
    for entry in plan:
        node, inputs, output = (
            entry if isinstance(entry, tuple) else (entry, list(entry.input), entry.output[0])
        )
        a = _attrs(node)
        ins = [env[i] if i else None for i in inputs]
        f = [x.astype(F32) if x is not None and x.dtype == F16 else x for x in ins]
        op = node.op_type
        if op == "Conv":
            y = conv(f[0], f[1], f[2] if len(f) > 2 else None, a)
        elif op == "BatchNormalization":
            x, scale, bias, mean, var = f[:5]
            shape = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + a.get("epsilon", 1e-5))
            y = y * scale.reshape(shape) + bias.reshape(shape)
        elif op == "Relu":
            y = np.maximum(f[0], 0)
        elif op in ("Sum", "Add"):
            y = f[0]
            for other in f[1:]:
                y = y + other
        elif op == "Sub":
            y = f[0] - f[1]
        elif op == "Mul":
            y = f[0] * f[1]
        elif op == "Div":
            y = f[0] / f[1]
        elif op == "Erf":
            y = _ERF(f[0])
        elif op == "MaxPool":
            y = max_pool(f[0], a)
        elif op == "AveragePool":
            y = avg_pool(f[0], a)
        elif op == "GlobalAveragePool":
            y = f[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Reshape":
            y = f[0].reshape([int(d) if d else f[0].shape[i] for i, d in enumerate(f[1])])
        elif op == "Flatten":
            y = f[0].reshape(f[0].shape[0], -1)
        elif op == "Transpose":
            y = np.transpose(f[0], a["perm"])
        elif op == "Gemm":
            x = f[0].T if a.get("transA", 0) else f[0]
            w = f[1].T if a.get("transB", 0) else f[1]
            bias = f[2] if len(f) > 2 else None
            y = matmul(x, w, bias, a.get("alpha", 1.0), a.get("beta", 1.0))
        elif op == "MatMul":
            y = matmul(f[0], f[1])
        elif op == "MatMulBias":
            y = matmul(f[0], f[1], f[2])
        elif op == "Softmax":
            y = softmax(f[0], a.get("axis", -1))
        elif op == "LayerNormalization":
            y = layer_norm(f[0], f[1], f[2], a)
        else:
            raise NotImplementedError(op)
        y = np.asarray(y)
        env[output] = y.astype(F16) if y.dtype.kind == "f" else y
    return [env.get(o.name) for o in model.graph.output]


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got − want| relative to the output scale max |want|."""
    g, w = got.astype(np.float64), want.astype(np.float64)
    return float(np.max(np.abs(g - w)) / max(float(np.max(np.abs(w))), 1e-30))
