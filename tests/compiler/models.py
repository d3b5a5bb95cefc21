"""Small models the compiler tests build: a CNN, an MLP, an attention block, a transformer
encoder; plus helpers to compile and run them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from openge.compiler import compile_graph, default_passes
from openge.graph import DataType, Format, Graph, Port, Tensor, TensorDesc
from openge.ops import Trait, get_schema, infer_node
from openge.ops.infer import propagate_value
from openge.runtime import Model


class Builder:
    """A tiny graph builder: every node is inferred (and small constants propagated) as it is
    added, so shape inputs of Reshape etc. are known."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.g = Graph(name)
        self.known: dict[Port, np.ndarray] = {}
        self.rng = np.random.default_rng(seed)
        self.inputs: list[tuple[str, tuple[int, ...], np.dtype]] = []

    def input(self, shape, dtype=DataType.DT_FLOAT, name=None, fmt=Format.FORMAT_ND) -> Port:
        index = len(self.inputs)
        name = name or f"x{index}"
        node = self.g.add_node(
            "Data",
            name=name,
            attrs={"index": index},
            output_descs=[TensorDesc(dtype, tuple(shape), fmt)],
        )
        self.inputs.append((name, tuple(shape), dtype.np_dtype))
        return node.output(0)

    def const(self, value, name=None, fmt=None) -> Port:
        value = np.asarray(value)
        tensor = Tensor(value) if fmt is None else Tensor(value, format=fmt)
        node = self.g.add_node(
            "Const", name=name and self.g.unique_name(name), attrs={"value": tensor}
        )
        node.output_descs = infer_node(node)[1]
        self.known[node.output(0)] = value
        return node.output(0)

    def weight(self, *shape, scale=0.3, name=None) -> Port:
        return self.const((self.rng.normal(size=shape) * scale).astype(np.float32), name)

    def op(self, op_type: str, *inputs: Port | None, name=None, outputs=1, **attrs) -> Port:
        node = self.g.add_node(
            op_type,
            list(inputs),
            name=name and self.g.unique_name(name),
            attrs=attrs,
            num_outputs=outputs,
        )
        norm, descs = infer_node(node, self.known)
        node.output_descs = descs
        if not get_schema(op_type).has(Trait.STATEFUL):
            values = propagate_value(node, norm, descs, self.known)
            for i, v in enumerate(values or ()):
                self.known[node.output(i)] = v
        return node.output(0)

    def done(self, *outputs: Port) -> Graph:
        self.g.set_outputs(list(outputs))
        return self.g

    def feeds(self, seed: int = 1) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.normal(size=shape).astype(dtype) for _, shape, dtype in self.inputs]


def _bn(b: Builder, x: Port, c: int) -> Port:
    mean = b.const((b.rng.normal(size=c) * 0.1).astype(np.float32))
    var = b.const(b.rng.uniform(0.5, 1.5, size=c).astype(np.float32))
    scale = b.const(b.rng.uniform(0.5, 1.5, size=c).astype(np.float32))
    offset = b.const((b.rng.normal(size=c) * 0.1).astype(np.float32))
    momentum = b.const(np.array([1.0], np.float32))
    return b.op("BNInference", x, mean, var, momentum, scale, offset, epsilon=1e-5)


def _conv(
    b: Builder,
    x: Port,
    cin: int,
    cout: int,
    k: int = 3,
    stride: int = 1,
    bias: bool = False,
    fmt: str = "NCHW",
) -> Port:
    if fmt == "NCHW":
        w = b.weight(cout, cin, k, k, scale=1.0 / np.sqrt(cin * k * k))
        strides = [1, 1, stride, stride]
    else:
        w = b.const(
            (b.rng.normal(size=(k, k, cin, cout)) / np.sqrt(cin * k * k)).astype(np.float32),
            fmt=Format.FORMAT_HWCN,
        )
        strides = [1, stride, stride, 1]
    p = k // 2
    inputs = [x, w] + ([b.weight(cout, scale=0.1)] if bias else [])
    return b.op("Conv2D", *inputs, strides=strides, pads=[p, p, p, p], data_format=fmt)


def cnn(fmt: str = "NCHW") -> Builder:
    """conv/bn/relu/pool, a residual block, global pooling, a classifier."""
    b = Builder(f"cnn_{fmt.lower()}")
    shape = (2, 3, 16, 16) if fmt == "NCHW" else (2, 16, 16, 3)
    x = b.input(shape, fmt=Format.FORMAT_NCHW if fmt == "NCHW" else Format.FORMAT_NHWC)
    k2 = [1, 1, 2, 2] if fmt == "NCHW" else [1, 2, 2, 1]
    h = _conv(b, x, 3, 8, fmt=fmt)
    if fmt == "NCHW":
        h = _bn(b, h, 8)
    h = b.op("Relu", h)
    h = b.op("MaxPoolV3", h, ksize=k2, strides=k2, data_format=fmt)
    r = _conv(b, h, 8, 8, bias=True, fmt=fmt)
    if fmt == "NCHW":
        r = _bn(b, r, 8)
    r = b.op("Relu", r)
    r = _conv(b, r, 8, 8, fmt=fmt)
    r = b.op("Add", r, h)
    r = b.op("Relu", r)
    r = _conv(b, r, 8, 16, k=1, bias=True, fmt=fmt)
    r = b.op("Relu6", r)
    g = b.op(
        "AvgPoolV2",
        r,
        ksize=[1, 1, 8, 8] if fmt == "NCHW" else [1, 8, 8, 1],
        strides=[1, 1, 1, 1],
        data_format=fmt,
    )
    flat = b.op("Reshape", g, b.const(np.array([2, 16], np.int64)))
    logits = b.op("Add", b.op("MatMulV2", flat, b.weight(16, 10)), b.weight(10, scale=0.1))
    probs = b.op("SoftmaxV2", logits)
    b.done(probs, logits)
    return b


def mlp() -> Builder:
    """Dense layers with bias and activations, an elementwise tail, redundant work for CSE."""
    b = Builder("mlp")
    x = b.input((4, 32))
    h = b.op("Add", b.op("MatMulV2", x, b.weight(32, 64)), b.weight(64, scale=0.1))
    h = b.op("Relu", h)
    h = b.op("Add", b.op("MatMulV2", h, b.weight(64, 64)), b.weight(1, 64, scale=0.1))
    h = b.op("Sigmoid", h)
    two_a = b.const(np.float32(2.0))
    two_b = b.const(np.float32(2.0))
    u = b.op("Mul", h, two_a)
    v = b.op("Mul", h, two_b)  # the same value again: CSE
    h = b.op("Tanh", b.op("Sub", b.op("Add", u, v), b.const(np.float32(1.5))))
    h = b.op("Cast", b.op("Cast", h, dst_type=DataType.DT_DOUBLE), dst_type=DataType.DT_FLOAT)
    out = b.op("MatMulV2", h, b.weight(64, 10), b.weight(10, scale=0.1))
    b.done(out)
    return b


def _dense(b: Builder, x: Port, din: int, dout: int) -> Port:
    return b.op(
        "Add",
        b.op("BatchMatMulV2", x, b.weight(din, dout, scale=din**-0.5)),
        b.weight(dout, scale=0.1),
    )


def _layer_norm(b: Builder, x: Port, d: int) -> Port:
    gamma = b.const(b.rng.uniform(0.8, 1.2, size=d).astype(np.float32))
    beta = b.const((b.rng.normal(size=d) * 0.1).astype(np.float32))
    return b.op(
        "LayerNorm",
        x,
        gamma,
        beta,
        outputs=3,
        begin_norm_axis=-1,
        begin_params_axis=-1,
        epsilon=1e-5,
    )


def _attention(b: Builder, x: Port, batch: int, seq: int, d: int, heads: int) -> Port:
    hd = d // heads
    q = _dense(b, x, d, d)
    k = _dense(b, x, d, d)
    v = _dense(b, x, d, d)
    split = b.const(np.array([batch, seq, heads, hd], np.int64))
    q = b.op("TransposeD", b.op("Reshape", q, split), perm=[0, 2, 1, 3])
    k = b.op("TransposeD", b.op("Reshape", k, split), perm=[0, 2, 3, 1])
    v = b.op("TransposeD", b.op("Reshape", v, split), perm=[0, 2, 1, 3])
    s = b.op("Mul", b.op("BatchMatMulV2", q, k), b.const(np.float32(hd**-0.5)))
    p = b.op("SoftmaxV2", s, axes=[-1])
    c = b.op("BatchMatMulV2", p, v)
    c = b.op("TransposeD", c, perm=[0, 2, 1, 3])
    c = b.op("Reshape", c, b.const(np.array([batch, seq, d], np.int64)))
    o = _dense(b, c, d, d)
    return _layer_norm(b, b.op("Add", o, x), d)


def attention(batch: int = 2, seq: int = 8, d: int = 32, heads: int = 4) -> Builder:
    """One self-attention block (q/k/v projections, softmax(QKᵀ/√d)V, output projection,
    residual, layer norm), with a transpose pair to cancel."""
    b = Builder("attention")
    x = b.input((batch, seq, d))
    t = b.op("TransposeD", b.op("TransposeD", x, perm=[1, 0, 2]), perm=[1, 0, 2])
    b.done(_attention(b, t, batch, seq, d, heads))
    return b


def transformer_encoder(
    layers: int = 2, batch: int = 1, seq: int = 128, d: int = 256, heads: int = 4, ff: int = 1024
) -> Builder:
    """A BERT-style encoder: per layer attention + residual + LayerNorm, GELU feed-forward +
    residual + LayerNorm."""
    b = Builder("transformer_encoder")
    x = b.input((batch, seq, d))
    h = x
    for _ in range(layers):
        h = _attention(b, h, batch, seq, d, heads)
        f = b.op("Gelu", _dense(b, h, d, ff))
        f = _dense(b, f, ff, d)
        h = _layer_norm(b, b.op("Add", f, h), d)
    b.done(h)
    return b


ALL_MODELS = {
    "cnn": cnn,
    "cnn_nhwc": lambda: cnn("NHWC"),
    "mlp": mlp,
    "attention": attention,
    "transformer": lambda: transformer_encoder(layers=2, seq=16, d=32, heads=4, ff=64),
}


def all_passes_off() -> dict[str, str]:
    """Options that switch off every pass that can be switched off."""
    names = sorted({p.name for p in default_passes() if not p.required})
    return {"ge.disableOptimizations": ",".join(names)}


def run(
    graph: Graph, feeds: list[np.ndarray], options: Mapping[str, str] | None = None, **kwargs
) -> list[np.ndarray]:
    """Compile and execute ``graph`` once."""
    compiled = compile_graph(graph, dict(options or {}), **kwargs)
    with Model(compiled) as model:
        return [np.array(o) for o in model.execute(feeds)]


def apply_passes(graph: Graph, *passes, options: Mapping[str, str] | None = None) -> bool:
    """Run shape inference then ``passes`` on ``graph`` in place (verifying after each);
    return whether any of them changed it."""
    from openge.compiler.passes import InferShapesPass, PassContext
    from openge.compiler.pipeline import verify_graph

    ctx = PassContext(options=dict(options or {}))
    InferShapesPass().run(graph, ctx)
    changed = False
    for p in passes:
        changed |= p.run(graph, ctx)
        verify_graph(graph, p.name)
    return changed


def evaluate_graph(graph: Graph, feeds: list[np.ndarray]) -> list[np.ndarray]:
    """The outputs of ``graph`` compiled with every optional pass off (a plain interpreter)."""
    return run(graph, feeds, all_passes_off())


def op_types(graph: Graph) -> list[str]:
    """The op types of the graph's nodes, sorted (sources included)."""
    return sorted(n.op_type for n in graph)
