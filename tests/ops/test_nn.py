"""Tests for the nn op families (openge.ops.conv, pooling, normalization, ...): every kernel
against an independent reference written here
(per-pixel loops / formulas) or ONNX Runtime, plus GeError cases that name the node."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from openge.errors import UNSUPPORTED, GeError
from openge.graph import Format, Graph, Tensor, TensorDesc, from_numpy_dtype
from openge.ops import evaluate, get_schema, infer_node

RNG = np.random.default_rng(1234)
NCHW, NHWC = Format.FORMAT_NCHW, Format.FORMAT_NHWC


# ----- harness ------------------------------------------------------------------------------


def _build(op_type, inputs, attrs, formats=None, consts=(), name="n0"):
    g = Graph("t")
    ports, values = [], {}
    for i, v in enumerate(inputs):
        if v is None:
            ports.append(None)
            continue
        if isinstance(v, TensorDesc):
            desc = v
        else:
            fmt = (formats or {}).get(i, Format.FORMAT_ND)
            desc = TensorDesc(from_numpy_dtype(v.dtype), v.shape, fmt)
        if i in consts:
            node = g.add_node(
                "Const", name=f"c{i}", attrs={"value": Tensor(v)}, output_descs=[desc]
            )
            values[node.output(0)] = np.asarray(v)
        else:
            node = g.add_node("Data", name=f"d{i}", attrs={"index": i}, output_descs=[desc])
        ports.append(node.output(0))
    n_out = len(get_schema(op_type).outputs)
    node = g.add_node(op_type, ports, name=name, attrs=attrs, num_outputs=n_out)
    return node, values


def infer(op_type, inputs, attrs, **kw):
    node, values = _build(op_type, inputs, attrs, **kw)
    return infer_node(node, values)


def _readonly(a):
    a = np.asarray(a)
    a = a.view()
    a.setflags(write=False)
    return a


def run(op_type, inputs, attrs, **kw):
    """Infer on a one-node graph, then run the kernel on read-only copies of the inputs."""
    norm, descs = infer(op_type, inputs, attrs, **kw)
    arrays = [None if v is None or isinstance(v, TensorDesc) else _readonly(v) for v in inputs]
    outs = evaluate(get_schema(op_type), norm, arrays, descs)
    for o, d in zip(outs, descs, strict=True):
        assert o.shape == d.shape and o.dtype == d.dtype.np_dtype
    return outs


def expect_error(op_type, inputs, attrs, match, code=None, **kw):
    with pytest.raises(GeError) as info:
        infer(op_type, inputs, attrs, **kw)
    msg = str(info.value)
    assert "n0" in msg, msg
    assert match in msg, msg
    if code is not None:
        assert info.value.code == code
    return info.value


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def ort_run(op_type, inputs, attrs, n_out=1, opset=19, out_types=None):
    """Run one ONNX node with ONNX Runtime (inputs: list of arrays)."""
    names = [f"i{k}" for k in range(len(inputs))]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(op_type, names, outs, **attrs)
    vi = [
        helper.make_tensor_value_info(nm, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
        for nm, a in zip(names, inputs, strict=True)
    ]
    ot = out_types or [helper.np_dtype_to_tensor_dtype(inputs[0].dtype)] * n_out
    vo = [helper.make_tensor_value_info(nm, t, None) for nm, t in zip(outs, ot, strict=True)]
    graph = helper.make_graph([node], "g", vi, vo)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs, strict=True)))


# ----- references -----------------------------------------------------------------------------


def ref_conv(x, w, b, strides, pads, dil, groups):
    """NCHW conv, one output pixel at a time (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dil
    pt, pb, pl, pr = pads
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    y = np.zeros((n, co, oh, ow))
    cog = co // groups
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            patch = xp[:, :, rows, cols]
            for g in range(groups):
                y[:, g * cog : (g + 1) * cog, i, j] = np.einsum(
                    "nckl,ockl->no", patch[:, g * cg : (g + 1) * cg], w[g * cog : (g + 1) * cog]
                )
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def ref_conv_transpose(x, w, b, strides, pads, dil, groups, out_hw):
    """NCHW transposed conv by scattering each input pixel (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, cx, h, wd = x.shape
    _, cyg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dil
    pt, _, pl, _ = pads
    yh, yw = out_hw
    cxg = cx // groups
    full = np.zeros((n, cyg * groups, pt + yh + h * sh + kh * dh, pl + yw + wd * sw + kw * dw))
    for i in range(h):
        for j in range(wd):
            for g in range(groups):
                contrib = np.einsum(
                    "nc,cokl->nokl", x[:, g * cxg : (g + 1) * cxg, i, j], w[g * cxg : (g + 1) * cxg]
                )
                for a in range(kh):
                    for bb in range(kw):
                        full[:, g * cyg : (g + 1) * cyg, i * sh + a * dh, j * sw + bb * dw] += (
                            contrib[:, :, a, bb]
                        )
    y = full[:, :, pt : pt + yh, pl : pl + yw]
    if b is not None:
        y = y + b.astype(np.float64)[None, :, None, None]
    return y


def ref_out_len(size, k, s, p0, p1, ceil_mode):
    if ceil_mode:
        out = math.ceil((size + p0 + p1 - k) / s) + 1
        if (out - 1) * s >= size + p0:
            out -= 1
        return out
    return math.floor((size + p0 + p1 - k) / s) + 1


def ref_pool(x, kind, k, s, pads, ceil_mode=False, exclusive=True, divisor=0):
    """NCHW pooling over explicit windows of the unpadded input (float64)."""
    n, c, h, w = x.shape
    kh, kw = k
    sh, sw = s
    pt, pb, pl, pr = pads
    oh = ref_out_len(h, kh, sh, pt, pb, ceil_mode)
    ow = ref_out_len(w, kw, sw, pl, pr, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    xd = x.astype(np.float64)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * sh - pt, j * sw - pl
            win = xd[:, :, max(h0, 0) : min(h0 + kh, h), max(w0, 0) : min(w0 + kw, w)]
            if kind == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                if divisor:
                    cnt = divisor
                elif exclusive:
                    cnt = win.shape[2] * win.shape[3]
                else:
                    cnt = (min(h0 + kh, h + pb) - h0) * (min(w0 + kw, w + pr) - w0)
                y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


def to_nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def to_hwcn(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_attrs(fmt, strides, pads, dil, groups):
    def four(v):
        return [1, 1, *v] if fmt == "NCHW" else [1, *v, 1]

    return {
        "strides": four(strides),
        "pads": list(pads),
        "dilations": four(dil),
        "groups": groups,
        "data_format": fmt,
    }


# ----- Conv2D -------------------------------------------------------------------------------

CONV_CASES = [
    # (x shape NCHW, filter shape (Co, Cg, kh, kw), strides, pads, dilations, groups)
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((1, 3, 9, 8), (5, 3, 3, 2), (2, 3), (0, 2, 1, 0), (2, 1), 1),
    ((2, 4, 6, 7), (6, 2, 2, 3), (1, 2), (1, 0, 0, 2), (1, 1), 2),
    ((2, 4, 8, 8), (4, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 4),  # depthwise
    ((1, 3, 9, 9), (6, 1, 3, 3), (1, 1), (2, 1, 0, 2), (2, 2), 3),  # depthwise ×2
    ((2, 24, 7, 7), (24, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 24),  # depthwise, channels-last
    ((1, 16, 9, 8), (16, 1, 3, 5), (2, 2), (1, 0, 2, 1), (1, 2), 16),  # … strided, dilated
    ((2, 5, 4, 6), (3, 5, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1 GEMM
    ((1, 6, 7, 5), (4, 3, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 2),  # 1x1 strided grouped
    ((1, 2, 5, 4), (3, 2, 1, 1), (1, 1), (1, 0, 2, 1), (1, 1), 1),  # 1x1 with pads
    ((1, 2, 5, 4), (3, 2, 6, 5), (1, 1), (1, 0, 0, 1), (1, 1), 1),  # kernel covers all
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_reference(case, fmt, with_bias):
    xs, ws, strides, pads, dil, groups = case
    x, w = rand(*xs), rand(*ws)
    b = rand(ws[0]) if with_bias else None
    expected = ref_conv(x, w, b, strides, pads, dil, groups)
    if fmt == "NCHW":
        (y,) = run(
            "Conv2D",
            [x, w, b],
            conv_attrs(fmt, strides, pads, dil, groups),
            formats={0: NCHW, 1: NCHW},
        )
    else:
        (y,) = run(
            "Conv2D",
            [to_nhwc(x), to_hwcn(w), b],
            conv_attrs(fmt, strides, pads, dil, groups),
            formats={0: NHWC, 1: Format.FORMAT_HWCN},
        )
        y = y.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[2], CONV_CASES[4]])
def test_conv2d_matches_onnxruntime(case):
    xs, ws, strides, pads, dil, groups = case
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    (expected,) = ort_run(
        "Conv",
        [x, w, b],
        {
            "strides": list(strides),
            "dilations": list(dil),
            "group": groups,
            "pads": [pads[0], pads[2], pads[1], pads[3]],
        },
    )
    (y,) = run("Conv2D", [x, w, b], conv_attrs("NCHW", strides, pads, dil, groups))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_conv2d_dtypes(dtype):
    x, w, b = rand(2, 4, 6, 6, dtype=dtype), rand(6, 2, 3, 3, dtype=dtype), rand(6, dtype=dtype)
    (y,) = run("Conv2D", [x, w, b], conv_attrs("NCHW", (1, 1), (1, 1, 1, 1), (1, 1), 2))
    assert y.dtype == dtype
    expected = ref_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    tol = 2e-2 if dtype == np.float16 else 1e-10
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=tol, atol=tol)


def test_conv2d_int8_gives_exact_int32():
    x = RNG.integers(-128, 128, (1, 3, 5, 5)).astype(np.int8)
    w = RNG.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8)
    b = RNG.integers(-1000, 1000, 2).astype(np.int32)
    (y,) = run("Conv2D", [x, w, b], conv_attrs("NCHW", (1, 1), (1, 1, 1, 1), (1, 1), 1))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1))


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_conv2d_large_batch_runs_in_chunks(monkeypatch, fmt):
    import openge.ops.conv as nn

    monkeypatch.setattr(nn, "_IM2COL_BYTES", 4000)  # forces one-sample chunks
    x, w, b = rand(5, 4, 6, 6), rand(6, 2, 3, 3), rand(6)
    attrs = conv_attrs(fmt, (1, 2), (1, 0, 1, 1), (1, 1), 2)
    if fmt == "NCHW":
        (y,) = run("Conv2D", [x, w, b], attrs)
    else:
        (y,) = run("Conv2D", [to_nhwc(x), to_hwcn(w), b], attrs)
        y = y.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(
        y, ref_conv(x, w, b, (1, 2), (1, 0, 1, 1), (1, 1), 2), rtol=1e-4, atol=1e-4
    )


def test_conv2d_non_contiguous_input():
    base = rand(2, 6, 5, 3)  # NHWC-shaped storage viewed as NCHW
    x = base.transpose(0, 3, 1, 2)
    w = rand(4, 3, 2, 2)
    norm, descs = infer(
        "Conv2D", [np.ascontiguousarray(x), w], conv_attrs("NCHW", (1, 1), (0, 1, 1, 0), (1, 1), 1)
    )
    (y,) = evaluate(get_schema("Conv2D"), norm, [_readonly(x), _readonly(w)], descs)
    np.testing.assert_allclose(
        y, ref_conv(x, w, None, (1, 1), (0, 1, 1, 0), (1, 1), 1), rtol=1e-4, atol=1e-4
    )


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 2),
    cg=st.integers(1, 3),
    groups=st.integers(1, 3),
    cog=st.integers(1, 2),
    h=st.integers(3, 7),
    w=st.integers(3, 7),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 2),
    dw=st.integers(1, 2),
    pads=st.tuples(*[st.integers(0, 2)] * 4),
    fmt=st.sampled_from(["NCHW", "NHWC"]),
)
def test_conv2d_property(n, cg, groups, cog, h, w, kh, kw, sh, sw, dh, dw, pads, fmt):
    if h + pads[0] + pads[1] < dh * (kh - 1) + 1 or w + pads[2] + pads[3] < dw * (kw - 1) + 1:
        return
    x, f = rand(n, cg * groups, h, w), rand(cog * groups, cg, kh, kw)
    expected = ref_conv(x, f, None, (sh, sw), pads, (dh, dw), groups)
    attrs = conv_attrs(fmt, (sh, sw), pads, (dh, dw), groups)
    if fmt == "NCHW":
        (y,) = run("Conv2D", [x, f], attrs)
    else:
        (y,) = run("Conv2D", [to_nhwc(x), to_hwcn(f)], attrs)
        y = y.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=15, deadline=None)
@given(
    c=st.integers(1, 4),
    mult=st.integers(1, 2),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 2),
    pads=st.tuples(*[st.integers(0, 4)] * 4),
    fmt=st.sampled_from(["NCHW", "NHWC"]),
)
def test_depthwise_property(c, mult, h, w, kh, kw, sh, sw, dh, dw, pads, fmt):
    if h + pads[0] + pads[1] < dh * (kh - 1) + 1 or w + pads[2] + pads[3] < dw * (kw - 1) + 1:
        return
    groups = max(c, 2)  # groups > 1 with one input channel per group
    x, f = rand(2, groups, h, w), rand(groups * mult, 1, kh, kw)
    expected = ref_conv(x, f, None, (sh, sw), pads, (dh, dw), groups)
    attrs = conv_attrs(fmt, (sh, sw), pads, (dh, dw), groups)
    if fmt == "NCHW":
        (y,) = run("Conv2D", [x, f], attrs)
    else:
        (y,) = run("Conv2D", [to_nhwc(x), to_hwcn(f)], attrs)
        y = y.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_unknown_batch_infers():
    _, (d,) = infer(
        "Conv2D",
        [TensorDesc("float32", (-1, 3, 8, 8), NCHW), rand(4, 3, 3, 3)],
        conv_attrs("NCHW", (2, 2), (1, 1, 1, 1), (1, 1), 1),
    )
    assert d.shape == (-1, 4, 4, 4) and d.format == NCHW


def test_conv2d_errors():
    x, w = rand(1, 4, 6, 6), rand(2, 4, 3, 3)
    ok = conv_attrs("NCHW", (1, 1), (0, 0, 0, 0), (1, 1), 1)
    expect_error("Conv2D", [x, rand(2, 3, 3, 3)], ok, "4 input channels")
    expect_error("Conv2D", [x, rand(3, 2, 3, 3)], {**ok, "groups": 2}, "not divisible")
    expect_error("Conv2D", [x, rand(2, 2, 3, 3)], {**ok, "groups": 3}, "expects 6")
    expect_error("Conv2D", [x, w], {**ok, "groups": 0}, "groups")
    expect_error("Conv2D", [x, w], {**ok, "data_format": "NCDHW"}, "data_format")
    expect_error("Conv2D", [x, w], {**ok, "pads": [0, 0, 0]}, "pads")
    expect_error("Conv2D", [x, w], {**ok, "pads": [0, -1, 0, 0]}, "≥ 0")
    expect_error("Conv2D", [x, w], {**ok, "strides": [1, 2, 1, 1]}, "N and C")
    expect_error("Conv2D", [x, w], {**ok, "dilations": [1, 1, 0, 1]}, "dilations")
    expect_error("Conv2D", [rand(1, 4, 2, 6), w], ok, "larger than the padded input")
    expect_error(
        "Conv2D", [x, rand(2, 4, 2, 2)], {**ok, "dilations": [1, 1, 6, 1]}, "kernel extent"
    )
    expect_error("Conv2D", [x, w.astype(np.float16)], ok, "same dtype")
    expect_error("Conv2D", [x.astype(np.int32), w.astype(np.int32)], ok, "accepts")
    expect_error("Conv2D", [x, w, rand(3)], ok, "bias")
    expect_error("Conv2D", [rand(4, 6, 6), w], ok, "4-D")
    expect_error("Conv2D", [x, w], {**ok, "offset_x": 3}, "offset_x", code=UNSUPPORTED)
    expect_error(
        "Conv2D", [x, to_hwcn(w)], ok, "HWCN", formats={1: Format.FORMAT_HWCN}, code=UNSUPPORTED
    )
    expect_error("Conv2D", [x, w], {"pads": [0, 0, 0, 0]}, "strides")  # required attr


# ----- Conv2DTranspose -----------------------------------------------------------------------

CONVT_CASES = [
    # (x NCHW, filter (Cx, Cy/g, kh, kw), strides, pads, dilations, groups, output_padding)
    ((2, 3, 4, 5), (3, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, (0, 0)),
    ((1, 4, 3, 4), (4, 3, 3, 2), (2, 3), (0, 1, 1, 0), (1, 2), 2, (1, 2)),
    ((2, 2, 5, 3), (2, 1, 2, 3), (2, 1), (1, 0, 0, 0), (2, 1), 2, (0, 0)),
]


def _convt_out(size, k, s, d, p0, p1, op):
    return s * (size - 1) + op + d * (k - 1) + 1 - p0 - p1


@pytest.mark.parametrize("case", CONVT_CASES)
@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_conv2d_transpose_matches_reference(case, fmt):
    xs, ws, strides, pads, dil, groups, op = case
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * groups)
    yh = _convt_out(xs[2], ws[2], strides[0], dil[0], pads[0], pads[1], op[0])
    yw = _convt_out(xs[3], ws[3], strides[1], dil[1], pads[2], pads[3], op[1])
    cy = ws[1] * groups
    expected = ref_conv_transpose(x, w, b, strides, pads, dil, groups, (yh, yw))
    attrs = conv_attrs(fmt, strides, pads, dil, groups)
    if fmt == "NCHW":
        size = np.array([xs[0], cy, yh, yw], np.int32)
        attrs["output_padding"] = [0, 0, *op]
        (y,) = run("Conv2DTranspose", [size, x, w, b], attrs, consts=(0,))
    else:
        size = np.array([xs[0], yh, yw, cy], np.int64)
        attrs["output_padding"] = [0, *op, 0]
        (y,) = run("Conv2DTranspose", [size, to_nhwc(x), to_hwcn(w), b], attrs, consts=(0,))
        y = y.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_transpose_matches_onnxruntime():
    xs, ws, strides, pads, dil, groups, op = CONVT_CASES[1]
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * groups)
    (expected,) = ort_run(
        "ConvTranspose",
        [x, w, b],
        {
            "strides": list(strides),
            "dilations": list(dil),
            "group": groups,
            "pads": [pads[0], pads[2], pads[1], pads[3]],
            "output_padding": list(op),
        },
    )
    size = np.array(expected.shape, np.int32)
    attrs = conv_attrs("NCHW", strides, pads, dil, groups)
    attrs["output_padding"] = [0, 0, *op]
    (y,) = run("Conv2DTranspose", [size, x, w, b], attrs, consts=(0,))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_transpose_float16():
    x, w = rand(1, 2, 3, 3, dtype=np.float16), rand(2, 2, 3, 3, dtype=np.float16)
    size = np.array([1, 2, 7, 7], np.int32)
    (y,) = run(
        "Conv2DTranspose",
        [size, x, w],
        conv_attrs("NCHW", (2, 2), (0, 0, 0, 0), (1, 1), 1),
        consts=(0,),
    )
    assert y.dtype == np.float16
    expected = ref_conv_transpose(x, w, None, (2, 2), (0, 0, 0, 0), (1, 1), 1, (7, 7))
    np.testing.assert_allclose(y, expected, rtol=2e-2, atol=2e-2)


def test_conv2d_transpose_errors():
    x, w = rand(1, 2, 3, 3), rand(2, 2, 3, 3)
    ok = conv_attrs("NCHW", (2, 2), (0, 0, 0, 0), (1, 1), 1)
    size = np.array([1, 2, 7, 7], np.int32)
    expect_error("Conv2DTranspose", [size, x, w], ok, "must be a constant")
    expect_error(
        "Conv2DTranspose",
        [np.array([1, 2, 9, 7], np.int32), x, w],
        ok,
        "does not match",
        consts=(0,),
    )
    expect_error(
        "Conv2DTranspose",
        [np.array([1, 3, 7, 7], np.int32), x, w],
        ok,
        "output channels",
        consts=(0,),
    )
    expect_error(
        "Conv2DTranspose", [np.array([1, 2, 7], np.int32), x, w], ok, "input_size", consts=(0,)
    )
    expect_error(
        "Conv2DTranspose",
        [size, x, w],
        {**ok, "output_padding": [0, 0, 2, 0]},
        "output_padding",
        consts=(0,),
    )
    expect_error("Conv2DTranspose", [size, x, rand(3, 2, 3, 3)], ok, "expects 3", consts=(0,))


# ----- pooling --------------------------------------------------------------------------------

POOL_CASES = [
    # (x shape NCHW, ksize, strides, pads, ceil_mode)
    ((2, 3, 7, 8), (3, 3), (2, 2), (1, 1, 1, 1), False),
    ((1, 2, 7, 8), (3, 2), (2, 3), (0, 2, 1, 0), True),
    ((1, 2, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0), True),
    ((2, 1, 5, 9), (2, 4), (3, 2), (1, 0, 0, 3), True),
    ((1, 3, 4, 4), (4, 4), (1, 1), (0, 0, 0, 0), False),
]


def pool_attrs(fmt, k, s, pads, ceil_mode, mode="CALCULATED", **extra):
    def four(v):
        return [1, 1, *v] if fmt == "NCHW" else [1, *v, 1]

    return {
        "ksize": four(k),
        "strides": four(s),
        "pads": list(pads),
        "data_format": fmt,
        "padding_mode": mode,
        "ceil_mode": ceil_mode,
        **extra,
    }


def _run_pool(op, x, attrs, fmt):
    if fmt == "NCHW":
        (y,) = run(op, [x], attrs)
        return y
    (y,) = run(op, [to_nhwc(x)], attrs)
    return y.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_max_pool_matches_reference(case, fmt):
    xs, k, s, pads, ceil_mode = case
    x = rand(*xs) - 3.0  # all negative: a zero from padding would win if padding counted
    y = _run_pool("MaxPoolV3", x, pool_attrs(fmt, k, s, pads, ceil_mode), fmt)
    np.testing.assert_array_equal(y, ref_pool(x, "max", k, s, pads, ceil_mode))


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
@pytest.mark.parametrize("exclusive", [True, False])
def test_avg_pool_matches_reference(case, fmt, exclusive):
    xs, k, s, pads, ceil_mode = case
    x = rand(*xs)
    y = _run_pool("AvgPoolV2", x, pool_attrs(fmt, k, s, pads, ceil_mode, exclusive=exclusive), fmt)
    np.testing.assert_allclose(
        y, ref_pool(x, "avg", k, s, pads, ceil_mode, exclusive), rtol=1e-5, atol=1e-6
    )


@settings(max_examples=20, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 3)] * 4),
    ceil_mode=st.booleans(),
    exclusive=st.booleans(),
    fmt=st.sampled_from(["NCHW", "NHWC"]),
)
def test_pool_property(h, w, kh, kw, sh, sw, pads, ceil_mode, exclusive, fmt):
    pads = (min(pads[0], kh - 1), min(pads[1], kh - 1), min(pads[2], kw - 1), min(pads[3], kw - 1))
    if h + pads[0] + pads[1] < kh or w + pads[2] + pads[3] < kw:
        return
    x = rand(2, 3, h, w)
    attrs = pool_attrs(fmt, (kh, kw), (sh, sw), pads, ceil_mode, exclusive=exclusive)
    np.testing.assert_array_equal(
        _run_pool("MaxPoolV3", x, pool_attrs(fmt, (kh, kw), (sh, sw), pads, ceil_mode), fmt),
        ref_pool(x, "max", (kh, kw), (sh, sw), pads, ceil_mode),
    )
    np.testing.assert_allclose(
        _run_pool("AvgPoolV2", x, attrs, fmt),
        ref_pool(x, "avg", (kh, kw), (sh, sw), pads, ceil_mode, exclusive),
        rtol=1e-5,
        atol=1e-6,
    )


def test_avg_pool_divisor_override():
    x = rand(1, 2, 5, 5)
    (y,) = run(
        "AvgPoolV2",
        [x],
        pool_attrs("NCHW", (2, 2), (2, 2), (1, 0, 1, 0), False, divisor_override=3),
    )
    # float32 sums of up to 4 N(0, 1) values against float64: a window that nearly cancels
    # has a relative error far above 1e-5 (the module's RNG draws depend on the test order)
    np.testing.assert_allclose(
        y, ref_pool(x, "avg", (2, 2), (2, 2), (1, 0, 1, 0), divisor=3), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("case", [POOL_CASES[0], POOL_CASES[1], POOL_CASES[3]])
def test_pools_match_onnxruntime(case):
    xs, k, s, pads, ceil_mode = case
    x = rand(*xs)
    onnx_pads = [pads[0], pads[2], pads[1], pads[3]]
    common = {
        "kernel_shape": list(k),
        "strides": list(s),
        "pads": onnx_pads,
        "ceil_mode": int(ceil_mode),
    }
    (mx,) = ort_run("MaxPool", [x], common)
    (y,) = run("MaxPoolV3", [x], pool_attrs("NCHW", k, s, pads, ceil_mode))
    np.testing.assert_array_equal(y, mx)
    if not ceil_mode:  # runtimes disagree on the divisor of a ceil-mode overhang window
        for exclusive in (True, False):
            (av,) = ort_run("AveragePool", [x], {**common, "count_include_pad": int(not exclusive)})
            (y,) = run("AvgPoolV2", [x], pool_attrs("NCHW", k, s, pads, False, exclusive=exclusive))
            np.testing.assert_allclose(y, av, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_pool_same_and_valid_match_onnxruntime(fmt):
    x = rand(2, 3, 7, 6)
    for mode, auto in (("SAME", "SAME_UPPER"), ("VALID", "VALID")):
        attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": auto}
        (mx,) = ort_run("MaxPool", [x], attrs)
        (av,) = ort_run("AveragePool", [x], {**attrs, "count_include_pad": 0})
        pa = pool_attrs(fmt, (3, 2), (2, 2), (0, 0, 0, 0), False, mode=mode)
        np.testing.assert_array_equal(_run_pool("MaxPoolV3", x, pa, fmt), mx)
        np.testing.assert_allclose(_run_pool("AvgPoolV2", x, pa, fmt), av, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_global_pooling(fmt):
    x = rand(2, 3, 5, 4)
    attrs = pool_attrs(fmt, (1, 1), (1, 1), (0, 0, 0, 0), False, global_pooling=True)
    np.testing.assert_array_equal(
        _run_pool("MaxPoolV3", x, attrs, fmt), x.max(axis=(2, 3), keepdims=True)
    )
    np.testing.assert_allclose(  # atol: a near-zero mean summed in another order
        _run_pool("AvgPoolV2", x, attrs, fmt),
        x.mean(axis=(2, 3), keepdims=True),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.uint8, np.int8])
def test_max_pool_dtypes(dtype):
    x = (rand(1, 2, 6, 5) * 50).astype(dtype)
    (y,) = run("MaxPoolV3", [x], pool_attrs("NCHW", (3, 3), (2, 2), (1, 1, 1, 1), True))
    assert y.dtype == dtype
    np.testing.assert_array_equal(
        y, ref_pool(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), True).astype(dtype)
    )


def test_avg_pool_float16():
    x = rand(1, 2, 6, 6, dtype=np.float16)
    (y,) = run("AvgPoolV2", [x], pool_attrs("NCHW", (3, 3), (1, 1), (1, 1, 1, 1), False))
    assert y.dtype == np.float16
    np.testing.assert_allclose(
        y, ref_pool(x, "avg", (3, 3), (1, 1), (1, 1, 1, 1)), rtol=1e-2, atol=1e-2
    )


def test_pool_errors():
    x = rand(1, 2, 4, 4)
    ok = pool_attrs("NCHW", (2, 2), (1, 1), (0, 0, 0, 0), False)
    expect_error("MaxPoolV3", [x], {**ok, "pads": [0, 0, 0]}, "pads")
    expect_error("MaxPoolV3", [x], {**ok, "pads": [2, 0, 0, 0]}, "smaller than the kernel")
    expect_error("MaxPoolV3", [x], {**ok, "ksize": [1, 1, 5, 2]}, "larger than the padded")
    expect_error(
        "AvgPoolV2",
        [x],
        {**ok, "ksize": [1, 1, 5, 2], "padding_mode": "VALID"},
        "larger than the padded",
    )
    expect_error("MaxPoolV3", [x], {**ok, "ksize": [2, 1, 2, 2]}, "N and C")
    expect_error("MaxPoolV3", [x], {**ok, "padding_mode": "SAME", "ceil_mode": True}, "ceil_mode")
    expect_error("MaxPoolV3", [x], {**ok, "padding_mode": "FULL"}, "padding_mode")
    expect_error("MaxPoolV3", [x], {**ok, "data_format": "HWCN"}, "data_format")
    expect_error("AvgPoolV2", [x.astype(np.int32)], ok, "accepts")
    expect_error("MaxPoolV3", [x.astype(bool)], ok, "accepts")
    expect_error("MaxPoolV3", [rand(2, 4, 4)], ok, "4-D")
    expect_error("AvgPoolV2", [x], {**ok, "divisor_override": -1}, "divisor_override")


# ----- normalization ----------------------------------------------------------------------------


def test_bn_inference_with_scale_offset():
    x, mean, var = rand(2, 3, 4, 5), rand(3), np.abs(rand(3)) + 0.1
    scale, offset, momentum = rand(3), rand(3), np.array([0.9], np.float32)
    (y,) = run(
        "BNInference", [x, mean, var, momentum, scale, offset], {"epsilon": 1e-3}, formats={0: NCHW}
    )
    c = (slice(None), None, None)
    expected = scale[c] * (x - mean[c]) / np.sqrt(var[c] + 1e-3) + offset[c]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_bn_inference_caffe_form():
    x, mean, var = rand(2, 3, 4), rand(3), np.abs(rand(3)) + 0.1
    for m in (0.5, 0.0):
        (y,) = run("BNInference", [x, mean, var, np.array([m], np.float32)], {})
        f = 0.0 if m == 0 else 1.0 / m
        expected = (x - f * mean[:, None]) / np.sqrt(f * var[:, None] + 1e-5)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_bn_inference_float16_and_errors():
    x = rand(1, 2, 3, 3, dtype=np.float16)
    mean, var, m = rand(2, dtype=np.float16), np.ones(2, np.float16), np.ones(1, np.float16)
    (y,) = run("BNInference", [x, mean, var, m, np.ones(2, np.float16)], {})
    assert y.dtype == np.float16
    expected = (x.astype(np.float64) - mean[:, None, None]) / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-2, atol=1e-2)
    expect_error(
        "BNInference",
        [rand(1, 3, 3, 2), rand(2), rand(2), rand(1)],
        {},
        "NHWC",
        formats={0: NHWC},
        code=UNSUPPORTED,
    )
    expect_error("BNInference", [rand(1, 2, 3), rand(3), rand(2), rand(1)], {}, "mean")
    expect_error("BNInference", [rand(1, 2, 3), rand(2), rand(2), rand(0)], {}, "momentum")
    expect_error(
        "BNInference", [rand(2).astype(np.int32), rand(2), rand(2), rand(1)], {}, "accepts"
    )


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_batch_norm_inference(fmt):
    x = rand(2, 3, 4, 5) if fmt == "NCHW" else rand(2, 4, 5, 3)
    scale, offset, mean, var = rand(3), rand(3), rand(3), np.abs(rand(3)) + 0.5
    outs = run(
        "BatchNorm",
        [x, scale, offset, mean, var],
        {"is_training": False, "data_format": fmt, "epsilon": 1e-3},
    )
    shape = (1, 3, 1, 1) if fmt == "NCHW" else (1, 1, 1, 3)
    expected = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-3)
    expected = expected * scale.reshape(shape) + offset.reshape(shape)
    np.testing.assert_allclose(outs[0], expected, rtol=1e-5, atol=1e-5)
    for o, v in zip(outs[1:5], (mean, var, mean, var), strict=True):
        np.testing.assert_array_equal(o, v)
    assert outs[5].shape == (1,)


def test_batch_norm_errors():
    args = [rand(1, 2, 2, 3), rand(3), rand(3), rand(3), rand(3)]
    expect_error("BatchNorm", args, {}, "is_training", code=UNSUPPORTED)
    expect_error("BatchNorm", [*args[:3]], {"is_training": False}, "required")
    expect_error("BatchNorm", args, {"is_training": False, "data_format": "NCHW"}, "scale")


@pytest.mark.parametrize("axes", [(-1, -1), (1, 1), (2, 1), (-2, -2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_layer_norm(axes, dtype):
    bna, bpa = axes
    x = rand(2, 3, 4, 5, dtype=dtype)
    pshape = x.shape[bpa % 4 :]
    gamma, beta = rand(*pshape, dtype=dtype), rand(*pshape, dtype=dtype)
    y, mean, var = run(
        "LayerNorm",
        [x, gamma, beta],
        {"begin_norm_axis": bna, "begin_params_axis": bpa, "epsilon": 1e-5},
    )
    xd = x.astype(np.float64)
    red = tuple(range(bna % 4, 4))
    mu, v = xd.mean(axis=red, keepdims=True), xd.var(axis=red, keepdims=True)
    expected = (xd - mu) / np.sqrt(v + 1e-5) * gamma + beta
    tol = 2e-2 if dtype == np.float16 else 1e-5
    assert y.dtype == mean.dtype == dtype and mean.shape == mu.shape
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, mu, rtol=tol, atol=tol)
    np.testing.assert_allclose(var, v, rtol=tol, atol=tol)


def test_layer_norm_matches_onnxruntime():
    x, gamma, beta = rand(3, 4, 8), rand(8), rand(8)
    (expected,) = ort_run(
        "LayerNormalization", [x, gamma, beta], {"axis": -1, "epsilon": 1e-5}, opset=17
    )
    y, _, _ = run(
        "LayerNorm",
        [x, gamma, beta],
        {"begin_norm_axis": -1, "begin_params_axis": -1, "epsilon": 1e-5},
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_errors():
    x = rand(2, 3, 4)
    expect_error(
        "LayerNorm",
        [x, rand(3), rand(3)],
        {"begin_norm_axis": -1, "begin_params_axis": -1},
        "gamma",
    )
    expect_error("LayerNorm", [x, rand(4), rand(4)], {"begin_norm_axis": 3}, "out of range")
    expect_error(
        "LayerNorm", [x, rand(4), rand(4, dtype=np.float16)], {"begin_norm_axis": -1}, "same dtype"
    )


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC", "NCDHW"])
def test_instance_norm(fmt):
    x = {"NCHW": rand(2, 3, 4, 5), "NHWC": rand(2, 4, 5, 3), "NCDHW": rand(2, 3, 2, 3, 4)}[fmt]
    ca = 1 if fmt.startswith("NC") else x.ndim - 1
    gamma = rand(3) if fmt != "NCDHW" else rand(1, 3, 1, 1, 1)
    beta = rand(3) if fmt != "NCDHW" else rand(1, 3, 1, 1, 1)
    y, mean, var = run("InstanceNorm", [x, gamma, beta], {"data_format": fmt, "epsilon": 1e-5})
    expected = np.empty_like(x)
    xm, em = np.moveaxis(x, ca, 1), np.moveaxis(expected, ca, 1)
    g, b = gamma.reshape(-1), beta.reshape(-1)
    for n in range(x.shape[0]):
        for c in range(3):
            v = xm[n, c].astype(np.float64)
            em[n, c] = (v - v.mean()) / np.sqrt(v.var() + 1e-5) * g[c] + b[c]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert mean.shape == tuple(d if a in (0, ca) else 1 for a, d in enumerate(x.shape))
    np.testing.assert_allclose(
        np.moveaxis(mean, ca, 1).reshape(2, 3), xm.reshape(2, 3, -1).mean(-1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.moveaxis(var, ca, 1).reshape(2, 3), xm.reshape(2, 3, -1).var(-1), rtol=1e-5, atol=1e-6
    )


def test_instance_norm_matches_onnxruntime():
    x, gamma, beta = rand(2, 3, 4, 5), rand(3), rand(3)
    (expected,) = ort_run("InstanceNormalization", [x, gamma, beta], {"epsilon": 1e-5})
    y, _, _ = run("InstanceNorm", [x, gamma, beta], {"data_format": "NCHW", "epsilon": 1e-5})
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    expect_error("InstanceNorm", [x, rand(4), rand(3)], {"data_format": "NCHW"}, "gamma")
    expect_error("InstanceNorm", [rand(2, 3), rand(3), rand(3)], {}, "3-D")


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC"])
def test_group_norm(fmt):
    x = rand(2, 6, 3, 4) if fmt == "NCHW" else rand(2, 3, 4, 6)
    gamma, beta = rand(6), rand(6)
    y, mean, var = run(
        "GroupNorm", [x, gamma, beta], {"num_groups": 3, "data_format": fmt, "eps": 1e-5}
    )
    xc = x if fmt == "NCHW" else x.transpose(0, 3, 1, 2)
    expected = np.empty(xc.shape)
    mu = np.empty((2, 3))
    for n in range(2):
        for g in range(3):
            v = xc[n, 2 * g : 2 * g + 2].astype(np.float64)
            mu[n, g] = v.mean()
            z = (v - v.mean()) / np.sqrt(v.var() + 1e-5)
            expected[n, 2 * g : 2 * g + 2] = (
                z * gamma[2 * g : 2 * g + 2, None, None] + beta[2 * g : 2 * g + 2, None, None]
            )
    if fmt == "NHWC":
        expected = expected.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, mu, rtol=1e-5, atol=1e-6)
    assert var.shape == (2, 3)
    expect_error("GroupNorm", [x, gamma, beta], {"num_groups": 4, "data_format": fmt}, "num_groups")
    expect_error("GroupNorm", [x, rand(5), beta], {"num_groups": 3, "data_format": fmt}, "gamma")


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.25, 1.0, 0.6, 2.0])
def test_lrn(beta):
    x = rand(2, 7, 3, 3)
    r, bias, alpha = 2, 1.5, 0.3
    (y,) = run("LRN", [x], {"depth_radius": r, "bias": bias, "alpha": alpha, "beta": beta})
    expected = np.empty_like(x, dtype=np.float64)
    for c in range(7):
        s = np.sum(x[:, max(c - r, 0) : c + r + 1].astype(np.float64) ** 2, axis=1)
        expected[:, c] = x[:, c] / (bias + alpha * s) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # ONNX LRN with an odd size is the same op with alpha scaled by 1/size
    (ref,) = ort_run("LRN", [x], {"size": 5, "alpha": 0.3 * 5, "beta": beta, "bias": 1.5})
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    expect_error("LRN", [x], {"norm_region": "WITHIN_CHANNEL"}, "WITHIN_CHANNEL", code=UNSUPPORTED)
    expect_error("LRN", [x], {"depth_radius": -1}, "depth_radius")
    expect_error("LRN", [rand(2, 3, 4)], {}, "4-D")


# ----- softmax ------------------------------------------------------------------------------


@pytest.mark.parametrize("axes", [[-1], [0], [1, 2], [-3, -1]])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_softmax_and_log_softmax(axes, dtype):
    x = (rand(3, 4, 5) * 4).astype(dtype)
    xd = x.astype(np.float64)
    ax = tuple(axes)
    e = np.exp(xd - xd.max(axis=ax, keepdims=True))
    expected = e / e.sum(axis=ax, keepdims=True)
    tol = 1e-2 if dtype == np.float16 else 1e-6
    (y,) = run("SoftmaxV2", [x], {"axes": axes})
    (ly,) = run("LogSoftmaxV2", [x], {"axes": axes})
    assert y.dtype == ly.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(ly, np.log(expected), rtol=tol, atol=tol * 5)


def test_softmax_default_half_to_float_and_onnx():
    x = rand(2, 3, 6)
    (ref,) = ort_run("Softmax", [x], {"axis": -1}, opset=13)
    (y,) = run("SoftmaxV2", [x], {})
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)
    (lref,) = ort_run("LogSoftmax", [x], {"axis": 1}, opset=13)
    (ly,) = run("LogSoftmaxV2", [x], {"axes": [1]})
    np.testing.assert_allclose(ly, lref, rtol=1e-5, atol=1e-6)
    (yf,) = run("SoftmaxV2", [x.astype(np.float16)], {"half_to_float": True})
    assert yf.dtype == np.float32
    np.testing.assert_allclose(yf, ref, atol=2e-3)
    # large logits stay finite
    (big,) = run("SoftmaxV2", [np.array([[1000.0, 1000.0]], np.float32)], {})
    np.testing.assert_allclose(big, [[0.5, 0.5]])


def test_softmax_errors():
    expect_error("SoftmaxV2", [rand(2, 3)], {"axes": [2]}, "out of range")
    expect_error("SoftmaxV2", [rand(2, 3)], {"axes": [1, -1]}, "repeats")
    expect_error("LogSoftmaxV2", [np.ones((2, 3), np.int32)], {}, "accepts")
    expect_error("SoftmaxV2", [rand(2, 3)], {"axes": []}, "at least one")


# ----- matmul -------------------------------------------------------------------------------


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32])
def test_matmul_v2(ta, tb, dtype):
    a = (rand(4, 3) * 5).astype(dtype)
    b = (rand(3, 5) * 5).astype(dtype)
    bias = (rand(5) * 5).astype(dtype)
    a_in = a.T.copy() if ta else a
    b_in = b.T.copy() if tb else b
    (y,) = run("MatMulV2", [a_in, b_in, bias], {"transpose_x1": ta, "transpose_x2": tb})
    expected = np.einsum("mk,kn->mn", a.astype(np.float64), b.astype(np.float64)) + bias
    assert y.dtype == dtype
    tol = 5e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_matmul_v2_no_bias_and_errors():
    a, b = rand(2, 3), rand(3, 4)
    (y,) = run("MatMulV2", [a, b], {})
    np.testing.assert_allclose(y, np.einsum("mk,kn->mn", a, b), rtol=1e-5)
    expect_error("MatMulV2", [a, rand(4, 3)], {}, "inner dims")
    expect_error("MatMulV2", [a, b], {"transpose_x1": True}, "inner dims")
    expect_error("MatMulV2", [rand(2, 2, 3), b], {}, "2-D")
    expect_error("MatMulV2", [a, b, rand(3)], {}, "bias")
    expect_error("MatMulV2", [a, b.astype(np.float16)], {}, "same dtype")
    expect_error("MatMulV2", [a.astype(bool), b.astype(bool)], {}, "accepts")


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((2, 3, 4), (2, 4, 5)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((3, 4), (6, 4, 2)),
        ((1, 2, 3, 4), (3, 1, 4, 2)),
    ],
)
@pytest.mark.parametrize("adj", [(False, False), (True, True)])
def test_batch_matmul_v2_broadcasting(sa, sb, adj):
    a, b = rand(*sa), rand(*sb)
    a_in = np.swapaxes(a, -1, -2).copy() if adj[0] else a
    b_in = np.swapaxes(b, -1, -2).copy() if adj[1] else b
    bias = rand(sb[-1])
    (y,) = run("BatchMatMulV2", [a_in, b_in, bias], {"adj_x1": adj[0], "adj_x2": adj[1]})
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    ab = np.broadcast_to(a, (*batch, *sa[-2:]))
    bb = np.broadcast_to(b, (*batch, *sb[-2:]))
    expected = np.einsum("...mk,...kn->...mn", ab.astype(np.float64), bb) + bias
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_batch_matmul_v2_float16_and_errors():
    a, b = rand(2, 3, 4, dtype=np.float16), rand(2, 4, 2, dtype=np.float16)
    (y,) = run("BatchMatMulV2", [a, b], {})
    assert y.dtype == np.float16
    np.testing.assert_allclose(
        y, np.einsum("bmk,bkn->bmn", a.astype(np.float64), b), rtol=1e-2, atol=1e-2
    )
    expect_error("BatchMatMulV2", [rand(2, 3, 4), rand(3, 4, 2)], {}, "broadcast")
    expect_error("BatchMatMulV2", [rand(4), rand(4, 2)], {}, "2-D")
    expect_error("BatchMatMulV2", [rand(2, 3, 4), rand(2, 5, 2)], {}, "inner dims")
    expect_error("BatchMatMulV2", [rand(2, 3, 4), rand(2, 4, 2), rand(4, 2)], {}, "bias")


# ----- PadV3 --------------------------------------------------------------------------------


def ref_pad(x, pairs, mode, value=0):
    """Pad by mapping every output index to a source index (crop first for negative pads)."""
    crop = tuple(
        slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(x.shape, pairs, strict=True)
    )
    x = x[crop]
    maps, masks = [], []
    for d, (b, e) in zip(x.shape, pairs, strict=True):
        b, e = max(b, 0), max(e, 0)
        j = np.arange(d + b + e) - b
        if mode == "constant":
            src, ok = np.clip(j, 0, max(d - 1, 0)), (j >= 0) & (j < d)
        elif mode == "edge":
            src, ok = np.clip(j, 0, d - 1), np.ones_like(j, bool)
        elif mode == "reflect":
            m = np.mod(j, 2 * d - 2) if d > 1 else np.zeros_like(j)
            src, ok = np.where(m < d, m, 2 * d - 2 - m), np.ones_like(j, bool)
        elif mode == "symmetric":
            m = np.mod(j, 2 * d)
            src, ok = np.where(m < d, m, 2 * d - 1 - m), np.ones_like(j, bool)
        else:  # circular
            src, ok = np.mod(j, d), np.ones_like(j, bool)
        maps.append(src)
        masks.append(ok)
    out = x[np.ix_(*maps)] if x.size else np.zeros([len(m) for m in maps], x.dtype)
    mask = np.ones(out.shape, bool)
    for axis, ok in enumerate(masks):
        shape = [1] * out.ndim
        shape[axis] = -1
        mask &= ok.reshape(shape)
    return np.where(mask, out, np.asarray(value, x.dtype))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "symmetric", "circular"])
@pytest.mark.parametrize("contiguous", [True, False])
def test_pad_v3_modes(mode, contiguous):
    x = rand(3, 4, 5)
    pairs = [(1, 2), (0, 3), (2, -1)]
    flat = (
        [v for p in pairs for v in p]
        if contiguous
        else [p[0] for p in pairs] + [p[1] for p in pairs]
    )
    paddings = np.array(flat, np.int64)
    inputs = [x, paddings, np.array([2.5], np.float32) if mode == "constant" else None]
    (y,) = run("PadV3", inputs, {"mode": mode, "paddings_contiguous": contiguous}, consts=(1,))
    np.testing.assert_array_equal(y, ref_pad(x, pairs, mode, 2.5))


@pytest.mark.parametrize(
    ("mode", "onnx_mode"),
    [("constant", "constant"), ("reflect", "reflect"), ("edge", "edge"), ("circular", "wrap")],
)
def test_pad_v3_matches_onnxruntime(mode, onnx_mode):
    x = rand(2, 3, 4)
    pairs = [(0, 1), (2, 1), (3, 2)]
    onnx_pads = np.array([p[0] for p in pairs] + [p[1] for p in pairs], np.int64)
    (expected,) = ort_run("Pad", [x, onnx_pads], {"mode": onnx_mode})
    (y,) = run("PadV3", [x, onnx_pads], {"mode": mode, "paddings_contiguous": False}, consts=(1,))
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float16, np.uint8])
def test_pad_v3_dtypes(dtype):
    x = (rand(2, 3) * 3).astype(dtype)
    (y,) = run("PadV3", [x, np.array([1, 0, 2, 1], np.int32)], {}, consts=(1,))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref_pad(x, [(1, 0), (2, 1)], "constant"))


def test_pad_v3_errors():
    x = rand(2, 3)
    p = np.array([1, 1, 1, 1], np.int32)
    expect_error("PadV3", [x, p], {}, "must be a constant")
    expect_error("PadV3", [x, np.array([1, 1, 1], np.int32)], {}, "needs 4", consts=(1,))
    expect_error(
        "PadV3",
        [x, np.array([0, 0, 3, 0], np.int32)],
        {"mode": "reflect"},
        "at most 2",
        consts=(1,),
    )
    expect_error(
        "PadV3",
        [x, np.array([0, 0, 4, 0], np.int32)],
        {"mode": "circular"},
        "at most 3",
        consts=(1,),
    )
    expect_error("PadV3", [x, np.array([-3, 0, 0, 0], np.int32)], {}, "crop", consts=(1,))
    expect_error("PadV3", [x, p], {"mode": "mirror"}, "mode", consts=(1,))
    expect_error("PadV3", [x, p.astype(np.float32)], {}, "accepts", consts=(1,))
    expect_error("PadV3", [x, p, rand(2)], {}, "one value", consts=(1,))


def test_every_schema_has_doc_and_onnx():
    from openge.ops.nn import SCHEMAS

    names = {s.op_type for s in SCHEMAS}
    assert {
        "Conv2D",
        "Conv2DTranspose",
        "MaxPoolV3",
        "AvgPoolV2",
        "BNInference",
        "BatchNorm",
        "LayerNorm",
        "SoftmaxV2",
        "LogSoftmaxV2",
        "MatMulV2",
        "BatchMatMulV2",
        "PadV3",
        "LRN",
        "InstanceNorm",
        "GroupNorm",
    } <= names
    for s in SCHEMAS:
        assert s.doc and s.onnx, s.op_type


def test_onnx_helper_is_usable():
    # guards the ORT harness above against an onnx without np_dtype_to_tensor_dtype
    assert helper.np_dtype_to_tensor_dtype(np.dtype(np.float32)) == TensorProto.FLOAT
    assert onnx.__version__
