"""More benchmark models, built with onnx.helper and seeded weights (batch 1, float32):
the families where a NumPy runtime is weakest (depthwise convolutions, hard-swish, SiLU,
squeeze-excite, tanh-GELU with Pow, attention).

- ``mobilenet_v2``: MobileNetV2 1.0 (224², inverted residuals, ReLU6 as Clip, depthwise 3×3);
- ``mobilenet_v3``: a MobileNetV3-Large-style net (hard-swish, squeeze-excite with
  HardSigmoid, depthwise 3×3 / 5×5);
- ``efficientnet_b0``: EfficientNet-B0-style (SiLU as x·Sigmoid(x), squeeze-excite, MBConv);
- ``resnet18``: ResNet-18 (BatchNorm folded into the convolutions' biases);
- ``gpt2_block``: two GPT-2 blocks (hidden 768, 12 heads, seq 128; pre-norm, causal mask,
  tanh-GELU written with Pow as in the exported graphs);
- ``bert_tiny``: BERT-tiny (2 layers, hidden 128, 2 heads, FFN 512, seq 128, Erf-GELU);
- ``vit_block``: two ViT-B/16 encoder blocks (197 tokens, hidden 768, 12 heads, pre-norm).
"""

from __future__ import annotations

import numpy as np

from bench.onnx_builder import Builder, finish, seed


class _Net(Builder):
    def conv(self, x: str, cin: int, cout: int, k: int, s: int = 1, groups: int = 1) -> str:
        fan_in = cin // groups * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        b = self.rng.normal(0.0, 0.05, cout)
        p = k // 2
        return self.op(
            "Conv",
            [x, self.const("w", w.astype(np.float32)), self.const("b", b.astype(np.float32))],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[p, p, p, p],
            group=groups,
        )

    def relu6(self, x: str) -> str:
        lo = self.const("lo", np.array(0.0, np.float32))
        hi = self.const("hi", np.array(6.0, np.float32))
        return self.op("Clip", [x, lo, hi])

    def silu(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def se(self, x: str, c: int, squeeze: int, gate: str, act: str) -> str:
        """Squeeze-excite: global pool, 1×1 reduce, act, 1×1 expand, gate, scale."""
        s = self.op("GlobalAveragePool", [x])
        s = self.conv(s, c, squeeze, 1)
        s = self.op("Relu", [s]) if act == "relu" else self.silu(s)
        s = self.conv(s, squeeze, c, 1)
        s = self.op(gate, [s]) if gate == "Sigmoid" else self.op("HardSigmoid", [s], alpha=1 / 6)
        return self.op("Mul", [x, s])

    def head(self, x: str, c: int, classes: int = 1000) -> str:
        x = self.op("Flatten", [self.op("GlobalAveragePool", [x])])
        w = self.const("fc", self.rng.normal(0, c**-0.5, (c, classes)).astype(np.float32))
        b = self.const("fcb", np.zeros(classes, np.float32))
        return self.op("Softmax", [self.op("Add", [self.op("MatMul", [x, w]), b])], axis=-1)


def _image_model(name: str, build) -> object:
    from onnx import TensorProto, helper

    b = _Net(np.random.default_rng(seed(name)))
    y = build(b, "input")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 1000])
    return finish(b, name, x, out, opset=14)


def mobilenet_v2():
    """MobileNetV2 1.0 at 224²."""
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
    cfg += [(6, 160, 3, 2), (6, 320, 1, 1)]

    def build(b: _Net, x: str) -> str:
        h, c = b.relu6(b.conv(x, 3, 32, 3, 2)), 32
        for t, cout, n, s in cfg:
            for i in range(n):
                stride = s if i == 0 else 1
                e = c * t
                y = h if t == 1 else b.relu6(b.conv(h, c, e, 1))
                y = b.relu6(b.conv(y, e, e, 3, stride, groups=e))
                y = b.conv(y, e, cout, 1)
                h = b.op("Add", [h, y]) if stride == 1 and c == cout else y
                c = cout
        h = b.relu6(b.conv(h, c, 1280, 1))
        return b.head(h, 1280)

    return _image_model("mobilenet_v2", build)


def mobilenet_v3():
    """MobileNetV3-Large-style: (kernel, expansion, out, SE, activation, stride) per block."""
    cfg = [
        (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
        (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
        (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
        (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
        (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
    ]  # fmt: skip

    def act(b: _Net, x: str, kind: str) -> str:
        return b.op("Relu", [x]) if kind == "RE" else b.op("HardSwish", [x])

    def build(b: _Net, x: str) -> str:
        h, c = act(b, b.conv(x, 3, 16, 3, 2), "HS"), 16
        for k, e, cout, se, kind, s in cfg:
            y = h if e == c else act(b, b.conv(h, c, e, 1), kind)
            y = act(b, b.conv(y, e, e, k, s, groups=e), kind)
            if se:
                y = b.se(y, e, max(8, e // 4), "HardSigmoid", "relu")
            y = b.conv(y, e, cout, 1)
            h = b.op("Add", [h, y]) if s == 1 and c == cout else y
            c = cout
        h = act(b, b.conv(h, c, 960, 1), "HS")
        return b.head(h, 960)

    return _image_model("mobilenet_v3", build)


def efficientnet_b0():
    """EfficientNet-B0-style MBConv stages: (expansion, out, repeats, stride, kernel)."""
    cfg = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3)]
    cfg += [(6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]

    def build(b: _Net, x: str) -> str:
        h, c = b.silu(b.conv(x, 3, 32, 3, 2)), 32
        for t, cout, n, s, k in cfg:
            for i in range(n):
                stride = s if i == 0 else 1
                e = c * t
                y = h if t == 1 else b.silu(b.conv(h, c, e, 1))
                y = b.silu(b.conv(y, e, e, k, stride, groups=e))
                y = b.se(y, e, max(1, c // 4), "Sigmoid", "silu")
                y = b.conv(y, e, cout, 1)
                h = b.op("Add", [h, y]) if stride == 1 and c == cout else y
                c = cout
        h = b.silu(b.conv(h, c, 1280, 1))
        return b.head(h, 1280)

    return _image_model("efficientnet_b0", build)


def resnet18():
    """ResNet-18 (basic blocks; BatchNorm folded into the convolution biases)."""

    def build(b: _Net, x: str) -> str:
        h = b.op("Relu", [b.conv(x, 3, 64, 7, 2)])
        h = b.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        c = 64
        for cout, s in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for i in range(2):
                stride = s if i == 0 else 1
                y = b.op("Relu", [b.conv(h, c, cout, 3, stride)])
                y = b.conv(y, cout, cout, 3)
                short = h if stride == 1 and c == cout else b.conv(h, c, cout, 1, stride)
                h = b.op("Relu", [b.op("Add", [y, short])])
                c = cout
        return b.head(h, 512)

    return _image_model("resnet18", build)


# ----- transformers ----------------------------------------------------------------------------


def _transformer(name: str, layers: int, hidden: int, heads: int, ffn: int, seq: int, kind: str):
    """Pre-norm blocks (GPT-2 / ViT) of ``kind`` "gpt2" (causal mask, tanh-GELU with Pow) or
    "vit" (no mask, Erf-GELU)."""
    from onnx import TensorProto, helper

    b = _Net(np.random.default_rng(seed(name)))
    hd = hidden // heads
    split = b.const("split", np.array([1, seq, heads, hd], np.int64))
    merge = b.const("merge", np.array([1, seq, hidden], np.int64))
    scale = b.const("scale", np.array(1.0 / np.sqrt(hd), np.float32))
    f = lambda v: b.const("c", np.array(v, np.float32))  # noqa: E731
    if kind == "gpt2":
        mask = np.triu(np.full((seq, seq), -1e4, np.float32), 1).reshape(1, 1, seq, seq)
        causal = b.const("mask", mask)

    def norm(x: str) -> str:
        g = b.const("g", (1 + 0.1 * b.rng.standard_normal(hidden)).astype(np.float32))
        beta = b.const("beta", (0.1 * b.rng.standard_normal(hidden)).astype(np.float32))
        return b.op("LayerNormalization", [x, g, beta], axis=-1, epsilon=1e-5)

    def split_heads(x: str, perm: list[int]) -> str:
        return b.op("Transpose", [b.op("Reshape", [x, split])], perm=perm)

    def gelu(x: str) -> str:
        if kind == "vit":
            erf = b.op("Erf", [b.op("Div", [x, f(np.sqrt(2.0))])])
            return b.op("Mul", [b.op("Mul", [x, b.op("Add", [erf, f(1.0)])]), f(0.5)])
        cube = b.op("Pow", [x, f(3.0)])
        inner = b.op("Add", [x, b.op("Mul", [cube, f(0.044715)])])
        t = b.op("Tanh", [b.op("Mul", [inner, f(np.sqrt(2.0 / np.pi))])])
        return b.op("Mul", [b.op("Mul", [x, f(0.5)]), b.op("Add", [t, f(1.0)])])

    h = "x"
    for _ in range(layers):
        a = norm(h)
        q = split_heads(b.dense(a, hidden, hidden), [0, 2, 1, 3])
        k = split_heads(b.dense(a, hidden, hidden), [0, 2, 3, 1])
        v = split_heads(b.dense(a, hidden, hidden), [0, 2, 1, 3])
        scores = b.op("Mul", [b.op("MatMul", [q, k]), scale])
        if kind == "gpt2":
            scores = b.op("Add", [scores, causal])
        ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        h = b.op("Add", [h, b.dense(ctx, hidden, hidden)])
        m = gelu(b.dense(norm(h), hidden, ffn))
        h = b.op("Add", [h, b.dense(m, ffn, hidden)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])
    y = helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, seq, hidden])
    return finish(b, name, x, y, opset=17)


def gpt2_block():
    """Two GPT-2 blocks (hidden 768, 12 heads, seq 128)."""
    return _transformer("gpt2_block", 2, 768, 12, 3072, 128, "gpt2")


def vit_block():
    """Two ViT-B/16 encoder blocks (197 tokens)."""
    return _transformer("vit_block", 2, 768, 12, 3072, 197, "vit")


ZOO = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3,
    "efficientnet_b0": efficientnet_b0,
    "gpt2_block": gpt2_block,
    "vit_block": vit_block,
}

__all__ = ["ZOO"]
