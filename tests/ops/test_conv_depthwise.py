"""openge.ops.conv_depthwise: Conv2D's and FusedConv2D's prepare bind the compiled depthwise
kernel with the epilogue's activation fused in; each prepared closure is compared with the
Conv2D NumPy kernel followed by the activation written here in NumPy, run after run as the
input changes."""

from __future__ import annotations

import numpy as np
import pytest

from openge.graph import DataType
from openge.ops import conv_depthwise, get_schema
from openge.ops.fused import encode_program

RNG = np.random.default_rng(21)
F32 = DataType.DT_FLOAT


def _step(op, args, shape, attrs=None):
    return {"op": op, "attrs": attrs or {}, "args": args, "dtype": F32, "shape": shape}


def _attrs(c, s=1, pad=1):
    return {
        "strides": [1, 1, s, s],
        "pads": [pad, pad, pad, pad],
        "dilations": [1, 1, 1, 1],
        "groups": c,
        "data_format": "NCHW",
    }


def _numpy_conv(x, w, b, attrs, shape):
    y = np.empty(shape, x.dtype)
    get_schema("Conv2D").kernel([x, w, b], [y], **attrs)
    return y


def _uses_compiled(run, kernel: str = "depthwise_") -> bool:
    """Whether the closure ``run`` binds a compiled depthwise kernel — ``depthwise_act``
    (rows) or ``depthwise_cl_act`` (channels-last) — itself, or through the launcher it calls
    after rearranging an input filter (``rearrange_and_run``)."""
    cells = [c.cell_contents for c in run.__closure__ or ()]
    if any(kernel in repr(v) and "_act" in repr(v) for v in cells):
        return True
    if run.__name__ == "rearrange_and_run":
        return any(
            getattr(v, "__name__", "") in ("run", "run_team") and _uses_compiled(v, kernel)
            for v in cells
        )
    return False


LO, HI = np.array(0.0, np.float32), np.array(6.0, np.float32)
EPILOGUES = {
    "none": ([], [], lambda v: v),
    "relu": ([("Relu", [0], {})], [], lambda v: np.maximum(v, 0)),
    "relu6": ([("Relu6", [0], {})], [], lambda v: np.clip(v, 0, 6)),
    "clip": ([("ClipByValue", [0, 1, 2], {})], [LO, HI], lambda v: np.clip(v, 0, 6)),
    "max_min": (
        [("Maximum", [0, 1], {}), ("Minimum", [-1, 2], {})],
        [LO, HI],
        lambda v: np.minimum(np.maximum(v, 0), 6),
    ),
    "hard_swish": ([("HardSwish", [0], {})], [], lambda v: v * np.clip(v + 3, 0, 6) / 6),
    "silu": (
        [("Sigmoid", [0], {}), ("Mul", [0, -1], {})],
        [],
        lambda v: v / (1 + np.exp(-v.astype(np.float64))),
    ),
    "hard_sigmoid": (
        [("HardSigmoid", [0], {"alpha": 0.2, "beta": 0.5})],
        [],
        lambda v: np.clip(0.2 * v + 0.5, 0, 1),
    ),
    # ONNX's HardSwish as the parser writes it: x·HardSigmoid(x, 1/6, 1/2)
    "onnx_hard_swish": (
        [("HardSigmoid", [0], {"alpha": 1 / 6, "beta": 0.5}), ("Mul", [0, -1], {})],
        [],
        lambda v: v * np.clip(v / 6 + 0.5, 0, 1),
    ),
    "sigmoid": ([("Sigmoid", [0], {})], [], lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))),
}


@pytest.mark.parametrize("name", sorted(EPILOGUES))
@pytest.mark.parametrize(("side", "k", "s"), [(20, 3, 1), (33, 5, 2), (28, 3, 2)])
def test_fused_conv2d_runs_the_activation_in_the_kernel(name, side, k, s):
    steps, extra, numpy_act = EPILOGUES[name]
    c = 5
    x = np.zeros((1, c, side, side), np.float32)
    w = RNG.standard_normal((c, 1, k, k)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    attrs = _attrs(c, s, k // 2)
    o = (side + 2 * (k // 2) - k) // s + 1
    shape = (1, c, o, o)
    y = np.empty(shape, np.float32)
    prog = encode_program([_step(op, a, shape, at) for op, a, at in steps])
    run = get_schema("FusedConv2D").prepare(
        [x, w, b, *extra], [y], [False, True, True, *[True] * len(extra)], **attrs, epilogue=prog
    )
    assert run is not None and _uses_compiled(run)
    for _ in range(2):
        x[...] = 3 * RNG.standard_normal(x.shape)
        run()
        expected = numpy_act(_numpy_conv(x, w, b, attrs, shape))
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_other_epilogues_keep_their_path_and_values():
    """A residual Add is no activation: the convolution is not the fused kernel, and the
    result is still the convolution plus the residual."""
    c, side = 4, 16
    x = RNG.standard_normal((1, c, side, side)).astype(np.float32)
    w = RNG.standard_normal((c, 1, 3, 3)).astype(np.float32)
    r = RNG.standard_normal((1, c, side, side)).astype(np.float32)
    y = np.empty_like(r)
    attrs = _attrs(c)
    prog = encode_program([_step("Add", [0, 1], r.shape)])
    run = get_schema("FusedConv2D").prepare(
        [x, w, None, r], [y], [False, True, False, False], **attrs, epilogue=prog
    )
    assert run is not None and not _uses_compiled(run)
    run()
    np.testing.assert_allclose(y, _numpy_conv(x, w, None, attrs, r.shape) + r, 1e-5, 1e-5)


@pytest.mark.parametrize("constant_filter", [True, False])
def test_conv2d_prepare_picks_the_kernel_by_stride_and_width(constant_filter):
    """Stride 1 with output planes the input's size: the flat kernel at any channel
    multiplier, except float32 planes at multiplier 1 up to CL_SAME_MAX_WIDTH (and 5×5
    filters up to CL_MAX_WIDTH), which take the channels-last kernel. Otherwise the
    channels-last kernel up to CL_MAX_WIDTH (multiplier 1), up to CL_WIDE_MAX_WIDTH for 3×3
    filters when whole 64-channel blocks add at most half again — but not 3×3 at column
    stride 2 with 16 output columns inside the row, the rows kernel's 16-lane path — else the
    rows kernel from MIN_WIDTH; a multiplier of 2 below MIN_WIDTH: none. A filter that is an
    input is rearranged before each run."""
    cd = conv_depthwise
    f32, f64 = np.float32, np.float64
    cases = (  # output width, stride, multiplier, filter size, channels, dtype, kernel
        (20, 1, 1, 3, 6, f32, "depthwise_flat_act"),
        (7, 1, 2, 3, 6, f32, "depthwise_flat_act"),
        (cd.CL_SAME_MAX_WIDTH, 1, 1, 3, 6, f32, "depthwise_cl_act"),
        (cd.CL_SAME_MAX_WIDTH, 1, 1, 3, 6, f64, "depthwise_flat_act"),
        (cd.CL_SAME_MAX_WIDTH + 1, 1, 1, 3, 6, f32, "depthwise_flat_act"),
        (cd.CL_MAX_WIDTH, 1, 1, 5, 6, f32, "depthwise_cl_act"),
        (cd.CL_MAX_WIDTH + 1, 1, 1, 5, 6, f32, "depthwise_flat_act"),
        (cd.CL_MAX_WIDTH + 1, 2, 1, 3, 6, f32, "depthwise_act"),
        (cd.CL_MAX_WIDTH, 2, 1, 3, 6, f32, "depthwise_cl_act"),
        (cd.CL_MAX_WIDTH, 2, 1, 3, 6, f64, "depthwise_cl_act"),
        (cd.CL_WIDE_MAX_WIDTH, 2, 1, 3, 96, f64, "depthwise_act"),
        # 3×3 at stride 2 with 16 columns or more inside the row: the rows kernel's lanes
        (cd.CL_WIDE_MAX_WIDTH, 2, 1, 3, 96, f32, "depthwise_act"),
        (17, 2, 1, 3, 96, f32, "depthwise_act"),  # 16 inside, the last column a border
        (16, 2, 1, 3, 96, f32, "depthwise_cl_act"),  # 15 inside
        (cd.CL_WIDE_MAX_WIDTH, 2, 1, 3, 80, f32, "depthwise_act"),  # 128 > 1.5 · 80
        (cd.CL_WIDE_MAX_WIDTH, 2, 1, 5, 96, f32, "depthwise_act"),  # 5×5 filters
        (cd.CL_WIDE_MAX_WIDTH + 1, 2, 1, 3, 96, f32, "depthwise_act"),
        (cd.MIN_WIDTH - 1, 2, 1, 3, 6, f32, "depthwise_cl_act"),
        (cd.MIN_WIDTH - 1, 2, 2, 3, 6, f32, None),
    )
    for out, s, mult, k, c, dtype, kernel in cases:
        side = s * (out - 1) + 1  # k×k, pads k // 2: ``out`` wide
        x = RNG.standard_normal((1, c, side, side)).astype(dtype)
        w = RNG.standard_normal((c * mult, 1, k, k)).astype(dtype)
        y = np.empty((1, c * mult, out, out), dtype)
        attrs = _attrs(c, s, k // 2)
        run = get_schema("Conv2D").prepare(
            [x, w, None], [y], [False, constant_filter, False], **attrs
        )
        if kernel is None:
            assert run is None or not _uses_compiled(run)
            continue
        assert run is not None and _uses_compiled(run, kernel), (out, s, mult, k, c, dtype)
        for _ in range(2):
            run()
            want = _numpy_conv(x, w, None, attrs, y.shape)
            np.testing.assert_allclose(y, want, 1e-5, 1e-5)
            w[...] = RNG.standard_normal(w.shape)  # seen by the next run (an input filter)
            if constant_filter and kernel == "depthwise_cl_act":
                break  # its filter was rearranged once, at prepare


def test_activation_recognizes_only_constant_scalar_bounds():
    y = np.zeros((1, 2, 3, 3), np.float32)
    steps = [("Maximum", [0, 1], {}), ("Minimum", [-1, 2], {})]
    assert conv_depthwise.activation(steps, [y, LO, HI], [False, True, True]) == (2, 0.0, 6.0)
    assert conv_depthwise.activation(steps, [y, LO, HI], [False, False, True]) is None
    vec = np.zeros(2, np.float32)
    assert conv_depthwise.activation(steps, [y, vec, HI], [False, True, True]) is None
    swapped = [("Minimum", [0, 2], {}), ("Maximum", [-1, 1], {})]
    assert conv_depthwise.activation(swapped, [y, LO, HI], [False, True, True]) is None


@pytest.mark.parametrize(("cin", "groups", "s"), [(3, 1, 2), (4, 2, 1), (6, 3, 2)])
def test_few_input_channels_per_group_run_on_the_same_kernel(cin, groups, s):
    """A first layer on RGB (full convolution, 3 input channels) and grouped convolutions with
    a few channels per group: compiled, with the activation, against the NumPy kernel."""
    cout = 12
    x = RNG.standard_normal((2, cin, 29, 30)).astype(np.float32)
    w = RNG.standard_normal((cout, cin // groups, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(cout).astype(np.float32)
    attrs = {**_attrs(groups, s), "groups": groups}
    shape = (2, cout, (29 - 1) // s + 1, (30 - 1) // s + 1)
    y = np.empty(shape, np.float32)
    prog = encode_program([_step("Relu", [0], shape)])
    run = get_schema("FusedConv2D").prepare(
        [x, w, b], [y], [False, True, True], **attrs, epilogue=prog
    )
    assert run is not None and _uses_compiled(run)
    run()
    expected = np.maximum(_numpy_conv(x, w, b, attrs, shape), 0)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_writable_and_read_only_constants_share_one_compiled_specialization():
    """A filter from an .om's pages is read-only, the same filter in a graph compiled in the
    process is writable: both reach the kernel read-only, so numba compiles (and caches) one
    specialization for both, not one per flag."""
    from openge import kernels

    module = kernels.load("depthwise")
    c, side = 6, 24
    attrs = _attrs(c, 1, 1)
    x = RNG.standard_normal((1, c, side, side)).astype(np.float32)
    w = RNG.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(c).astype(np.float32)
    frozen_w, frozen_b = w.copy(), b.copy()
    frozen_w.flags.writeable = frozen_b.flags.writeable = False
    counts = []
    for weights, bias in ((w, b), (frozen_w, frozen_b)):
        y = np.empty((1, c, side, side), np.float32)
        run = get_schema("Conv2D").prepare([x, weights, bias], [y], [False, True, True], **attrs)
        assert run is not None and _uses_compiled(run)
        run()
        np.testing.assert_allclose(y, _numpy_conv(x, w, b, attrs, y.shape), rtol=1e-5, atol=1e-5)
        kernels_used = (module.depthwise_act, module.depthwise_flat_act, module.depthwise_cl_act)
        counts.append([len(k.signatures) for k in kernels_used])
    assert counts[0] == counts[1]
    assert w.flags.writeable and b.flags.writeable  # the caller's arrays are left as they were
