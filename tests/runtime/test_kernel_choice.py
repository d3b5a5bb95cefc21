"""A model's kernels depend on the model, not on what else the process loaded: a small GELU
(8k elements, under the sizes that import numba) runs on NumPy's kernels whether or not an
earlier model loaded compiled kernels, so a model gives the same bits alone (a Ray actor, a
fresh CLI run) as beside others; a transformer-sized one (BERT-tiny's 65k elements, from
ERF_MIN_ELEMENTS) is compiled either way."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from openge import kernels
from openge.compiler import compile_graph
from openge.om.writer import serialize
from openge.parser import parse_onnx
from openge.runtime.model import Model


def _gelu_nodes(x: str) -> tuple[list, list]:
    """y = x · (1 + erf(x / √2)) / 2 as ONNX nodes and their constants: one elementwise
    program once compiled."""
    nodes = [
        helper.make_node("Div", [x, "sqrt2"], ["s"]),
        helper.make_node("Erf", ["s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]),
        helper.make_node("Mul", [x, "p"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    consts = [
        numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    return nodes, consts


def _compiled(nodes: list, consts: list, x_shape: list, y_shape: list) -> onnx.ModelProto:
    """A checked ONNX model of ``nodes`` from input x to output y."""
    graph = helper.make_graph(
        nodes,
        "kernel_choice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _gelu_model(rows: int = 128, width: int = 512) -> bytes:
    """The GELU over a (rows, width) input, compiled and saved as an .om."""
    model = _compiled(*_gelu_nodes("x"), [rows, width], [rows, width])
    return serialize(compile_graph(parse_onnx(model)), online=False)


def _dispatchers(fn, depth: int = 0, seen: set | None = None) -> list[str]:
    """numba dispatchers reachable through a step kernel's closures."""
    seen = set() if seen is None else seen
    if id(fn) in seen or depth > 6:
        return []
    seen.add(id(fn))
    found = []
    for value in [*(c.cell_contents for c in getattr(fn, "__closure__", None) or ())] + [
        getattr(fn, attr, None) for attr in ("kernel", "run", "__self__")
    ]:
        if value is None:
            continue
        if "Dispatcher" in type(value).__name__:
            found.append(getattr(value, "__name__", "?"))
        elif callable(value) or hasattr(value, "__closure__"):
            found += _dispatchers(value, depth + 1, seen)
        elif isinstance(value, tuple):
            for item in value:
                if callable(item):
                    found += _dispatchers(item, depth + 1, seen)
    return found


def _run_without_compiled_kernels(data: bytes, x: np.ndarray) -> np.ndarray:
    """Load ``data`` after another model imported numba, check that none of its steps holds a
    compiled kernel, run it once."""
    kernels.load("pooling")  # an earlier model in this process imported numba
    model = Model.from_bytes(data)
    try:
        assert not any(_dispatchers(step[0]) for step in model._steps)
        return model.execute([x])[0]
    finally:
        model.close()


def test_a_small_models_gelu_stays_in_numpy_after_another_model_loaded_numba():
    data = _gelu_model(128, 64)
    x = np.random.default_rng(3).standard_normal((128, 64)).astype(np.float32)
    y = _run_without_compiled_kernels(data, x)
    before = kernels.enabled()
    kernels.set_enabled(False)  # the NumPy kernels, as a process without numba runs them
    try:
        reference = Model.from_bytes(data)
        try:
            want = reference.execute([x])[0]
        finally:
            reference.close()
    finally:
        kernels.set_enabled(before)
    assert np.array_equal(y, want)


def test_a_transformer_sized_gelu_is_compiled_whatever_loaded_before():
    import math

    from openge.ops import compiled

    assert 128 * 512 >= compiled.ERF_MIN_ELEMENTS > 128 * 64
    data = _gelu_model()
    x = np.random.default_rng(4).standard_normal((128, 512)).astype(np.float32)
    outputs = []
    for earlier in (False, True):
        if earlier:
            kernels.load("pooling")  # an earlier model in this process imported numba
        model = Model.from_bytes(data)
        try:
            assert any(_dispatchers(step[0]) for step in model._steps)
            outputs.append(model.execute([x])[0])
        finally:
            model.close()
    assert np.array_equal(outputs[0], outputs[1])
    # the program rounds x/√2 to float32 first, as the graph says; then erf, 1 + e, x·p, ·0.5
    s = (x / np.float32(np.sqrt(2.0))).astype(np.float64)
    e = np.array([math.erf(v) for v in s.ravel()]).reshape(s.shape).astype(np.float32)
    want = (x * (e + np.float32(1.0))) * np.float32(0.5)
    np.testing.assert_allclose(outputs[0], want, rtol=4e-7, atol=1e-30)


def _product_then_gelu_model(rows: int, k: int = 64, n: int = 128) -> tuple[bytes, onnx.ModelProto]:
    """h = x @ W + b over a (rows, k) input with constant (k, n) weights, then the erf-GELU of
    h: the product comes first in the plan, the program that may load numba after it."""
    rng = np.random.default_rng(11)
    gelu, gelu_consts = _gelu_nodes("h")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["q0"]),
        helper.make_node("Add", ["q0", "b"], ["h"]),
    ]
    consts = [
        numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32) / 8, "w"),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "b"),
        *gelu_consts,
    ]
    model = _compiled(nodes + gelu, consts, [rows, k], [rows, n])
    return serialize(compile_graph(parse_onnx(model)), online=False), model


def _reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The graph in float64 NumPy, written out here (math.erf per element)."""
    import math

    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    h = x.astype(np.float64) @ init["w"] + init["b"]
    e = np.array([math.erf(v) for v in (h / math.sqrt(2.0)).ravel()]).reshape(h.shape)
    return h * (1.0 + e) * 0.5


def _product_step(model: Model):
    steps = [s for s in model._steps if s[5] in ("MatMulV2", "BatchMatMulV2", "FusedMatMul")]
    steps = steps or [model._steps[0]]
    return steps[0]


def test_a_product_before_the_models_first_compiled_kernel_is_compiled_too():
    """The product's weights (64×128) are under MIN_WEIGHTS: alone they keep numpy's BLAS; the
    GELU after it (256×128 = ERF_MIN_ELEMENTS) loads numba, so the product, prepared before,
    is prepared again on the own GEMM (openge.ops.compiled.take_deferred)."""
    from openge.ops import compiled, matmul_compiled

    assert matmul_compiled.MIN_WEIGHTS_LOADED <= 64 * 128 < matmul_compiled.MIN_WEIGHTS
    assert compiled.ERF_MIN_ELEMENTS <= 256 * 128
    data, proto = _product_then_gelu_model(256)
    x = np.random.default_rng(12).standard_normal((256, 64)).astype(np.float32)
    model = Model.from_bytes(data)
    try:
        assert "matmul" in _dispatchers(_product_step(model)[0])
        y = model.execute([x])[0]
        assert not model._deferred  # nothing left for a second look
    finally:
        model.close()
    want = _reference(proto, x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_the_same_product_in_a_model_without_compiled_kernels_keeps_blas():
    """Half the rows: the GELU (128×128) is under ERF_MIN_ELEMENTS, nothing loads numba, and
    the product stays on numpy's BLAS whatever the process loaded before."""
    data, proto = _product_then_gelu_model(128)
    x = np.random.default_rng(13).standard_normal((128, 64)).astype(np.float32)
    y = _run_without_compiled_kernels(data, x)
    want = _reference(proto, x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
