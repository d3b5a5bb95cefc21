"""The benchmark models: built as .onnx into a cache folder and converted to .om with openge.

Models (names as used by ``--models``):

- the nine ``light_*.onnx`` networks the onnx package ships (onnx/backend/test/data/light/):
  full-size ImageNet graphs (1×3×224×224 input) whose weights are ``ConstantOfShape`` nodes
  filled with 0.02. Each such node is replaced by a seeded random initializer of the same shape:
  He-normal by fan-in for Conv/Gemm weights, small normal biases, BatchNormalization
  statistics and Caffe2-style per-channel Mul/Add constants near 1 / 0. The layer that feeds the
  final Softmax is then rescaled (one ONNX Runtime pass) so its logits have standard deviation
  2: the probabilities are neither one-hot nor uniform, so the output comparison means something.
- ``bert_base``: a transformer encoder of BERT-base shape (12 layers, hidden 768, 12 heads,
  FFN 3072, sequence 128, batch 1; no embeddings, no attention mask) from MatMul, Add, Reshape,
  Transpose, Div, Softmax, LayerNormalization and the Erf form of GELU, with seeded random
  weights (normal, std 1/sqrt(fan-in)); opset 17.
- ``mlp``: three 1024×1024 MatMul+Add layers (ReLU between), batch 64.
- ``bert_tiny``: the same encoder at BERT-tiny size (2 layers, hidden 128, 2 heads, FFN 512).
- the zoo (bench/zoo.py): resnet18, mobilenet_v2, mobilenet_v3, efficientnet_b0, gpt2_block,
  vit_block.

Run: ``python bench/models.py [--models a,b] [--cache DIR] [--force]`` builds the .onnx files
(reused when present and of this generator version) and converts each to .om, printing sizes,
parse and compile times, or the GeError where a model does not convert.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

if __package__ in (None, ""):
    # Script mode: import bench.* from the repo root and keep bench/ itself off sys.path
    # (bench/profile.py would otherwise shadow the standard library's profile module).
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

from bench.common import ROOT
from bench.onnx_builder import Builder as _Builder
from bench.onnx_builder import finish as _finish
from bench.onnx_builder import seed as _seed
from bench.zoo import ZOO

#: Bump when a model's construction changes: cached .onnx files of another version are rebuilt.
GENERATOR_VERSION = 2
DEFAULT_CACHE = os.path.join(ROOT, "bench", ".models")

#: Benchmark name → file name in onnx/backend/test/data/light/.
LIGHT = {
    "squeezenet": "light_squeezenet.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "alexnet": "light_bvlc_alexnet.onnx",
    "zfnet512": "light_zfnet512.onnx",
    "inception_v1": "light_inception_v1.onnx",
    "inception_v2": "light_inception_v2.onnx",
    "resnet50": "light_resnet50.onnx",
    "densenet121": "light_densenet121.onnx",
    "vgg19": "light_vgg19.onnx",
}
#: Every model: the MLP, the light networks, the zoo (bench/zoo.py), the BERT encoders.
MODELS = ("mlp", *LIGHT, *ZOO, "bert_tiny", "bert_base")
#: Models small enough for onnx.reference.ReferenceEvaluator.
SMALL = ("mlp", "squeezenet", "shufflenet")
#: Target standard deviation of the logits that feed a light model's final Softmax.
LOGIT_STD = 2.0


# ----- light models ----------------------------------------------------------------------------
def light_source(name: str) -> str:
    """Path of the onnx package's light_*.onnx file for benchmark model ``name``."""
    import onnx

    return os.path.join(
        os.path.dirname(onnx.__file__), "backend", "test", "data", "light", LIGHT[name]
    )


def _role(value: str, consumers: dict) -> tuple[str, int]:
    """What a generated tensor is used as: (role, input index) of its first real consumer;
    Unsqueeze is looked through (Caffe2 exports unsqueeze per-channel scales and biases)."""
    for node, index in consumers.get(value, ()):
        if node.op_type in ("Unsqueeze", "Reshape", "Identity") and index == 0:
            return _role(node.output[0], consumers)
        if node.op_type == "Conv":
            return ("conv_w", 1) if index == 1 else ("bias", index)
        if node.op_type == "Gemm":
            if index == 1:
                trans_b = any(a.name == "transB" and a.i for a in node.attribute)
                return ("gemm_w_t" if trans_b else "gemm_w", 1)
            return ("bias", index)
        if node.op_type == "MatMul" and index == 1:
            return "gemm_w", 1
        if node.op_type == "BatchNormalization":
            return ("bn", index)
        if node.op_type == "Mul":
            return "scale", index
        if node.op_type in ("Add", "Sum", "Sub"):
            return "bias", index
    return "other", 0


def _random_weight(shape: tuple[int, ...], role: tuple[str, int], rng) -> np.ndarray:
    kind, index = role
    if kind == "conv_w":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
    if kind in ("gemm_w", "gemm_w_t"):
        fan_in = shape[-1] if kind == "gemm_w_t" else shape[0]
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
    if kind == "bn":  # scale, bias, mean, var
        if index == 1:
            return rng.uniform(0.5, 1.0, shape)
        if index == 4:
            return rng.uniform(0.5, 1.5, shape)
        return rng.normal(0.0, 0.1, shape)
    if kind == "scale":
        return rng.uniform(0.5, 1.0, shape)
    if kind == "bias":
        return rng.normal(0.0, 0.05, shape)
    return rng.normal(0.0, 0.05, shape)


def _randomize_weights(model, rng) -> None:
    """Replace every ConstantOfShape(initializer) by a random initializer of that shape, drop
    the shape initializers no longer used and the graph inputs that are initializers or unused."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumers[name].append((node, index))
    kept, generated = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
        fill = next((a.t for a in node.attribute if a.name == "value"), None)
        fill_value = numpy_helper.to_array(fill) if fill is not None else np.zeros(1, np.float32)
        if fill_value.dtype.kind == "f":
            role = _role(node.output[0], consumers)
            array = _random_weight(shape, role, rng).astype(fill_value.dtype)
        else:
            array = np.full(shape, fill_value.reshape(-1)[0], fill_value.dtype)
        generated.append(numpy_helper.from_array(array, node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits + generated)
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
    # Old exports carry shapes for the removed inputs only; drop stale value_info too.
    del graph.value_info[:]
    # Softmax before opset 13 defaults to axis 1; onnx.reference applies today's default (-1)
    # to such nodes, so spell the axis out (same model, and the reference then agrees).
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    for node in graph.node if opset < 13 else ():
        if node.op_type == "Softmax" and not any(a.name == "axis" for a in node.attribute):
            node.attribute.append(helper.make_attribute("axis", 1))
    # IR 3 wants every initializer listed as a graph input; IR 4 lets weights be constants.
    model.ir_version = max(model.ir_version, 4)


# Ops through which a positive rescale of the last weighted layer reaches the Softmax unchanged
# in shape (they are positively homogeneous: f(c·x) = c·f(x) for c > 0).
_HOMOGENEOUS = {
    "Relu",
    "GlobalAveragePool",
    "AveragePool",
    "MaxPool",
    "Reshape",
    "Flatten",
    "Dropout",
    "Identity",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
}


def _calibrate_logits(model, target_std: float = LOGIT_STD) -> float:
    """Scale the weights of the layer feeding the final Softmax so its input has standard
    deviation ``target_std`` on a seeded random input; returns the factor used."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    graph = model.graph
    producers = {o: n for n in graph.node for o in n.output}
    out_name = graph.output[0].name
    softmax = producers.get(out_name)
    if softmax is None or softmax.op_type != "Softmax":
        return 1.0
    logits = softmax.input[0]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(logits))
    del probe.graph.output[:-1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = dict(zip([i.name for i in session.get_inputs()], make_inputs(model)))
    std = float(np.std(session.run(None, feeds)[0]))
    if not np.isfinite(std) or std == 0.0:
        return 1.0
    factor = target_std / std
    inits = {t.name: t for t in graph.initializer}
    node = producers.get(logits)
    while node is not None and node.op_type in _HOMOGENEOUS:
        node = producers.get(node.input[0])
    if node is not None and node.op_type in ("Gemm", "Conv", "MatMul"):
        names = [n for n in node.input[1:3] if n in inits]
        if names and node.input[1] in inits:
            for name in names:
                tensor = inits[name]
                scaled = numpy_helper.to_array(tensor) * np.float32(factor)
                tensor.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), name))
            return factor
    # Fallback: a Mul by the factor in front of the Softmax.
    scale_name = "bench_logit_scale"
    graph.initializer.append(numpy_helper.from_array(np.float32(factor), scale_name))
    mul = onnx.helper.make_node("Mul", [logits, scale_name], [logits + "_scaled"])
    softmax.input[0] = logits + "_scaled"
    index = list(graph.node).index(softmax)
    graph.node.insert(index, mul)
    return factor


def light_model(name: str):
    """The light_<name> network with seeded random weights (an onnx ModelProto)."""
    import onnx

    model = onnx.load(light_source(name))
    _randomize_weights(model, np.random.default_rng(_seed(name)))
    _calibrate_logits(model)
    onnx.checker.check_model(model)
    return model


# ----- built models ----------------------------------------------------------------------------
def mlp_model(batch: int = 64, width: int = 1024, layers: int = 3):
    """An MLP: ``layers`` width×width MatMul+Add layers with ReLU between them."""
    from onnx import TensorProto, helper

    b = _Builder(np.random.default_rng(_seed("mlp")))
    h = "x"
    for i in range(layers):
        h = b.dense(h, width, width, scale=np.sqrt(2.0 / width))
        if i < layers - 1:
            h = b.op("Relu", [h])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])
    y = helper.make_tensor_value_info(h, TensorProto.FLOAT, [batch, width])
    return _finish(b, "mlp", x, y, opset=17)


def bert_encoder(
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    seq: int = 128,
    batch: int = 1,
    name: str = "bert_base",
):
    """A BERT-base-shaped encoder: per layer multi-head self-attention, residual, LayerNorm,
    Erf-GELU feed-forward, residual, LayerNorm (post-norm, as BERT)."""
    from onnx import TensorProto, helper

    b = _Builder(np.random.default_rng(_seed(name)))
    hd = hidden // heads
    split = b.const("split_shape", np.array([batch, seq, heads, hd], np.int64))
    merge = b.const("merge_shape", np.array([batch, seq, hidden], np.int64))
    sqrt_hd = b.const("sqrt_hd", np.array(np.sqrt(hd), np.float32))
    sqrt2 = b.const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    one = b.const("one", np.array(1.0, np.float32))
    half = b.const("half", np.array(0.5, np.float32))

    def norm(x: str) -> str:
        gamma = b.const("gamma", np.ones(hidden, np.float32))
        beta = b.const("beta", np.zeros(hidden, np.float32))
        return b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12)

    def heads_of(x: str, perm: list[int]) -> str:
        return b.op("Transpose", [b.op("Reshape", [x, split])], perm=perm)

    h = "hidden_states"
    for _ in range(layers):
        q = heads_of(b.dense(h, hidden, hidden), [0, 2, 1, 3])
        k = heads_of(b.dense(h, hidden, hidden), [0, 2, 3, 1])
        v = heads_of(b.dense(h, hidden, hidden), [0, 2, 1, 3])
        scores = b.op("Div", [b.op("MatMul", [q, k]), sqrt_hd])
        context = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        context = b.op("Reshape", [b.op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        h = norm(b.op("Add", [b.dense(context, hidden, hidden), h]))
        f = b.dense(h, hidden, ffn)
        erf = b.op("Erf", [b.op("Div", [f, sqrt2])])
        f = b.op("Mul", [b.op("Mul", [f, b.op("Add", [erf, one])]), half])
        h = norm(b.op("Add", [b.dense(f, ffn, hidden), h]))
    x = helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, [batch, seq, hidden])
    y = helper.make_tensor_value_info(h, TensorProto.FLOAT, [batch, seq, hidden])
    return _finish(b, name, x, y, opset=17)


# ----- cache, inputs, conversion -------------------------------------------------------------
def make_model(name: str):
    """Build benchmark model ``name`` (an onnx ModelProto)."""
    if name == "mlp":
        return mlp_model()
    if name == "bert_base":
        return bert_encoder()
    if name == "bert_tiny":
        return bert_encoder(layers=2, hidden=128, heads=2, ffn=512, name="bert_tiny")
    if name in ZOO:
        return ZOO[name]()
    if name in LIGHT:
        return light_model(name)
    raise ValueError(f"unknown benchmark model {name!r}; choose from {', '.join(MODELS)}")


def onnx_path(name: str, cache: str = DEFAULT_CACHE, force: bool = False) -> str:
    """Path of model ``name``'s .onnx in ``cache``, building it when missing or stale."""
    import onnx

    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"{name}.onnx")
    meta_path = os.path.join(cache, f"{name}.json")
    meta = {"generator_version": GENERATOR_VERSION, "seed": _seed(name)}
    if not force and os.path.isfile(path) and os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            if json.load(f) == meta:
                return path
    model = make_model(name)
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    return path


def input_specs(model) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """(name, dtype, shape) of a model's real inputs (path or ModelProto; not initializers)."""
    import onnx
    from onnx import helper

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(model, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        tensor = value.type.tensor_type
        shape = tuple(max(d.dim_value, 1) for d in tensor.shape.dim)
        specs.append((value.name, helper.tensor_dtype_to_np_dtype(tensor.elem_type), shape))
    return specs


def make_inputs(model, seed: int = 0) -> list[np.ndarray]:
    """Seeded standard-normal inputs for a model (path or ModelProto), in input order."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _, dtype, shape in input_specs(model)]


@dataclass
class Conversion:
    """The outcome of converting one .onnx to .om with openge."""

    name: str
    onnx_path: str
    om_path: str | None = None
    parse_s: float = float("nan")
    build_s: float = float("nan")
    save_s: float = float("nan")
    error: str | None = None


def _describe_error(err: BaseException) -> str:
    from openge.errors import GeError

    if isinstance(err, GeError):
        message = str(getattr(err, "message", err)).strip().splitlines()[0]
        return f"GeError {err.name} ({err.code}): {message}"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__} (not a GeError): {first}"


def convert(name: str, source: str, out_dir: str, options: dict | None = None) -> Conversion:
    """Parse ``source`` with openge, compile it (timed: the compile time) and save
    ``out_dir/<name>.om``. A failure is recorded in ``Conversion.error``, not raised."""
    from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
    from openge.parser import parse_onnx

    result = Conversion(name, source)
    stage = "parse"
    try:
        start = time.perf_counter()
        graph = parse_onnx(source)
        result.parse_s = time.perf_counter() - start
        stage = "build_model"
        build_initialize({})
        try:
            start = time.perf_counter()
            buffer = build_model(graph, options or {})
            result.build_s = time.perf_counter() - start
            del graph
            stage = "save_model"
            start = time.perf_counter()
            result.om_path = save_model(os.path.join(out_dir, name), buffer)
            result.save_s = time.perf_counter() - start
        finally:
            build_finalize()
    except Exception as err:  # record every failure: the benchmark goes on with other models
        result.error = f"{stage}: {_describe_error(err)}"
    return result


def main(argv: list[str] | None = None) -> int:
    """Build and convert the models; print one line per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma list of model names")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="folder for .onnx and .om files")
    parser.add_argument("--force", action="store_true", help="rebuild cached .onnx files")
    parser.add_argument("--no-convert", action="store_true", help="only build the .onnx files")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        start = time.perf_counter()
        path = onnx_path(name, args.cache, force=args.force)
        made = time.perf_counter() - start
        line = f"{name}: onnx {os.path.getsize(path) / 2**20:.1f} MiB ({made:.1f} s)"
        if not args.no_convert:
            conv = convert(name, path, args.cache)
            if conv.error:
                line += f"; conversion failed: {conv.error}"
            else:
                line += (
                    f"; om {os.path.getsize(conv.om_path) / 2**20:.1f} MiB, parse "
                    f"{conv.parse_s:.2f} s, build_model {conv.build_s:.2f} s, save "
                    f"{conv.save_s:.2f} s"
                )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
