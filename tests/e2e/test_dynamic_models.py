"""Dynamic-shape models end to end against ONNX Runtime: a BERT-style encoder with a dynamic
batch and sequence length, and a detection head with NonMaxSuppression (data-dependent output).

Both are built here with onnx.helper and seeded weights, converted the ATC way (parse → compile →
.om → load) and run at several shapes; ONNX Runtime runs the same ONNX model as the reference.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openge.compiler import compile_graph
from openge.om.writer import serialize
from openge.parser import parse_onnx
from openge.runtime.model import Model

ort = pytest.importorskip("onnxruntime")

F = TensorProto.FLOAT
I64 = TensorProto.INT64


class _Builder:
    """Nodes and initializers of a model under construction."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def weight(self, shape, scale: float = 0.1, value=None) -> str:
        name = self.name("w")
        array = value if value is not None else self.rng.normal(0, scale, size=shape)
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def ints(self, values) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def op(self, op_type: str, inputs, n_out: int = 1, **attrs):
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


HIDDEN, HEADS, FFN, VOCAB, MAX_LEN, LAYERS = 32, 4, 64, 50, 64, 2


def _layer_norm(b: _Builder, x: str) -> str:
    gamma = b.weight([HIDDEN], value=1 + b.rng.normal(0, 0.05, HIDDEN))
    beta = b.weight([HIDDEN], 0.05)
    return b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)


def _attention(b: _Builder, x: str, mask_bias: str) -> str:
    head = HIDDEN // HEADS
    # [B, L, hidden] → [B, heads, L, head]: Reshape with 0 (copy dims), then Transpose
    split = b.ints([0, 0, HEADS, head])

    def project(perm):
        y = b.op("Add", [b.op("MatMul", [x, b.weight([HIDDEN, HIDDEN])]), b.weight([HIDDEN])])
        return b.op("Transpose", [b.op("Reshape", [y, split])], perm=perm)

    q, k, v = project([0, 2, 1, 3]), project([0, 2, 3, 1]), project([0, 2, 1, 3])
    scale = b.weight([], value=np.float32(1 / np.sqrt(head)))
    scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, k]), scale]), mask_bias])
    ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    ctx = b.op("Transpose", [ctx], perm=[0, 2, 1, 3])
    # back to [B, L, hidden] with a shape computed from the input's (Shape → Slice → Concat)
    dims = b.op("Slice", [b.op("Shape", [x]), b.ints([0]), b.ints([2])])
    merged = b.op("Reshape", [ctx, b.op("Concat", [dims, b.ints([HIDDEN])], axis=0)])
    return b.op("Add", [b.op("MatMul", [merged, b.weight([HIDDEN, HIDDEN])]), b.weight([HIDDEN])])


def _gelu(b: _Builder, x: str) -> str:
    erf = b.op("Erf", [b.op("Div", [x, b.weight([], value=np.float32(np.sqrt(2)))])])
    one_plus = b.op("Add", [erf, b.weight([], value=np.float32(1))])
    return b.op("Mul", [b.op("Mul", [x, one_plus]), b.weight([], value=np.float32(0.5))])


def bert_encoder(seed: int = 0) -> onnx.ModelProto:
    """input_ids int64 [batch, seq] and attention_mask float [batch, seq] → hidden states
    [batch, seq, 32] and a pooled [batch, 32] (tanh of the first token)."""
    b = _Builder(seed)
    ids_len = b.op("Shape", ["input_ids"], start=1, end=2)
    positions = b.op(
        "Range", [b.ints(0), b.op("Squeeze", [ids_len, b.ints([0])]), b.ints(1)]
    )  # [seq]
    emb = b.op(
        "Add",
        [
            b.op("Gather", [b.weight([VOCAB, HIDDEN], 0.5), "input_ids"]),
            b.op("Gather", [b.weight([MAX_LEN, HIDDEN], 0.5), positions]),
        ],
    )
    x = _layer_norm(b, emb)
    # mask [B, L] → additive bias [B, 1, 1, L]
    inverted = b.op("Sub", [b.weight([], value=np.float32(1)), "attention_mask"])
    bias = b.op("Mul", [inverted, b.weight([], value=np.float32(-10000.0))])
    bias = b.op("Unsqueeze", [bias, b.ints([1, 2])])
    for _ in range(LAYERS):
        x = _layer_norm(b, b.op("Add", [x, _attention(b, x, bias)]))
        h = _gelu(b, b.op("Add", [b.op("MatMul", [x, b.weight([HIDDEN, FFN])]), b.weight([FFN])]))
        h = b.op("Add", [b.op("MatMul", [h, b.weight([FFN, HIDDEN])]), b.weight([HIDDEN])])
        x = _layer_norm(b, b.op("Add", [x, h]))
    first = b.op(
        "Squeeze", [b.op("Slice", [x, b.ints([0]), b.ints([1]), b.ints([1])]), b.ints([1])]
    )
    pooled = b.op(
        "Tanh",
        [b.op("Add", [b.op("MatMul", [first, b.weight([HIDDEN, HIDDEN])]), b.weight([HIDDEN])])],
    )
    b.nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    b.nodes.append(helper.make_node("Identity", [pooled], ["pooled"]))
    graph = helper.make_graph(
        b.nodes,
        "bert_tiny",
        [
            helper.make_tensor_value_info("input_ids", I64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", F, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info("hidden", F, ["batch", "seq", HIDDEN]),
            helper.make_tensor_value_info("pooled", F, ["batch", HIDDEN]),
        ],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def detection_head(seed: int = 1, classes: int = 3) -> onnx.ModelProto:
    """A feature map [1, 8, h, w] → per-cell boxes and class scores → NonMaxSuppression →
    selected indices [n, 3] and the selected boxes [n, 4]."""
    b = _Builder(seed)
    feat = b.op("Relu", [b.op("Conv", ["feat", b.weight([8, 8, 3, 3], 0.3)], pads=[1, 1, 1, 1])])
    # boxes: centre = cell index + tanh offset, size = exp of a small regression, [1, N, 4]
    raw = b.op("Conv", [feat, b.weight([4, 8, 1, 1], 0.2)])
    boxes = b.op("Transpose", [b.op("Reshape", [raw, b.ints([1, 4, -1])])], perm=[0, 2, 1])
    xy, wh = b.op("Split", [boxes, b.ints([2, 2])], n_out=2, axis=2)
    grid = b.op("Mul", [b.op("Tanh", [xy]), b.weight([], value=np.float32(4.0))])
    size = b.op("Exp", [wh])
    boxes = b.op("Concat", [grid, size], axis=2)
    logits = b.op("Conv", [feat, b.weight([classes, 8, 1, 1], 0.5)])
    scores = b.op("Sigmoid", [b.op("Reshape", [logits, b.ints([1, classes, -1])])])
    selected = b.op(
        "NonMaxSuppression",
        [
            boxes,
            scores,
            b.ints([10]),
            b.weight([], value=np.float32(0.3)),
            b.weight([1], value=[0.7]),
        ],
        center_point_box=1,
    )
    box_index = b.op("Gather", [selected, b.ints(2)], axis=1)
    picked = b.op("Gather", [b.op("Squeeze", [boxes, b.ints([0])]), box_index], axis=0)
    b.nodes.append(helper.make_node("Identity", [selected], ["selected"]))
    b.nodes.append(helper.make_node("Identity", [picked], ["boxes"]))
    graph = helper.make_graph(
        b.nodes,
        "det_head",
        [helper.make_tensor_value_info("feat", F, [1, 8, "h", "w"])],
        [
            helper.make_tensor_value_info("selected", I64, ["n", 3]),
            helper.make_tensor_value_info("boxes", F, ["n", 4]),
        ],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _atc(model: onnx.ModelProto, input_shape: str = "") -> Model:
    options = {"input_shape": input_shape} if input_shape else None
    compiled = compile_graph(parse_onnx(model, options))
    assert compiled.is_dynamic
    return Model.from_bytes(serialize(compiled, online=False))


def _ort(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


BERT_SHAPES = [(1, 1), (1, 7), (2, 5), (3, 16), (4, 3), (2, 33)]


def test_bert_encoder_matches_onnxruntime_at_six_shapes():
    proto = bert_encoder()
    model = _atc(proto, "input_ids:1~4,1~64;attention_mask:1~4,1~64")
    assert model.inputs[0].shape == (-1, -1)
    assert model.inputs[0].range == ((1, 4), (1, 64))
    session = _ort(proto)
    rng = np.random.default_rng(7)
    for batch, length in BERT_SHAPES:
        ids = rng.integers(0, VOCAB, size=(batch, length)).astype(np.int64)
        mask = (rng.random((batch, length)) > 0.2).astype(np.float32)
        mask[:, 0] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        expected = session.run(None, feeds)
        got = model.execute(feeds)
        for name, e, g in zip(("hidden", "pooled"), expected, got):
            assert g.shape == e.shape, (batch, length, name)
            np.testing.assert_allclose(
                g, e, rtol=1e-4, atol=1e-4, err_msg=f"{name} {batch}x{length}"
            )
    stats = model.dynamic.stats()
    assert stats["plans_made"] == len(BERT_SHAPES) and stats["interpreted_runs"] == 0
    # run again at a known shape: the cached static plan
    model.execute(
        {"input_ids": np.zeros((2, 5), np.int64), "attention_mask": np.ones((2, 5), np.float32)}
    )
    assert model.dynamic.stats()["cache_hits"] == 1


def test_detection_head_with_nms_matches_onnxruntime():
    proto = detection_head()
    model = _atc(proto)
    session = _ort(proto)
    rng = np.random.default_rng(3)
    counts = set()
    for h, w in [(6, 6), (5, 9), (8, 4)]:
        feat = rng.normal(size=(1, 8, h, w)).astype(np.float32)
        exp_sel, exp_boxes = session.run(None, {"feat": feat})
        sel, boxes = model.execute([feat])
        np.testing.assert_array_equal(sel, exp_sel)
        np.testing.assert_allclose(boxes, exp_boxes, rtol=1e-5, atol=1e-6)
        counts.add(sel.shape[0])
    assert len(counts) > 1 and 0 not in counts  # the output size follows the data
    stats = model.dynamic.stats()
    # the backbone (convs, boxes, scores) runs as a static plan; NMS and after node by node
    assert stats["interpreted_runs"] == 3 and stats["static_prefixes"] == 3
