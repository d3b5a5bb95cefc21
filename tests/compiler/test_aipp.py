"""Static AIPP (--insert_op_conf): the config parser, the inserted Aipp node, the model's new
uint8 NHWC input, and the arithmetic against a NumPy implementation of GE's documented formulas
written here (exact through the uint8 stages, float16 rounding after)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import openge.acl as acl
from openge.cli.main import main as openge_main
from openge.compiler.aipp_config import parse_aipp_config
from openge.errors import GeError
from openge.runtime import Model

RGB_CFG = """
aipp_op {
  aipp_mode: static
  input_format: RGB888_U8
  src_image_size_w: 12
  src_image_size_h: 10
  crop: true
  load_start_pos_w: 2
  load_start_pos_h: 1
  crop_size_w: 8
  crop_size_h: 6
  rbuv_swap_switch: true
  csc_switch: true
  matrix_r0c0: 66
  matrix_r0c1: 129
  matrix_r0c2: 25
  matrix_r1c0: -38
  matrix_r1c1: -74
  matrix_r1c2: 112
  matrix_r2c0: 112
  matrix_r2c1: -94
  matrix_r2c2: -18
  output_bias_0: 16
  output_bias_1: 128
  output_bias_2: 128
  mean_chn_0: 100
  mean_chn_1: 110
  mean_chn_2: 120
  min_chn_0: 0.5
  min_chn_1: 1.25
  min_chn_2: -2.0
  var_reci_chn_0: 0.0171247538316637
  var_reci_chn_1: 0.0175070028011204
  var_reci_chn_2: 0.0174291938997821
  padding: true
  top_padding_size: 1
  bottom_padding_size: 1
  left_padding_size: 2
  right_padding_size: 2
  padding_value: 0.75
}
"""

YUV_CFG = """
aipp_op {
  aipp_mode: static
  input_format: YUV420SP_U8   # NV12
  src_image_size_w: 10
  src_image_size_h: 8
  crop: true
  load_start_pos_w: 2
  load_start_pos_h: 2
  crop_size_w: 6
  crop_size_h: 4
  csc_switch: true
  mean_chn_0: 104
  mean_chn_1: 117
  mean_chn_2: 123
  var_reci_chn_0: 0.01
  var_reci_chn_1: 0.02
  var_reci_chn_2: 0.03
  padding: true
  top_padding_size: 2
  bottom_padding_size: 2
  left_padding_size: 1
  right_padding_size: 1
  padding_value: -1.0
}
"""


def _identity_model(path, h, w):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="id")],
        "ident",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, h, w))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 3, h, w))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _compile(tmp_path, cfg, h, w):
    onnx_path, cfg_path = str(tmp_path / "m.onnx"), str(tmp_path / "aipp.cfg")
    _identity_model(onnx_path, h, w)
    with open(cfg_path, "w") as f:
        f.write(cfg)
    prefix = str(tmp_path / "m")
    assert (
        openge_main(
            ["atc", f"--model={onnx_path}", f"--output={prefix}", f"--insert_op_conf={cfg_path}"]
        )
        == 0
    )
    return prefix + ".om"


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _csc(t, m):
    """o_i = round_half_away((2·Σ_j M_ij·t_j + 1) / 512), per pixel, in exact integers."""
    out = np.zeros(t.shape, dtype=np.int64)
    for i in range(3):
        s = sum(int(m[i][j]) * t[..., j].astype(np.int64) for j in range(3))
        out[..., i] = _round_half_away((2 * s + 1) / 512.0).astype(np.int64)
    return out


def _normalise_and_pad(pix, mean, mn, var, pad, value, h, w):
    top, bottom, left, right = pad
    out = np.full((h, w, 3), np.float16(value), dtype=np.float16)
    for c in range(3):
        a = np.float16(pix[..., c] - mean[c])
        b = (a - np.float16(mn[c])).astype(np.float16)
        out[top : h - bottom, left : w - right, c] = (b * np.float16(var[c])).astype(np.float16)
    return out.transpose(2, 0, 1)[None]


def test_rgb888_crop_csc_normalise_pad(tmp_path):
    om = _compile(tmp_path, RGB_CFG, 8, 12)
    model = Model.from_file(om)
    assert model.inputs[0].shape == (1, 10, 12, 3)
    assert model.inputs[0].dtype.short_name == "uint8"
    aipp = [t for t in model.compiled.tasks if t.op_type == "Aipp"]
    assert len(aipp) == 1 and aipp[0].name == "x_0_aipp"
    img = np.random.default_rng(0).integers(0, 256, (1, 10, 12, 3), dtype=np.uint8)
    (got,) = model.execute([img])
    # reference: swap R/B, crop, CSC (RGB input: output bias, no input bias), clip to uint8
    pix = img[0][:, :, ::-1][1:7, 2:10].astype(np.int64)
    m = [[66, 129, 25], [-38, -74, 112], [112, -94, -18]]
    yuv = np.clip(_csc(pix, m) + np.array([16, 128, 128]), 0, 255)
    ref = _normalise_and_pad(
        yuv,
        [100, 110, 120],
        [0.5, 1.25, -2.0],
        [0.0171247538316637, 0.0175070028011204, 0.0174291938997821],
        (1, 1, 2, 2),
        0.75,
        8,
        12,
    )
    np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_yuv420sp_uint8_stage_is_exact_and_output_matches(tmp_path):
    om = _compile(tmp_path, YUV_CFG, 8, 8)
    rng = np.random.default_rng(1)
    H, W = 8, 10
    nv12 = rng.integers(0, 256, H * W * 3 // 2, dtype=np.uint8)
    assert acl.init() == 0
    try:
        model_id, ret = acl.mdl.load_from_file(om)
        assert ret == 0
        desc = acl.mdl.create_desc()
        acl.mdl.get_desc(desc, model_id)
        assert acl.mdl.get_input_size_by_index(desc, 0) == H * W * 3 // 2
        assert acl.mdl.get_input_format(desc, 0) == 1  # NHWC
        assert acl.mdl.get_input_data_type(desc, 0) == 4  # UINT8
        info, ret = acl.mdl.get_first_aipp_info(model_id, 0)
        assert ret == 0 and info["inputFormat"] == 1 and info["cropSizeW"] == 6
        assert info["topPaddingSize"] == 2 and info["cscSwitch"] == 1
        assert acl.mdl.get_aipp_type(model_id, 0) == (1, -1, 0)
    finally:
        acl.finalize()
    (got,) = Model.from_file(om).execute([nv12.reshape(1, H * 3 // 2, W, 1)])
    y = nv12[: H * W].reshape(H, W).astype(np.int64)
    uv = nv12[H * W :]
    yuv = np.zeros((H, W, 3), dtype=np.int64)
    for r in range(H):
        for c in range(W):
            base = (r // 2) * W + (c - c % 2)
            yuv[r, c] = (y[r, c], uv[base], uv[base + 1])
    t = yuv[2:6, 2:8] - np.array([16, 128, 128])  # crop, input bias (YUV input)
    bgr = np.clip(_csc(t, [[298, 516, 0], [298, -100, -208], [298, 0, 409]]), 0, 255)
    ref = _normalise_and_pad(
        bgr, [104, 117, 123], [0, 0, 0], [0.01, 0.02, 0.03], (2, 2, 1, 1), -1.0, 8, 8
    )
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    # the uint8 stage alone: no normalisation, no padding
    plain = YUV_CFG.split("mean_chn_0")[0] + "}\n"
    sub = tmp_path / "u8"
    sub.mkdir()
    om2 = _compile(sub, plain, 4, 6)
    (u8,) = Model.from_file(om2).execute([nv12.reshape(1, H * 3 // 2, W, 1)])
    np.testing.assert_array_equal(u8[0].transpose(1, 2, 0), bgr.astype(np.float32))


def test_config_errors_name_the_line():
    with pytest.raises(GeError, match=r":3: crop takes bool"):
        parse_aipp_config("aipp_op {\n  input_format: RGB888_U8\n  crop: maybe\n}")
    with pytest.raises(GeError, match=r":2: unknown AIPP field 'cropp'"):
        parse_aipp_config("aipp_op {\n  cropp: true\n}")
    with pytest.raises(GeError, match=r":1: input_format RAW10 is not supported"):
        parse_aipp_config("aipp_op { input_format: RAW10 }")
    with pytest.raises(GeError, match="not closed"):
        parse_aipp_config("aipp_op {\n  crop: true\n")


def test_config_that_does_not_fit_the_model_is_refused(tmp_path):
    bad = RGB_CFG.replace("crop_size_w: 8", "crop_size_w: 7")
    with pytest.raises(GeError, match="model input is 8x12"):
        from openge.compiler import compile_graph
        from openge.parser import parse_onnx

        path = str(tmp_path / "m.onnx")
        _identity_model(path, 8, 12)
        cfg = tmp_path / "bad.cfg"
        cfg.write_text(bad)
        compile_graph(parse_onnx(path), {"ge.insertOpFile": str(cfg)})


def _single_input_model(path, c, h, w):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="id")],
        "ident",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, c, h, w))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, c, h, w))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


@pytest.mark.parametrize("ax_swap", [False, True])
def test_xrgb8888_drops_the_alpha_byte(tmp_path, ax_swap):
    cfg = (
        "aipp_op {\n input_format: XRGB8888_U8\n src_image_size_w: 5\n src_image_size_h: 4\n"
        f" ax_swap_switch: {'true' if ax_swap else 'false'}\n mean_chn_0: 10\n"
        " var_reci_chn_2: 0.5\n}\n"
    )
    om = _compile(tmp_path, cfg, 4, 5)
    img = np.random.default_rng(3).integers(0, 256, (1, 4, 5, 4), dtype=np.uint8)
    (got,) = Model.from_file(om).execute([img])
    rgb = (img[0, :, :, :3] if ax_swap else img[0, :, :, 1:]).astype(np.int64)
    ref = _normalise_and_pad(rgb, [10, 0, 0], [0, 0, 0], [1.0, 1.0, 0.5], (0, 0, 0, 0), 0, 4, 5)
    np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_yuv400_gray(tmp_path):
    onnx_path, cfg = str(tmp_path / "g.onnx"), tmp_path / "g.cfg"
    _single_input_model(onnx_path, 1, 6, 6)
    cfg.write_text(
        "aipp_op {\n input_format: YUV400_U8\n crop: true\n load_start_pos_w: 1\n"
        " load_start_pos_h: 2\n src_image_size_w: 8\n src_image_size_h: 8\n"
        " mean_chn_0: 128\n var_reci_chn_0: 0.0078125\n}\n"
    )
    prefix = str(tmp_path / "g")
    assert (
        openge_main(
            ["atc", f"--model={onnx_path}", f"--output={prefix}", f"--insert_op_conf={cfg}"]
        )
        == 0
    )
    model = Model.from_file(prefix + ".om")
    assert model.inputs[0].shape == (1, 8, 8, 1)
    img = np.random.default_rng(4).integers(0, 256, (1, 8, 8, 1), dtype=np.uint8)
    (got,) = model.execute([img])
    pix = img[0, 2:8, 1:7, 0].astype(np.int64)
    ref = (np.float16(pix - 128) - np.float16(0)).astype(np.float16) * np.float16(0.0078125)
    np.testing.assert_array_equal(got[0, 0], ref.astype(np.float32))
