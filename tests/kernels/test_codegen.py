"""openge.kernels.codegen: generated programs against NumPy formulas written here; the source
is built from the vocabulary only (unknown ops, bad arity, non-finite numbers are refused); the
ops-side binding (openge.ops.compiled) classifies broadcast operands and declines what its
loop does not cover."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.ops.compiled import program_closure

RNG = np.random.default_rng(3)
codegen = kernels.load("codegen")


def test_source_refuses_what_is_not_in_the_vocabulary():
    with pytest.raises(ValueError, match="no compiled form"):
        codegen.source([("__import__", [0], [])], ["full"], "float32")
    with pytest.raises(ValueError, match="takes 2"):
        codegen.source([("Add", [0], [])], ["full"], "float32")
    with pytest.raises(ValueError, match="finite"):
        codegen.source([("LeakyRelu", [0], [float("nan")])], ["full"], "float32")
    with pytest.raises(ValueError, match="later step"):
        codegen.source([("Relu", [-1], [])], ["full"], "float32")
    with pytest.raises(ValueError, match="dtype"):
        codegen.source([("Relu", [0], [])], ["full"], "int32")
    with pytest.raises(ValueError, match="kind"):
        codegen.source([("Relu", [0], [])], ["strided"], "float32")


def test_bias_relu_residual_over_nchw_in_one_pass():
    """y = relu(conv + bias[c] + residual): a row operand (per channel) and a full one."""
    y = RNG.standard_normal((2, 8, 96, 100)).astype(np.float32)
    bias = RNG.standard_normal((8, 1, 1)).astype(np.float32)
    res = RNG.standard_normal(y.shape).astype(np.float32)
    expected = np.maximum(y + bias + res, 0)
    run = program_closure(
        [("Add", [0, 1], {}), ("Add", [-1, 2], {}), ("Relu", [-2], {})],
        [y, bias, res],
        [False, True, False],
        y,  # in place, as a FusedConv2D epilogue
    )
    assert run is not None
    run()
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


def test_last_axis_bias_pow_and_clip():
    """A column operand (last-axis bias), Pow with a constant integer and half exponent,
    ClipByValue with scalar bounds, HardSwish."""
    x = RNG.uniform(0.1, 2.0, (3, 1024, 48)).astype(np.float32)
    bias = RNG.standard_normal(48).astype(np.float32)
    three, half = np.array(3.0, np.float32), np.array(0.5, np.float32)
    lo, hi = np.array(0.0, np.float32), np.array(6.0, np.float32)
    y = np.empty_like(x)
    steps = [
        ("Add", [0, 1], {}),
        ("Pow", [-1, 2], {}),
        ("Pow", [0, 3], {}),
        ("Sub", [-2, -3], {}),
        ("ClipByValue", [-4, 4, 5], {}),
        ("HardSwish", [-5], {}),
    ]
    run = program_closure(steps, [x, bias, three, half, lo, hi], [False, True] + [True] * 4, y)
    assert run is not None
    run()
    t = (x + bias).astype(np.float64)
    d = np.clip(t**3 - np.sqrt(x.astype(np.float64)), 0, 6)
    expected = d * np.clip(d + 3, 0, 6) / 6
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=1e-5)


def test_float64_and_leaky_relu_hard_sigmoid_params():
    x = RNG.standard_normal(1 << 17)
    y = np.empty_like(x)
    steps = [
        ("LeakyRelu", [0], {"negative_slope": 0.1}),
        ("HardSigmoid", [-1], {"alpha": 0.2, "beta": 0.5}),
    ]
    run = program_closure(steps, [x], [False], y)
    assert run is not None
    run()
    leaky = np.where(x >= 0, x, 0.1 * x)
    np.testing.assert_allclose(y, np.clip(0.2 * leaky + 0.5, 0, 1), rtol=1e-15)


def test_declines_what_its_loop_does_not_cover():
    x = RNG.standard_normal((4, 256, 128)).astype(np.float32)
    y = np.empty_like(x)
    # transcendental ops without a float32 form stay in NumPy's SIMD loops
    assert (
        program_closure([("Log", [0], {"base": -1.0, "scale": 1.0, "shift": 0.0})], [x], [False], y)
        is None
    )
    x64, y64 = x.astype(np.float64), np.empty(x.shape, np.float64)
    assert program_closure([("Tanh", [0], {})], [x64], [False], y64) is None
    # an operand broadcast along two separate axes
    odd = RNG.standard_normal((4, 1, 128)).astype(np.float32)
    assert program_closure([("Add", [0, 1], {})], [x, odd], [False, False], y) is None
    # small outputs, integer dtypes, non-default Exp attrs
    small = np.empty((2, 2), np.float32)
    assert program_closure([("Relu", [0], {})], [small], [False], small) is None
    xi = np.zeros((512, 512), np.int32)
    assert program_closure([("Relu", [0], {})], [xi], [False], xi) is None
    exp = ("Exp", [0], {"base": 2.0, "scale": 1.0, "shift": 0.0})
    assert program_closure([exp], [x], [False], y) is None
    # a full operand that partly overlaps the output
    buf = np.zeros(2 * x.size + 8, np.float32)
    a, out = buf[: x.size].reshape(x.shape), buf[8 : 8 + x.size].reshape(x.shape)
    assert program_closure([("Relu", [0], {})], [a], [False], out) is None


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("size", [1 << 17, 1 << 19])  # one thread: the serial twin
def test_serial_twin_and_parallel_loop_agree(threads, size, monkeypatch):
    monkeypatch.setattr(kernels, "_state", {**kernels._state})  # restored after the test
    kernels.set_num_threads(threads)
    x = RNG.standard_normal(size).astype(np.float32)
    bias = RNG.standard_normal((4, 1)).astype(np.float32)
    y = np.empty((4, size // 4), np.float32)
    xs = x.reshape(4, -1)
    run = program_closure([("Add", [0, 1], {}), ("Relu6", [-1], {})], [xs, bias], [False, True], y)
    assert run is not None
    run()
    np.testing.assert_allclose(y, np.clip(xs + bias, 0, 6), rtol=1e-6, atol=1e-6)


def _ulps(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in float32 ulps of the float64 reference."""
    return np.abs(got.astype(np.float64) - ref) / np.spacing(np.abs(ref).astype(np.float32))


def test_float32_erf_and_gelu_erf_within_one_ulp_of_float64():
    import math

    x = np.concatenate(
        [
            RNG.standard_normal(1 << 15) * 3,
            np.linspace(-6, 6, 1 << 14),
            np.linspace(-15.5, -3, 1 << 13),  # GELU's lower tail, down to subnormal outputs
            [0.0, -0.0, 1e-30, -1e-30, 1e-8, 3.99, 4.0, 4.01, -4.2, 9.0, -9.0, 14.9, -14.8],
        ]
    ).astype(np.float32)
    ref_erf = np.array([math.erf(float(v)) for v in x])
    ref_gelu = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    y = np.empty_like(x)
    run = program_closure([("Erf", [0], {})], [x], [False], y)
    assert run is not None
    run()
    assert _ulps(y, ref_erf).max() <= 1.0
    assert np.signbit(y[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()  # erf(-0) = -0
    g = np.empty_like(x)
    run = program_closure([("GeluErf", [0], {})], [x], [False], g)
    assert run is not None
    run()
    keep = ref_gelu != 0
    assert _ulps(g[keep], ref_gelu[keep]).max() <= 1.0
    # past the table, x·Φ(x) rounds to -0 (and -inf·0 is NaN, as in the NumPy kernels)
    assert np.array_equal(g[~keep], ref_gelu[~keep].astype(np.float32))
    tails = np.tile(np.array([-40.0, -1e30, -np.inf, np.inf, 40.0], np.float32), 1 << 12)
    out = np.empty_like(tails)
    program_closure([("GeluErf", [0], {})], [tails], [False], out)()
    assert np.signbit(out[0::5]).all() and (out[0::5] == 0).all()
    assert np.signbit(out[1::5]).all() and (out[1::5] == 0).all()
    assert np.isnan(out[2::5]).all() and (out[3::5] == np.inf).all() and (out[4::5] == 40).all()
    nan = np.array([np.nan] * (1 << 14), np.float32)
    out = np.empty_like(nan)
    run = program_closure([("Erf", [0], {})], [nan], [False], out)
    run()
    assert np.isnan(out).all()


def test_division_by_zero_gives_numpy_values_not_an_exception(monkeypatch):
    import openge.ops.compiled as compiled

    monkeypatch.setattr(compiled, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(compiled, "MIN_ELEMENTS_LOADED", 0)
    x = np.array([1.0, -1.0, 0.0, 2.0] * 64, np.float32)
    z = np.array([0.0, 0.0, 0.0, 4.0] * 64, np.float32)
    y = np.empty_like(x)
    run = program_closure([("Div", [0, 1], {}), ("Reciprocal", [1], {})], [x, z], [False] * 2, y)
    assert run is not None
    run()  # raised ZeroDivisionError under numba's default (Python) error model
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(y, np.reciprocal(z))
    run = program_closure([("Div", [0, 1], {})], [x, z], [False] * 2, y)
    run()
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(y, x / z)


def test_float32_sigmoid_and_silu_in_place_against_float64():
    """The float32 Sigmoid/Swish forms (no libm exp) against float64 NumPy, over the whole
    range with the edges (±inf, NaN, beyond exp's range), written into the input itself."""
    from openge.ops.compiled import program_closure

    def s32(v):
        return v.astype(np.float32).astype(np.float64)

    x = (np.random.default_rng(3).standard_normal(1 << 17) * 30).astype(np.float32)
    x[:9] = [np.nan, np.inf, -np.inf, 100, -100, 88.9, -88.9, 0, -0.0]
    for steps, f in (
        ([("Sigmoid", [0], {})], lambda v: 1 / (1 + np.exp(-v))),
        ([("Sigmoid", [0], {}), ("Mul", [0, -1], {})], lambda v: v / (1 + np.exp(-v))),
        # the scaled argument rounds to float32 first, as in NumPy's kernel
        ([("Swish", [0], {"scale": 1.5})], lambda v: v / (1 + np.exp(-s32(1.5 * v)))),
    ):
        y = x.copy()
        run = program_closure(steps, [y], [False], y)
        assert run is not None
        run()
        with np.errstate(all="ignore"):
            expected = f(x.astype(np.float64))
            if len(steps) == 2:
                expected[2] = np.nan  # -inf · 0, as NumPy's kernels give
        np.testing.assert_allclose(y, expected.astype(np.float32), rtol=2e-6, atol=1e-36)


def test_float32_tanh_gelu_and_integer_powers_compile_into_one_loop():
    """GPT-2's tanh-GELU as its eight ops (x³ as a power): one compiled loop, against float64
    NumPy; integer powers are written-out products (negative, zero and NaN as np.power)."""
    x = (3 * RNG.standard_normal((4, 128, 300))).astype(np.float32)
    y = np.empty_like(x)
    consts = [np.array(v, np.float32) for v in (3.0, 0.044715, 0.7978845608028654, 0.5, 1.0)]
    steps = [
        ("Pow", [0, 1], {}),
        ("Mul", [-1, 2], {}),
        ("Add", [0, -2], {}),
        ("Mul", [-3, 3], {}),
        ("Tanh", [-4], {}),
        ("Mul", [0, 4], {}),
        ("Add", [-5, 5], {}),
        ("Mul", [-6, -7], {}),
    ]
    run = program_closure(steps, [x, *consts], [False] + [True] * 5, y)
    assert run is not None
    run()
    x64 = x.astype(np.float64)
    want = 0.5 * x64 * (1 + np.tanh(0.7978845608028654 * (x64 + 0.044715 * x64**3)))
    # float32 steps: 1 + tanh(u) cancels for x < -3 in any float32 evaluation (NumPy's too)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6)
    for e in (-3.0, -1.0, 0.0, 2.0, 5.0):
        z = np.array([np.nan, np.inf, -np.inf, 0.0, -2.0, 1.5, 0.3] * 700, np.float32)
        out = np.empty_like(z)
        run = program_closure(
            [("Pow", [0, 1], {})], [z, np.array(e, np.float32)], [False, True], out
        )
        assert run is not None
        run()
        with np.errstate(divide="ignore", invalid="ignore"):
            np.testing.assert_allclose(out, np.power(z, np.float32(e)), rtol=1e-6)


@pytest.mark.parametrize("shape", [(2, 96, 7, 7), (1, 2000, 3, 1), (1, 5000, 1, 1)])
def test_in_place_scale_over_small_planes_reuses_one_scratch_row(shape):
    """A program written into its own operand (a squeeze-and-excitation scale the memory
    plan runs in place) over many short rows: every element once, NumPy's bits, whole and in
    parts of rows (the scratch row is made once per call and reused row after row)."""
    x = RNG.standard_normal(shape).astype(np.float32)
    scale = RNG.standard_normal((shape[0], shape[1], 1, 1)).astype(np.float32)
    expected = x * scale
    y = x.copy()
    run = program_closure([("Mul", [0, 1], {})], [y, scale], [False, False], y)
    assert run is not None
    run()
    np.testing.assert_array_equal(y, expected)
    text = codegen.source([("Mul", [0, 1], [])], ["full", "row"], "float32", True)
    # run and run_range: one scratch row each, made before the row loop, none inside it
    assert text.count("\n    buf = np.empty(") == 2 and "\n        buf = " not in text
    _, ranged, _ = codegen.compile_programs([("Mul", [0, 1], [])], ["full", "row"], "float32", True)
    y = x.copy()
    rows = shape[0] * shape[1]
    inner = shape[2] * shape[3]
    for first in range(0, rows, 7):  # parts of 7 rows, as openge's threads take them
        ranged(y.reshape(-1), inner, y.reshape(-1), scale.reshape(-1), first, first + 7)
    np.testing.assert_array_equal(y, expected)
