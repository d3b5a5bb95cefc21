"""Old-opset (1..6) ONNX models: upgraded to opset 7 safely (openge.parser.upgrade).

Hostile models each give a GeError, run in the capped child of tests/security (memory cap,
peak RSS and time measured); a legitimate opset-6 model parses and matches onnx.reference.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.version_converter
import pytest
from onnx import TensorProto, helper, numpy_helper

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.parser import parse_onnx
from openge.parser import upgrade as up
from openge.runtime import Model
from tests.security.capped import assert_bounded, run_jobs

F = TensorProto.FLOAT


def _vi(name, dims):
    return helper.make_tensor_value_info(name, F, dims)


def _model(nodes, opset, inputs=None, outputs=None, inits=(), sparse=()):
    graph = helper.make_graph(
        nodes,
        "g",
        inputs if inputs is not None else [_vi("x", [1, 4])],
        outputs if outputs is not None else [_vi("y", [1, 4])],
        initializer=list(inits),
        sparse_initializer=list(sparse),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _bad_utf8_name() -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"], name="reluX")
    return _model([node], 6).SerializeToString().replace(b"reluX", b"rel\xffX")


def _huge_initializer() -> onnx.ModelProto:
    t = onnx.TensorProto(name="w", data_type=F, dims=[1 << 40, 1 << 40])
    return _model([helper.make_node("Add", ["x", "w"], ["y"], broadcast=1)], 6, inits=[t])


HOSTILE = {
    "upsample_without_scales": _model([helper.make_node("Upsample", ["x"], ["y"])], 6),
    "cast_to_unknown_string": _model([helper.make_node("Cast", ["x"], ["y"], to="NOPE")], 5),
    "add_one_input": _model([helper.make_node("Add", ["x"], ["y"])], 6),
    "gemm_no_inputs": _model([helper.make_node("Gemm", [], ["y"], broadcast=1)], 6),
    "unknown_op": _model([helper.make_node("NoSuchOp", ["x"], ["y"])], 6),
    "undefined_input": _model([helper.make_node("Relu", ["nowhere"], ["y"])], 6),
    "two_producers": _model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sigmoid", ["x"], ["y"])], 6
    ),
    "cycle": _model(
        [
            helper.make_node("Add", ["x", "b"], ["a"], broadcast=1),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Relu", ["b"], ["y"]),
        ],
        6,
    ),
    "axis_broadcast_unknown_shape": _model(
        [helper.make_node("Mul", ["x", "z"], ["y"], broadcast=1, axis=1)],
        6,
        inputs=[_vi("x", None), _vi("z", None)],
    ),
    "huge_input_dims": _model(
        [helper.make_node("Relu", ["x"], ["y"])], 6, inputs=[_vi("x", [1 << 62, 1 << 62])]
    ),
    "huge_initializer_dims": _huge_initializer(),
    "split_absurd": _model([helper.make_node("Split", ["x"], ["y"], split=[1 << 40], axis=9)], 1),
    "invalid_utf8_name": _bad_utf8_name(),
    "empty_graph": _model([], 3),
}


#: Odd but not invalid for the parser (a negative dim reads as dynamic): parsed or refused.
ODD = {
    "negative_dims": _model(
        [helper.make_node("Slice", ["x"], ["y"], starts=[0], ends=[2], axes=[0])],
        1,
        inputs=[_vi("x", [-5, 4])],
        outputs=[_vi("y", [-3, 4])],
    ),
}


def test_hostile_old_opset_models_give_ge_errors(tmp_path):
    jobs = []
    for name, model in {**HOSTILE, **ODD}.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
        jobs.append(("tests.security.jobs:parse_onnx_file", [str(path)]))
    outcomes = run_jobs(jobs, tmp_path)
    for name, out in zip([*HOSTILE, *ODD], outcomes):
        allowed = ("GeError",) if name in HOSTILE else ("GeError", None)
        assert out.error in allowed, f"{name}: {out.error} {out.message}"
        assert_bounded(out, name)


def test_converter_crash_hang_and_memory_blowup_are_ge_errors(monkeypatch):
    """Whatever the C++ converter does to its process is a GeError in the caller."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])], 6)
    original = up._CHILD
    monkeypatch.setattr(up, "_CHILD", "import os\nos.abort()")
    with pytest.raises(GeError, match="crashed"):
        parse_onnx(model)
    monkeypatch.setattr(up, "_CHILD", "import time\ntime.sleep(30)")
    monkeypatch.setattr(up, "CHILD_TIMEOUT_S", 1.0)
    with pytest.raises(GeError, match="took more than"):
        parse_onnx(model)
    monkeypatch.setattr(up, "CHILD_TIMEOUT_S", 60.0)
    monkeypatch.setattr(up, "CHILD_ADDRESS_SPACE", 1 << 30)
    monkeypatch.setattr(up, "_CHILD", "print('not a model')")
    with pytest.raises(GeError, match="upgraded ONNX model"):
        parse_onnx(model)
    hog = original.replace(
        "try:\n    import importlib", "x = bytearray(3 << 30)\ntry:\n    import importlib"
    )
    monkeypatch.setattr(up, "_CHILD", hog)
    with pytest.raises(GeError, match="MemoryError"):
        parse_onnx(model)


def _legacy_cnn() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """An opset-6 CNN using the legacy forms the converter rewrites: BatchNormalization with
    is_test, Add and Gemm with broadcast, and an opset-6 Reshape."""
    rng = np.random.default_rng(0)
    inits = {
        "w": rng.standard_normal((8, 3, 27, 27)).astype(np.float32),
        "scale": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "bias": rng.standard_normal(8).astype(np.float32),
        "mean": rng.standard_normal(8).astype(np.float32),
        "var": rng.uniform(0.5, 2, 8).astype(np.float32),
        "cb": rng.standard_normal(4).astype(np.float32),
        "shape": np.array([1, -1], np.int64),
        "fc": rng.standard_normal((8 * 16, 160)).astype(np.float32),
        "fb": rng.standard_normal(160).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[13, 13, 13, 13], strides=[2, 2]),
        # trailing-dims broadcast (onnx 1.23's converter unsqueezes a mid-axis one wrongly)
        helper.make_node("Add", ["c", "cb"], ["cbias"], broadcast=1),
        helper.make_node(
            "BatchNormalization",
            ["cbias", "scale", "bias", "mean", "var"],
            ["bn"],
            is_test=1,
            epsilon=1e-3,
        ),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fb"], ["y"], broadcast=1),
    ]
    model = _model(
        nodes,
        6,
        inputs=[_vi("x", [1, 3, 8, 8])],
        outputs=[_vi("y", [1, 160])],
        inits=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return model, inits


def test_legitimate_opset6_model_matches_onnx_runtime():
    """ONNX Runtime does not run opset-6 Add with ``broadcast``: the reference is ONNX Runtime on
    onnx's own in-process conversion of this trusted model (no openge code involved);
    onnx.reference cannot be used (its BatchNormalization_6 returns a tuple)."""
    import onnxruntime as ort

    model, _ = _legacy_cnn()
    trusted = onnx.version_converter.convert_version(model, 7)
    del trusted.graph.value_info[:]  # the converter records its Unsqueeze output untyped
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(trusted.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"x": x})
    graph = parse_onnx(model)
    with Model(compile_graph(graph)) as m:
        (got,) = m.execute([x])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_upgrade_sends_no_weights_and_restores_them():
    model, inits = _legacy_cnn()
    copy = up.structural_copy(model)
    big = {"w", "fc"}  # the only initializers over KEEP_BYTES
    for t, orig in zip(copy.graph.initializer, model.graph.initializer):
        assert t.name == orig.name and list(t.dims) == list(orig.dims)
        assert (t.raw_data == b"") == (t.name in big), t.name
    assert [list(t.dims) for t in copy.graph.initializer] == [
        list(t.dims) for t in model.graph.initializer
    ]
    assert copy.ByteSize() < model.ByteSize() // 4
    upgraded = up.upgrade_model(model, 6, 7)
    assert upgraded.opset_import[0].version == 7
    back = {t.name: numpy_helper.to_array(t) for t in upgraded.graph.initializer}
    for name, value in inits.items():
        np.testing.assert_array_equal(back[name], value)
    assert model.opset_import[0].version == 6  # the caller's proto is not changed


def test_attribute_moved_to_an_input_keeps_its_value():
    """Reshape 4 → 5 turns the ``shape`` attribute into an input the converter creates."""
    model = _model(
        [helper.make_node("Reshape", ["x"], ["y"], shape=[2, 2])],
        4,
        outputs=[_vi("y", [2, 2])],
    )
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    with Model(compile_graph(parse_onnx(model))) as m:
        (got,) = m.execute([x])
    np.testing.assert_array_equal(got, x.reshape(2, 2))
