"""PrecisionPass: every precision mode, each list rule of allow_mix_precision, the list / dtype
files, the v1/v2 exclusion, and must_keep_origin_dtype leaving results bit-identical."""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.compiler.precision_config import parse_customize_line, parse_mixlist, resolve_mode
from openge.compiler.precision_lists import BLACK, CUBE, UNTOUCHED, WHITE, default_list
from openge.errors import GeError
from openge.graph import DataType
from openge.ops import all_schemas

from .models import Builder, cnn, mlp, run

F16, F32, BF16 = DataType.DT_FLOAT16, DataType.DT_FLOAT, DataType.DT_BF16
MODE = "ge.exec.precision_mode"


def _dtypes(compiled, op_type: str) -> list[DataType]:
    """Output dtype of every task of ``op_type`` (fused tasks count as their main op)."""
    fused = {"MatMulV2": "FusedMatMul", "Conv2D": "FusedConv2D"}
    return [
        t.outputs[0].dtype
        for t in compiled.tasks
        if t.op_type in (op_type, fused.get(op_type, op_type))
    ]


def _chain() -> Builder:
    """x → MatMul (white) → Relu (gray) → Exp (black) → Relu (gray) → y."""
    b = Builder("chain")
    x = b.input((4, 8))
    h = b.op("MatMulV2", x, b.weight(8, 8), name="mm")
    h = b.op("Relu", h, name="relu1")
    h = b.op("Exp", h, name="exp")
    h = b.op("Relu", h, name="relu2")
    b.done(h)
    return b


def _no_fusion(**extra: str) -> dict[str, str]:
    return {"ge.oo.level": "O1", **extra}


def _task_dtype(compiled, name: str) -> DataType:
    for t in compiled.tasks:
        if t.name == name or t.name.startswith(name + "_"):
            return t.outputs[0].dtype
    raise AssertionError(f"no task {name}: {[t.name for t in compiled.tasks]}")


# ----- the lists ----------------------------------------------------------------------------


def test_every_catalog_op_has_a_list_and_cube_ops_are_white():
    for schema in all_schemas():
        assert default_list(schema.op_type) in ("white", "black", "gray", None)
    assert CUBE <= WHITE
    assert not (WHITE & BLACK) and not (BLACK & UNTOUCHED)
    assert default_list("Cast") is None and default_list("Relu") == "gray"


def test_mix_white_op_is_lowered():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_mix_precision"}))
    assert _task_dtype(c, "mm") == F16


def test_mix_gray_op_follows_a_lowered_input():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_mix_precision"}))
    assert _task_dtype(c, "relu1") == F16  # after the white MatMul


def test_mix_black_op_stays_float32():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_mix_precision"}))
    assert _task_dtype(c, "exp") == F32


def test_mix_gray_op_after_a_float32_input_stays_float32():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_mix_precision"}))
    assert _task_dtype(c, "relu2") == F32  # after the black Exp
    assert c.outputs[0].dtype == F32


def test_mix_bf16_lowers_to_bfloat16():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_mix_precision_bf16"}))
    assert _task_dtype(c, "mm") == BF16 and _task_dtype(c, "exp") == F32


def test_mix_numerics_match_a_numpy_emulation_of_the_lists():
    b = _chain()
    x = b.feeds()[0]
    w = next(v for v in b.known.values() if v.shape == (8, 8))
    h16 = x.astype(np.float16).astype(np.float32) @ w.astype(np.float16).astype(np.float32)
    h16 = np.maximum(h16.astype(np.float16), 0)  # MatMul and Relu in float16
    want = np.maximum(np.exp(h16.astype(np.float32)), 0)  # Exp (black) and Relu in float32
    got = run(b.g, [x], {MODE: "allow_mix_precision"})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_modify_mixlist_moves_ops_between_lists(tmp_path):
    mix = {"black-list": {"to-add": ["Relu"]}, "white-list": {"to-remove": ["MatMulV2"]}}
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(mix))
    c = compile_graph(
        _chain().g,
        _no_fusion(**{MODE: "allow_mix_precision", "ge.exec.modify_mixlist": str(path)}),
    )
    assert _task_dtype(c, "mm") == F32  # gray now, with a float32 input
    assert _task_dtype(c, "relu1") == F32
    assert parse_mixlist(json.dumps(mix)) == {"Relu": "black", "MatMulV2": "gray"}


def test_modify_mixlist_adds_to_white(tmp_path):
    mix = json.dumps({"white-list": {"to-add": ["Exp"]}})
    c = compile_graph(
        _chain().g, _no_fusion(**{MODE: "allow_mix_precision", "ge.exec.modify_mixlist": mix})
    )
    assert _task_dtype(c, "exp") == F16 and _task_dtype(c, "relu2") == F16


@pytest.mark.parametrize(
    "text",
    ["[1]", "{not json", '{"pink-list": {}}', '{"white-list": {"to-add": "Relu"}}'],
)
def test_bad_mixlist_is_a_ge_error(text):
    with pytest.raises(GeError, match="modify_mixlist"):
        parse_mixlist(text)


def test_keep_dtype_by_name_and_type(tmp_path):
    path = tmp_path / "keep.cfg"
    path.write_text("mm\nOpType::Relu\n")
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "force_fp16", "ge.keepDtype": str(path)}))
    assert _task_dtype(c, "mm") == F32
    assert _task_dtype(c, "relu1") == F32 and _task_dtype(c, "relu2") == F32
    assert _task_dtype(c, "exp") == F16


def test_customize_dtypes(tmp_path):
    path = tmp_path / "dtypes.cfg"
    path.write_text("exp::InputDtype:bfloat16,OutputDtype:bfloat16\n")
    c = compile_graph(_chain().g, _no_fusion(**{"ge.customizeDtypes": str(path)}))
    assert _task_dtype(c, "exp") == BF16 and _task_dtype(c, "mm") == F32
    assert parse_customize_line("OpType::Conv2D::InputDtype:float16,float16") == (
        "OpType::Conv2D",
        F16,
    )
    with pytest.raises(GeError, match="customizeDtypes"):
        parse_customize_line("exp::OutputDtype:float16")


# ----- modes --------------------------------------------------------------------------------


def test_force_fp16_lowers_everything_and_keeps_the_boundaries():
    b = cnn()
    c = compile_graph(b.g, {MODE: "force_fp16"})
    inner = [t for t in c.tasks if t.op_type != "Cast"]
    assert all(t.outputs[0].dtype == F16 for t in inner if t.outputs[0].dtype.np_dtype.kind == "f")
    assert [o.dtype for o in c.outputs] == [F32, F32]
    assert [i.dtype for i in c.inputs] == [F32]
    reference = compile_graph(b.g)
    assert [o.name for o in c.outputs] == [o.name for o in reference.outputs]


def test_allow_fp32_to_fp16_lowers_only_cube_ops():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_fp32_to_fp16"}))
    assert _task_dtype(c, "mm") == F16
    assert _task_dtype(c, "relu1") == F32 and _task_dtype(c, "exp") == F32


def test_allow_fp32_to_bf16_lowers_only_cube_ops():
    c = compile_graph(_chain().g, _no_fusion(**{MODE: "allow_fp32_to_bf16"}))
    assert _task_dtype(c, "mm") == BF16 and _task_dtype(c, "relu1") == F32


@pytest.mark.parametrize("option", [(MODE, "cube_fp16in_fp32out"), (MODE, "force_fp32")])
def test_cube_fp16_in_fp32_out_rounds_inputs_and_accumulates_in_float32(option):
    b = Builder("mm")
    x = b.input((16, 64))
    w = (b.rng.normal(size=(64, 32)) * 0.3).astype(np.float32)
    b.done(b.op("MatMulV2", x, b.const(w)))
    feed = b.feeds()[0]
    c = compile_graph(b.g, dict([option]))
    assert c.outputs[0].dtype == F32 and all(t.outputs[0].dtype == F32 for t in c.tasks)
    got = run(b.g, [feed], dict([option]))[0]
    want = feed.astype(np.float16).astype(np.float64) @ w.astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-5, atol=1e-6)
    plain = run(b.g, [feed])[0]
    assert not np.array_equal(got, plain)  # the inputs really were rounded


def test_precision_mode_v2_values_map_to_v1():
    assert resolve_mode({"ge.exec.precision_mode_v2": "fp16"}) == "force_fp16"
    assert resolve_mode({"ge.exec.precision_mode_v2": "origin"}) == "must_keep_origin_dtype"
    assert resolve_mode({"ge.exec.precision_mode_v2": "mixed_float16"}) == (
        "allow_mix_precision_fp16"
    )
    assert resolve_mode({"ge.exec.precision_mode_v2": "mixed_bfloat16"}) == (
        "allow_mix_precision_bf16"
    )
    c = compile_graph(_chain().g, _no_fusion(**{"ge.exec.precision_mode_v2": "mixed_float16"}))
    assert _task_dtype(c, "mm") == F16 and _task_dtype(c, "exp") == F32


def test_v1_and_v2_are_exclusive():
    with pytest.raises(GeError, match="exclusive"):
        compile_graph(
            _chain().g,
            {MODE: "force_fp16", "ge.exec.precision_mode_v2": "fp16"},
        )


def test_hifloat8_modes_are_refused():
    with pytest.raises(GeError, match="HiFloat8"):
        compile_graph(_chain().g, {"ge.exec.precision_mode_v2": "cube_hif8"})


def test_bad_mode_names_the_accepted_values():
    from openge.compiler.options import validate_options

    with pytest.raises(GeError, match="allow_fp32_to_bf16"):
        validate_options({MODE: "fp64"}, "graph")


@pytest.mark.parametrize("build", [cnn, mlp])
def test_must_keep_origin_dtype_is_bit_identical_to_no_option(build):
    b = build()
    feeds = b.feeds()
    plain = run(b.g, feeds)
    kept = run(b.g, feeds, {MODE: "must_keep_origin_dtype"})
    origin = run(b.g, feeds, {"ge.exec.precision_mode_v2": "origin"})
    for p, k, o in zip(plain, kept, origin):
        assert p.tobytes() == k.tobytes() == o.tobytes()
    a = compile_graph(b.g)
    c = compile_graph(b.g, {MODE: "must_keep_origin_dtype"})
    assert [(t.name, t.op_type) for t in a.tasks] == [(t.name, t.op_type) for t in c.tasks]


def test_bfloat16_graph_runs_through_float32_kernels():
    b = Builder("bf16")
    x = b.input((3, 5), dtype=BF16)
    w = b.const((b.rng.normal(size=(5, 4))).astype(ml_dtypes.bfloat16))
    b.done(b.op("Relu", b.op("MatMulV2", x, w)))
    feed = np.random.default_rng(3).normal(size=(3, 5)).astype(ml_dtypes.bfloat16)
    got = run(b.g, [feed])[0]
    wv = next(v for v in b.known.values() if v.shape == (5, 4)).astype(np.float32)
    want = np.maximum(feed.astype(np.float32) @ wv, 0).astype(ml_dtypes.bfloat16)
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
