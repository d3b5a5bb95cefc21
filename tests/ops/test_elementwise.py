"""Tests for openge.ops.elementwise: math, arithmetic, comparisons, logic, activations, Cast.

Every kernel is compared with a reference written here — Python's ``math`` module or plain
Python arithmetic on scalars (wrapped to the integer width), a NumPy formula, or onnxruntime —
never with the kernel itself. Kernels run on read-only, non-contiguous views of the inputs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from onnx import helper

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import LOW_PRECISION_TYPES, DataType, Format, Graph, TensorDesc, from_numpy_dtype
from openge.ops import Trait, elementwise, evaluate, get_schema, infer_node
from openge.ops.elementwise import SCHEMAS

RNG = np.random.default_rng(20240611)  # reseeded per test by _seed_per_test
BAD = "bad_node"


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Random data depends on the test alone, not on which tests ran before it."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


F16, F32, F64 = DataType.DT_FLOAT16, DataType.DT_FLOAT, DataType.DT_DOUBLE
I8, I16, I32, I64 = DataType.DT_INT8, DataType.DT_INT16, DataType.DT_INT32, DataType.DT_INT64
U8, U16, U32, U64 = DataType.DT_UINT8, DataType.DT_UINT16, DataType.DT_UINT32, DataType.DT_UINT64
C64, C128, BOOL = DataType.DT_COMPLEX64, DataType.DT_COMPLEX128, DataType.DT_BOOL
FLOATS = {F16, F32, F64}
SINTS = {I8, I16, I32, I64}
UINTS = {U8, U16, U32, U64}
INTS = SINTS | UINTS
REALS = FLOATS | INTS
CPLX = {C64, C128}
ALL = REALS | CPLX | {BOOL}
# bfloat16 / float8 run every op through float32 (openge.ops.lowp; tests/ops/test_lowp.py)
STORABLE = [t for t in DataType if t != DataType.DT_STRING and t not in LOW_PRECISION_TYPES]

# rtol, atol per float type: a few ulps of the type
TOL = {F16: (2e-3, 1e-4), F32: (4e-6, 1e-7), F64: (1e-13, 1e-300)}


# ----- helpers ---------------------------------------------------------------------------------


def _view(a: np.ndarray) -> np.ndarray:
    """A read-only, non-contiguous view holding a's values."""
    a = np.asarray(a)
    if a.ndim == 0:
        a = a.copy()
        a.setflags(write=False)
        return a
    base = np.empty((*a.shape, 2), dtype=a.dtype)
    base[..., 0] = a
    view = base[..., 0]
    view.setflags(write=False)
    return view


def _graph(op: str, descs, attrs=None, name: str = "n"):
    g = Graph("t")
    ports = []
    for i, (dtype, shape, *fmt) in enumerate(descs):
        d = g.add_node(
            "Data",
            name=f"in{i}",
            attrs={"index": i},
            output_descs=[TensorDesc(dtype, tuple(shape), *(fmt or []))],
        )
        ports.append(d.output(0))
    return g.add_node(op, ports, name=name, attrs=dict(attrs or {}))


def infer(op: str, descs, attrs=None) -> TensorDesc:
    """The inferred output desc for inputs given as (dtype, shape[, format])."""
    return infer_node(_graph(op, descs, attrs))[1][0]


def run(op: str, inputs, attrs=None) -> np.ndarray:
    """Infer and run ``op`` (as the runtime does: under np.errstate(all='ignore'))."""
    arrays = [np.asarray(a) for a in inputs]
    node = _graph(op, [(from_numpy_dtype(a.dtype), a.shape) for a in arrays], attrs)
    norm, descs = infer_node(node)
    with np.errstate(all="ignore"):
        (out,) = evaluate(get_schema(op), norm, [_view(a) for a in arrays], descs)
    assert out.shape == descs[0].shape and out.dtype == descs[0].dtype.np_dtype
    return out


def fails(op: str, descs, attrs=None, match: str | None = None, code: int | None = None) -> None:
    """Inference of a node called BAD raises a GeError naming it (and ``match``, ``code``)."""
    with pytest.raises(GeError) as info:
        infer_node(_graph(op, descs, attrs, name=BAD))
    assert f"node {BAD}" in str(info.value), str(info.value)
    if match is not None:
        assert match in str(info.value), str(info.value)
    if code is not None:
        assert info.value.code == code, str(info.value)


def rand(dtype: DataType, shape, lo: float = -10.0, hi: float = 10.0) -> np.ndarray:
    """Random values of ``dtype`` (integers span a range that exercises wrap-around)."""
    npdt = dtype.np_dtype
    if dtype == BOOL:
        return RNG.random(shape) < 0.5
    if npdt.kind in "iu":
        info = np.iinfo(npdt)
        lo_i, hi_i = max(info.min, -100), min(info.max, 100)
        return RNG.integers(lo_i, hi_i + 1, size=shape, dtype=npdt)
    if npdt.kind == "c":
        return (RNG.uniform(lo, hi, shape) + 1j * RNG.uniform(lo, hi, shape)).astype(npdt)
    return RNG.uniform(lo, hi, shape).astype(npdt)


def wrap(value: int, npdt: np.dtype) -> int:
    """A Python int reduced to the integer type's range (two's complement wrap-around)."""
    info = np.iinfo(npdt)
    span = 1 << info.bits
    return (value - info.min) % span + info.min


def scalar_ref(fn: Callable, *arrays: np.ndarray, out_dtype=None) -> np.ndarray:
    """Apply a scalar Python function elementwise (after broadcasting), as float64 / int."""
    b = np.broadcast_arrays(*arrays)
    shape = b[0].shape
    flat = [a.reshape(-1).tolist() for a in b]
    vals = [fn(*args) for args in zip(*flat, strict=True)]
    return np.array(vals, dtype=out_dtype or object).reshape(shape)


def close(got: np.ndarray, ref, dtype: DataType, scale: float = 1.0) -> None:
    """got ≈ ref rounded to dtype (so both overflow alike), within a few ulps of dtype."""
    rtol, atol = TOL[dtype]
    with np.errstate(over="ignore"):
        want = np.asarray(ref, dtype=np.float64).astype(dtype.np_dtype).astype(np.float64)
    np.testing.assert_allclose(
        got.astype(np.float64), want, rtol=rtol * scale, atol=atol * scale, equal_nan=True
    )


SHAPES = [(), (7,), (3, 1, 5), (0, 4)]


# ----- the catalog -----------------------------------------------------------------------------


def test_every_op_is_elementwise_documented_and_defined_once():
    names = [s.op_type for s in SCHEMAS]
    assert len(names) == len(set(names))
    for s in SCHEMAS:
        assert s.has(Trait.ELEMENTWISE), s.op_type
        assert s.doc and s.onnx, s.op_type


EXPECTED_DTYPES = {
    "Abs": REALS,
    "Neg": FLOATS | SINTS | CPLX,
    "Square": REALS | CPLX,
    "Sqrt": FLOATS,
    "Rsqrt": FLOATS,
    "Reciprocal": FLOATS,
    "Exp": FLOATS,
    "Log": FLOATS,
    "Log1p": FLOATS,
    "Expm1": FLOATS,
    "Erf": FLOATS,
    "Floor": FLOATS,
    "Ceil": FLOATS,
    "Round": FLOATS | {I32, I64},
    "Sign": FLOATS | SINTS,
    "IsNan": FLOATS,
    "IsInf": FLOATS,
    "IsFinite": REALS | {BOOL},
    "LogicalNot": {BOOL},
    "Invert": INTS,
    "Add": REALS | CPLX,
    "AddV2": REALS | CPLX,
    "Sub": REALS | CPLX,
    "Mul": REALS | CPLX,
    "RealDiv": REALS | CPLX,
    "Div": REALS | CPLX,
    "TruncateDiv": REALS,
    "FloorDiv": REALS,
    "FloorMod": REALS,
    "Mod": REALS,
    "Pow": REALS,
    "Maximum": REALS,
    "Minimum": REALS,
    "SquaredDifference": FLOATS | SINTS,
    "AddN": REALS | CPLX,
    "Equal": ALL,
    "NotEqual": ALL,
    "Less": REALS,
    "LessEqual": REALS,
    "Greater": REALS,
    "GreaterEqual": REALS,
    "LogicalAnd": {BOOL},
    "LogicalOr": {BOOL},
    "BitwiseAnd": INTS,
    "BitwiseOr": INTS,
    "BitwiseXor": INTS,
    "LeftShift": INTS,
    "RightShift": INTS,
    "ClipByValue": REALS,
    "Cast": ALL,
    "Relu": REALS,
    "Relu6": REALS,
    "PRelu": FLOATS,
}
_FLOAT_ONLY = [
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Gelu",
    "GeluV2",
    "FastGelu",
    "Swish",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Mish",
    "ThresholdedRelu",
]
EXPECTED_DTYPES.update({op: FLOATS for op in _FLOAT_ONLY})


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.op_type)
def test_claimed_dtypes_and_a_bad_dtype_names_the_node(schema):
    op = schema.op_type
    if op in ("Select", "SelectV2"):  # a bool condition first: see test_select_*
        for t in ALL:
            assert infer(op, [(BOOL, (2,)), (t, (2,)), (t, (2,))]).dtype == t
        return
    attrs = {"N": 2} if op == "AddN" else {"dst_type": F32} if op == "Cast" else {}
    n = 2 if op == "AddN" else len(schema.inputs)
    ok = set()
    for t in STORABLE:
        try:
            infer(op, [(t, (2,))] * n, attrs)
        except GeError:
            continue
        ok.add(t)
    assert ok == EXPECTED_DTYPES[op]
    bad = next(t for t in (BOOL, F32, C64, I32, DataType.DT_STRING) if t not in ok)
    fails(op, [(bad, (2,))] * n, attrs, match=bad.name, code=DATATYPE_INVALID)


# ----- unary math ------------------------------------------------------------------------------

UNARY_FLOAT = {
    # op: (reference on a Python float, input range)
    "Sqrt": (math.sqrt, (0, 100)),
    "Rsqrt": (lambda v: 1 / math.sqrt(v), (0.01, 100)),
    "Reciprocal": (lambda v: 1 / v, (0.1, 10)),
    "Exp": (math.exp, (-10, 10)),
    "Log": (math.log, (0.01, 100)),
    "Log1p": (math.log1p, (-0.9, 10)),
    "Expm1": (math.expm1, (-5, 5)),
    "Erf": (math.erf, (-4, 4)),
    "Floor": (math.floor, (-10, 10)),
    "Ceil": (math.ceil, (-10, 10)),
    "Round": (round, (-10, 10)),  # Python's round() is half-to-even
    "Sign": (lambda v: float((v > 0) - (v < 0)), (-3, 3)),
    "Abs": (abs, (-10, 10)),
    "Neg": (lambda v: -v, (-10, 10)),
    "Square": (lambda v: v * v, (-10, 10)),
    "Sin": (math.sin, (-6, 6)),
    "Cos": (math.cos, (-6, 6)),
    "Tan": (math.tan, (-1.4, 1.4)),
    "Asin": (math.asin, (-1, 1)),
    "Acos": (math.acos, (-1, 1)),
    "Atan": (math.atan, (-10, 10)),
    "Sinh": (math.sinh, (-5, 5)),
    "Cosh": (math.cosh, (-5, 5)),
    "Asinh": (math.asinh, (-10, 10)),
    "Acosh": (math.acosh, (1, 10)),
    "Atanh": (math.atanh, (-0.99, 0.99)),
}


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=lambda t: t.name)
@pytest.mark.parametrize("op", sorted(UNARY_FLOAT))
def test_unary_float_ops_match_math(op, dtype):
    fn, (lo, hi) = UNARY_FLOAT[op]
    for shape in SHAPES:
        x = rand(dtype, shape, lo, hi)
        if op == "Round":  # exact halves must round to even
            x.reshape(-1)[: min(4, x.size)] = np.array([0.5, 1.5, 2.5, -2.5])[: min(4, x.size)]
        got = run(op, [x])
        ref = scalar_ref(fn, x.astype(np.float64), out_dtype=np.float64)
        # scale: f16 rounding of the input already moves steep functions (Tan, Exp) further
        close(got, ref, dtype, scale=4.0 if op in ("Tan", "Exp", "Sinh", "Cosh") else 1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unary_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype)
    assert np.isnan(run("Sqrt", [np.array([-1.0], np.float32)])).all()
    assert run("IsNan", [x]).tolist() == [True, False, False, False, False]
    assert run("IsInf", [x]).tolist() == [False, True, True, False, False]
    assert run("IsFinite", [x]).tolist() == [False, False, False, True, True]
    assert run("IsFinite", [np.array([1, -5], np.int8)]).tolist() == [True, True]
    assert run("IsFinite", [np.array([True])]).tolist() == [True]
    assert run("Log", [np.array([0.0, -1.0], np.float32)])[0] == -np.inf
    assert np.isnan(run("Log", [np.array([0.0, -1.0], np.float32)])[1])
    assert run("Reciprocal", [np.array([0.0, -0.0], np.float64)]).tolist() == [np.inf, -np.inf]
    assert run("Atanh", [np.array([1.0, -1.0])]).tolist() == [np.inf, -np.inf]
    sign = run("Sign", [np.array([np.nan, -0.0, 3.0])])
    assert np.isnan(sign[0]) and sign[1] == 0 and sign[2] == 1


@pytest.mark.parametrize(
    "op,ref,types",
    [
        ("Abs", abs, REALS - FLOATS),
        ("Neg", lambda v: -v, SINTS),
        ("Square", lambda v: v * v, INTS),
        ("Sign", lambda v: (v > 0) - (v < 0), SINTS),
        ("Round", lambda v: v, {I32, I64}),
        ("Invert", lambda v: ~v, INTS),
        ("Relu", lambda v: max(v, 0), INTS),
        ("Relu6", lambda v: min(max(v, 0), 6), INTS),
    ],
)
def test_unary_integer_ops_wrap_like_c(op, ref, types):
    for t in sorted(types):
        npdt = t.np_dtype
        info = np.iinfo(npdt)
        x = np.concatenate([rand(t, (20,)), np.array([info.min, info.max, 0], npdt)])
        got = run(op, [x])
        want = [wrap(ref(int(v)), npdt) for v in x.tolist()]
        assert got.tolist() == want, t.name


def test_logical_not():
    x = np.array([[True, False], [False, False]])
    assert run("LogicalNot", [x]).tolist() == [[False, True], [True, True]]


@pytest.mark.parametrize(
    "op,attrs,ref",
    [
        ("Exp", {"base": 2.0, "scale": 0.5, "shift": 1.0}, lambda v: 2.0 ** (0.5 * v + 1.0)),
        ("Exp", {"base": 1.0}, lambda v: 1.0),
        ("Exp", {"scale": -1.0, "shift": 0.25}, lambda v: math.exp(-v + 0.25)),
        ("Log", {"base": 10.0, "scale": 2.0, "shift": 11.0}, lambda v: math.log10(11 + 2 * v)),
        ("Log", {"shift": 12.0}, lambda v: math.log(12 + v)),
    ],
)
@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=lambda t: t.name)
def test_exp_log_base_scale_shift(op, attrs, ref, dtype):
    x = rand(dtype, (4, 3), -5, 5)
    close(run(op, [x], attrs), scalar_ref(ref, x.astype(np.float64), out_dtype=float), dtype)


@pytest.mark.parametrize(
    "op,base,msg",
    [("Exp", -2.0, "> 0, or -1"), ("Exp", 0.0, "> 0"), ("Log", 1.0, "!= 1"), ("Log", -0.5, "")],
)
def test_exp_log_bad_base(op, base, msg):
    fails(op, [(F32, (2,))], {"base": base}, match=msg, code=PARAM_INVALID)


def test_bad_attr_type_names_the_node():
    fails("LeakyRelu", [(F32, (2,))], {"negative_slope": "steep"}, match="negative_slope")
    fails("Exp", [(F32, (2,))], {"scale": [1.0]}, match="scale")
    fails("Relu", [(F32, (2,))], {"alpha": 1.0}, match="has no attr")


# ----- erf -------------------------------------------------------------------------------------


def test_erf_float64_matches_math_erf_to_an_ulp():
    x = np.concatenate(
        [
            np.linspace(-7, 7, 140001),
            RNG.uniform(-30, 30, 20000),
            np.geomspace(1e-300, 1.0, 3000),
            -np.geomspace(1e-300, 1.0, 3000),
            np.array([0.9999999999999999, 1.0, 1.0000000000000002, 5.9, 6.0, 26.0, 27.5, 1e300]),
        ]
    )
    got = run("Erf", [x])
    ref = scalar_ref(math.erf, x, out_dtype=np.float64)
    err = np.abs(got - ref)
    assert err.max() <= 4.5e-16
    assert (err / np.maximum(np.abs(ref), 1e-308)).max() <= 1e-15


def _ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ints = {2: np.int16, 4: np.int32}[a.dtype.itemsize]
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    # map the sign-magnitude float order onto integers
    big = np.int64(1) << (8 * a.dtype.itemsize - 1)
    ia = np.where(ia < 0, -(ia + big), ia)
    ib = np.where(ib < 0, -(ib + big), ib)
    return np.abs(ia - ib)


def test_erf_float32_is_rounded_like_math_erf():
    x = np.concatenate(
        [
            np.linspace(-5, 5, 200001, dtype=np.float32),
            (RNG.standard_normal(50000) * 3).astype(np.float32),
            np.geomspace(1e-38, 1, 2000, dtype=np.float32),
        ]
    )
    got = run("Erf", [x])
    ref = np.array([math.erf(v) for v in x.tolist()]).astype(np.float32)
    d = _ulp_distance(got, ref)
    assert d.max() <= 1
    assert np.mean(d == 0) >= 0.9999


def test_erf_float16_every_finite_value():
    bits = np.arange(0, 1 << 16, dtype=np.uint32).astype(np.uint16)
    x = bits.view(np.float16)
    x = x[np.isfinite(x)]
    got = run("Erf", [x])
    ref = np.array([math.erf(v) for v in x.astype(np.float64).tolist()]).astype(np.float16)
    d = _ulp_distance(got, ref)
    assert d.max() <= 1 and np.mean(d == 0) >= 0.999


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_special_values(dtype):
    big = 6e4 if dtype == np.float16 else 1e30
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big, -big], dtype)
    got = run("Erf", [x])
    assert got[0] == 0 and not np.signbit(got[0])
    assert got[1] == 0 and np.signbit(got[1])
    assert got[2:4].tolist() == [1.0, -1.0] and np.isnan(got[4])
    assert got[5:].tolist() == [1.0, -1.0]


def test_erf_kernel_handles_large_blocks_and_a_strided_output():
    x = RNG.uniform(-4, 4, 100_003).astype(np.float32)
    out = np.empty((x.size, 2), np.float32)[:, 0]
    get_schema("Erf").kernel([_view(x)], [out])
    ref = np.array([math.erf(v) for v in x.tolist()]).astype(np.float32)
    assert _ulp_distance(out.copy(), ref).max() <= 1


def _gelu_ref(v: float) -> float:
    return v * 0.5 * math.erfc(-v / math.sqrt(2))


@pytest.mark.parametrize("op,attrs", [("GeluV2", {}), ("GeluV2", {"approximate": "none"})])
def test_gelu_erf_form(op, attrs):
    x64 = np.concatenate([np.linspace(-40, 10, 50001), np.array([0.0, -0.0, 1e-300])])
    got = run(op, [x64], attrs)
    ref = scalar_ref(_gelu_ref, x64, out_dtype=np.float64)
    mask = np.abs(ref) > 1e-300
    rel = np.abs(got - ref)[mask] / np.abs(ref[mask])
    # x/√2 is rounded (in the reference too): the tail's conditioning grows like x²·eps
    assert (rel <= 1e-15 * (1 + x64[mask] ** 2 / 2)).all()
    x32 = RNG.uniform(-12, 8, 20000).astype(np.float32)
    got32 = run(op, [x32], attrs)
    ref32 = np.array([_gelu_ref(v) for v in x32.tolist()]).astype(np.float32)
    assert _ulp_distance(got32, ref32).max() <= 1
    x16 = RNG.uniform(-6, 6, 2000).astype(np.float16)
    close(run(op, [x16], attrs), [_gelu_ref(v) for v in x16.astype(float).tolist()], F16)


def test_gelu_v2_tanh_form_and_bad_mode():
    x = np.concatenate([rand(F32, (30,), -6, 6), np.array([-60, -12, 0, 12, 60], np.float32)])
    c = math.sqrt(2 / math.pi)

    def ref(v):  # 1 + tanh(u) = 2/(1 + e^(-2u)), without cancellation for v < 0
        u = c * (v + 0.044715 * v**3)
        return v / (1 + math.exp(-2 * u)) if u > -300 else 0.0

    for t in (F16, F32, F64):
        xt = x.astype(t.np_dtype)
        for op, attrs in (("GeluV2", {"approximate": "tanh"}), ("Gelu", {})):
            got = run(op, [xt], attrs)  # CANN's Gelu is the tanh form
            close(got, scalar_ref(ref, xt.astype(float), out_dtype=float), t, scale=2)
    fails("GeluV2", [(F32, (2,))], {"approximate": "fast"}, match="approximate", code=PARAM_INVALID)


# ----- binary arithmetic -----------------------------------------------------------------------


def _idiv_trunc(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _ipow(a: int, b: int) -> int:
    if b >= 0:
        return a**b
    return 1 if a == 1 else (1 if b % 2 == 0 else -1) if a == -1 else 0


INT_BINARY = {
    "Add": lambda a, b: a + b,
    "AddV2": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "RealDiv": _idiv_trunc,
    "TruncateDiv": _idiv_trunc,
    "Div": lambda a, b: a // b if b else 0,
    "FloorDiv": lambda a, b: a // b if b else 0,
    "FloorMod": lambda a, b: a % b if b else 0,
    "Mod": lambda a, b: a - _idiv_trunc(a, b) * b if b else 0,
    "Maximum": max,
    "Minimum": min,
    "SquaredDifference": lambda a, b: (a - b) ** 2,
    "Pow": _ipow,
    "BitwiseAnd": lambda a, b: a & b,
    "BitwiseOr": lambda a, b: a | b,
    "BitwiseXor": lambda a, b: a ^ b,
}


@pytest.mark.parametrize("op", sorted(INT_BINARY))
def test_binary_integer_ops(op):
    ref = INT_BINARY[op]
    for t in sorted(EXPECTED_DTYPES[op] & INTS):
        npdt = t.np_dtype
        a = rand(t, (4, 1, 5))
        b = rand(t, (3, 5))
        if op == "Pow":
            a = RNG.integers(-4, 5, size=(4, 1, 5)).astype(npdt) if t in SINTS else a % 5
            b = RNG.integers(-3, 6, size=(3, 5)) if t in SINTS else RNG.integers(0, 6, (3, 5))
            b = b.astype(npdt)
        elif op in ("RealDiv", "TruncateDiv", "Div", "FloorDiv", "FloorMod", "Mod"):
            b.reshape(-1)[0] = 0  # integer division by zero is defined as 0
        got = run(op, [a, b])
        want = scalar_ref(lambda x, y, dt=npdt: wrap(ref(int(x), int(y)), dt), a, b)
        assert got.tolist() == want.tolist(), t.name


FLOAT_BINARY = {
    "Add": lambda a, b: a + b,
    "AddV2": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "RealDiv": lambda a, b: a / b,
    "Div": lambda a, b: a / b,
    "TruncateDiv": lambda a, b: float(math.trunc(a / b)),
    "FloorDiv": lambda a, b: float(math.floor(a / b)),
    "FloorMod": lambda a, b: a % b,
    "Mod": math.fmod,
    "Maximum": max,
    "Minimum": min,
    "SquaredDifference": lambda a, b: (a - b) ** 2,
    "Pow": math.pow,
}


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=lambda t: t.name)
@pytest.mark.parametrize("op", sorted(FLOAT_BINARY))
def test_binary_float_ops(op, dtype):
    ref = FLOAT_BINARY[op]
    npdt = dtype.np_dtype
    # values on a 1/8 grid keep quotients away from rounding ties, so floor/trunc are exact
    a = (RNG.integers(-80, 80, size=(2, 3, 1, 4)) / 8).astype(npdt)
    b = (RNG.integers(1, 40, size=(5, 1)) * RNG.choice([-1, 1], (5, 1)) / 8).astype(npdt)
    if op == "Pow":
        a, b = np.abs(a) + npdt.type(0.5), b / npdt.type(2)
    got = run(op, [a, b])
    want = scalar_ref(ref, a.astype(np.float64), b.astype(np.float64), out_dtype=np.float64)
    close(got, want, dtype)


def test_float_division_special_cases():
    a = np.array([1.0, -1.0, 0.0, 7.0], np.float32)
    b = np.array([0.0, 0.0, 0.0, 0.5], np.float32)
    got = run("RealDiv", [a, b])
    assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2]) and got[3] == 14
    assert np.isnan(run("FloorMod", [a, b])[:3]).all()
    assert np.isnan(run("Maximum", [np.array([np.nan, 1.0]), np.array([0.0, np.nan])])).all()
    assert np.isnan(run("Minimum", [np.array([np.nan]), np.array([0.0])])).all()


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "RealDiv", "Div"])
@pytest.mark.parametrize("dtype", [C64, C128], ids=lambda t: t.name)
def test_complex_arithmetic(op, dtype):
    a, b = rand(dtype, (3, 4)), rand(dtype, (4,))
    fn = {"Add": complex.__add__, "Sub": complex.__sub__, "Mul": complex.__mul__}.get(
        op, complex.__truediv__
    )
    want = scalar_ref(fn, a.astype(np.complex128), b.astype(np.complex128), out_dtype=complex)
    rtol = 1e-5 if dtype == C64 else 1e-13
    np.testing.assert_allclose(run(op, [a, b]), want, rtol=rtol)


@pytest.mark.parametrize("dtype", [C64, C128], ids=lambda t: t.name)
def test_complex_unary(dtype):
    x = rand(dtype, (5,))
    np.testing.assert_allclose(run("Neg", [x]), [-v for v in x.tolist()], rtol=1e-6)
    np.testing.assert_allclose(run("Square", [x]), [v * v for v in x.tolist()], rtol=1e-5)


@pytest.mark.parametrize("dtype", sorted(INTS), ids=lambda t: t.name)
def test_shifts(dtype):
    npdt = dtype.np_dtype
    bits = np.iinfo(npdt).bits
    a = rand(dtype, (6, 1))
    s = np.array([0, 1, 3, bits - 1, bits, bits + 3], npdt)
    left = run("LeftShift", [a, s])
    right = run("RightShift", [a, s])
    for i, v in enumerate(a[:, 0].tolist()):
        for j, k in enumerate(s.tolist()):
            assert left[i, j] == wrap(v << k, npdt)
            assert right[i, j] == v >> k


@pytest.mark.parametrize(
    "op", ["Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"]
)
def test_comparisons(op):
    import operator

    fn = {
        "Equal": operator.eq,
        "NotEqual": operator.ne,
        "Less": operator.lt,
        "LessEqual": operator.le,
        "Greater": operator.gt,
        "GreaterEqual": operator.ge,
    }[op]
    for t in sorted(EXPECTED_DTYPES[op]):
        a = rand(t, (3, 4))
        b = a.copy()
        b[1] = rand(t, (4,))
        b = b[:, :1] if t == BOOL else b  # broadcasting for one of them
        got = run(op, [a, b])
        assert got.dtype == np.bool_
        want = scalar_ref(fn, a, b, out_dtype=bool)
        assert got.tolist() == want.tolist(), t.name
    nan = np.array([np.nan], np.float32)
    assert run(op, [nan, nan]).tolist() == [op == "NotEqual"]


@pytest.mark.parametrize(
    "op,fn", [("LogicalAnd", lambda a, b: a and b), ("LogicalOr", lambda a, b: a or b)]
)
def test_logical_binary(op, fn):
    a = np.array([[True, False]])
    b = np.array([[True], [False]])
    assert run(op, [a, b]).tolist() == scalar_ref(fn, a, b, out_dtype=bool).tolist()


@settings(max_examples=25, deadline=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3))
def test_broadcasting_matches_numpy_rules(shapes):
    (sa, sb), result = shapes
    a = rand(F32, sa)
    b = rand(F32, sb)
    got = run("Sub", [a, b])
    assert got.shape == result
    want = scalar_ref(lambda x, y: x - y, a.astype(float), b.astype(float), out_dtype=float)
    np.testing.assert_allclose(got, want.astype(np.float32))
    assert run("Greater", [a, b]).shape == result


@pytest.mark.parametrize(
    "op",
    sorted(
        set(INT_BINARY)
        | set(FLOAT_BINARY)
        | {
            "Equal",
            "Less",
            "LessEqual",
            "Greater",
            "GreaterEqual",
            "NotEqual",
            "LogicalAnd",
            "LogicalOr",
            "LeftShift",
            "RightShift",
        }
    ),
)
def test_binary_bad_shapes_and_mixed_dtypes(op):
    t = sorted(EXPECTED_DTYPES[op])[0]
    fails(op, [(t, (2, 3)), (t, (4,))], match="cannot be broadcast", code=SHAPE_INVALID)
    other = (
        next(u for u in sorted(EXPECTED_DTYPES[op]) if u != t)
        if op not in ("LogicalAnd", "LogicalOr")
        else F32
    )
    fails(op, [(t, (2,)), (other, (2,))], match="insert a Cast", code=DATATYPE_INVALID)


def test_output_keeps_format_and_unknown_dims():
    d = infer("Add", [(F32, (1, 8, 4, 4), Format.FORMAT_NCHW), (F32, (4,))])
    assert d.shape == (1, 8, 4, 4) and d.format == Format.FORMAT_NCHW
    d = infer("Mul", [(F32, (4,)), (F32, (-1, 1, 4), Format.FORMAT_NHWC)])
    assert d.shape == (-1, 1, 4) and d.format == Format.FORMAT_NHWC
    assert infer("Less", [(I32, (-1, 3)), (I32, (2, 1))]).shape == (2, 3)
    assert infer("Less", [(I32, (-1, 3)), (I32, (2, 1))]).dtype == BOOL
    d = infer("Relu", [(F16, (2, 3, 4, 5), Format.FORMAT_NCHW)])
    assert d.format == Format.FORMAT_NCHW and d.dtype == F16


def test_defined_conditions_never_raise_even_with_numpy_errors_raising():
    """Int x/0, NaN → int, overflowing exp in a discarded branch are defined results."""
    schema_runs = [
        ("Div", [np.array([1, -1], np.int32), np.array([0, 0], np.int32)], {}, [0, 0]),
        ("FloorMod", [np.array([5], np.int64), np.array([0], np.int64)], {}, [0]),
        ("Pow", [np.array([2, 0], np.int32), np.array([-1, -2], np.int32)], {}, [0, 0]),
        ("Cast", [np.array([np.nan, 3e9], np.float32)], {"dst_type": I32}, [0, 2147483647]),
        ("Sigmoid", [np.array([-1000.0, 1000.0], np.float32)], {}, [0.0, 1.0]),
        ("Elu", [np.array([1000.0, -1000.0], np.float32)], {}, [1000.0, -1.0]),
    ]
    for op, inputs, attrs, want in schema_runs:
        node = _graph(op, [(from_numpy_dtype(a.dtype), a.shape) for a in inputs], attrs)
        norm, descs = infer_node(node)
        with np.errstate(all="raise"):
            (out,) = evaluate(get_schema(op), norm, inputs, descs)
        assert out.tolist() == want, op


# ----- AddN, Select, SelectV2, ClipByValue -----------------------------------------------------


@pytest.mark.parametrize("dtype", sorted(REALS | CPLX), ids=lambda t: t.name)
def test_add_n(dtype):
    xs = [rand(dtype, (2, 3)), rand(dtype, (3,)), rand(dtype, (2, 1)), rand(dtype, ())]
    for n in (1, 2, 4):
        got = run("AddN", xs[:n], {"N": n})
        if dtype in INTS:
            want = scalar_ref(lambda *v: wrap(sum(int(u) for u in v), dtype.np_dtype), *xs[:n])
            assert got.tolist() == want.tolist()
        else:
            want = scalar_ref(lambda *v: sum(v), *[x.astype(np.complex128) for x in xs[:n]])
            atol = 0.05 if dtype == F16 else 1e-5
            np.testing.assert_allclose(got, want.astype(complex), rtol=2e-3, atol=atol)
    fails("AddN", [(F32, (2,))] * 3, {"N": 2}, match="attr N = 2", code=PARAM_INVALID)
    fails("AddN", [(F32, (2,)), (F64, (2,))], {"N": 2}, match="insert a Cast")
    fails("AddN", [(F32, (2,))], {}, match="needs attr 'N'")


def test_select_rows_scalar_and_same_shape():
    x1 = rand(I32, (3, 2, 2))
    x2 = rand(I32, (3, 2, 2))
    rows = np.array([True, False, True])
    got = run("Select", [rows, x1, x2])
    assert got.tolist() == [x1[0].tolist(), x2[1].tolist(), x1[2].tolist()]
    assert run("Select", [np.array(False), x1, x2]).tolist() == x2.tolist()
    cond = RNG.random((3, 2, 2)) < 0.5
    want = scalar_ref(lambda c, a, b: a if c else b, cond, x1, x2)
    assert run("Select", [cond, x1, x2]).tolist() == want.tolist()
    v = np.array([1.5, 2.5], np.float16)
    assert run("Select", [np.array([True, False]), v, -v]).tolist() == [1.5, -2.5]


@pytest.mark.parametrize("op", ["Select", "SelectV2"])
def test_select_every_dtype(op):
    cond = np.array([[True, False, True]])
    for t in sorted(ALL):
        a, b = rand(t, (2, 3)), rand(t, (2, 3))
        c = np.broadcast_to(cond, (2, 3)) if op == "Select" else cond
        want = scalar_ref(lambda k, u, v: u if k else v, c, a, b)
        assert run(op, [c, a, b]).tolist() == want.tolist(), t.name


def test_select_errors():
    fails(
        "Select",
        [(BOOL, (3, 1)), (F32, (3, 2)), (F32, (3, 2))],
        match="condition shape",
        code=SHAPE_INVALID,
    )
    fails("Select", [(BOOL, (2,)), (F32, (3, 2)), (F32, (3, 2))], match="length 3")
    fails("Select", [(BOOL, (3,)), (F32, (3,)), (F32, (1,))], match="same shape")
    fails(
        "Select", [(F32, (3,)), (F32, (3,)), (F32, (3,))], match="DT_FLOAT", code=DATATYPE_INVALID
    )
    fails("Select", [(BOOL, (3,)), (F32, (3,)), (I32, (3,))], match="insert a Cast")


def test_select_v2_broadcasts_all_three():
    cond = RNG.random((2, 1, 4)) < 0.5
    then = rand(F64, (3, 1))
    other = rand(F64, (4,))
    got = run("SelectV2", [cond, then, other])
    assert got.shape == (2, 3, 4)
    want = scalar_ref(lambda c, a, b: a if c else b, cond, then, other, out_dtype=float)
    assert got.tolist() == want.tolist()
    b = np.array([True, False])
    assert run("SelectV2", [np.array([True, False]), b, ~b]).tolist() == [True, True]
    fails("SelectV2", [(BOOL, (2,)), (F32, (3,)), (F32, (3,))], match="cannot be broadcast")
    fails("SelectV2", [(I8, (3,)), (F32, (3,)), (F32, (3,))], code=DATATYPE_INVALID)
    fails("SelectV2", [(BOOL, (3,)), (F32, (3,)), (F16, (3,))], match="insert a Cast")


@pytest.mark.parametrize("dtype", sorted(REALS), ids=lambda t: t.name)
def test_clip_by_value(dtype):
    x = rand(dtype, (4, 5))
    lo = rand(dtype, (5,))
    hi = lo + np.array(3, dtype.np_dtype)
    got = run("ClipByValue", [x, lo, hi])
    want = scalar_ref(lambda v, a, b: min(max(v, a), b), x, lo, hi)
    assert got.tolist() == want.tolist()
    scalar = run("ClipByValue", [x, np.array(0, x.dtype), np.array(5, x.dtype)])
    assert scalar.min() >= 0 and scalar.max() <= 5
    fails("ClipByValue", [(dtype, (4,)), (dtype, (3,)), (dtype, ())], match="broadcast")
    other = F32 if dtype != F32 else F64
    fails("ClipByValue", [(dtype, (4,)), (other, ()), (dtype, ())], match="insert a Cast")


# ----- Cast ------------------------------------------------------------------------------------


def _cast_ref(v, dst: np.dtype):
    if dst == np.bool_:
        return v != 0
    if isinstance(v, complex) and dst.kind != "c":
        v = v.real
    if dst.kind in "iu":
        if isinstance(v, float):
            if math.isnan(v):
                return 0
            info = np.iinfo(dst)
            if v >= info.max + 1:
                return int(info.max)
            if v <= info.min - 1:
                return int(info.min)
            return math.trunc(v)
        return wrap(int(v), dst)
    return v


@pytest.mark.parametrize("src", sorted(ALL), ids=lambda t: t.name)
def test_cast_every_destination(src):
    npsrc = src.np_dtype
    if npsrc.kind == "f":
        x = np.concatenate(
            [
                rand(src, (12,), -300, 300),
                np.array(
                    [np.nan, np.inf, -np.inf, -0.7, 0.7, 255.9, 256.0, -128.5, -129.0, 1e4], npsrc
                ),
            ]
        )
    elif src == I64:
        x = np.concatenate([rand(src, (12,)), np.array([300, -300, 2**40 + 7], np.int64)])
    elif src == U64:
        x = np.concatenate([rand(src, (12,)), np.array([2**63 + 5, 2**64 - 1], np.uint64)])
    else:
        x = rand(src, (12,))
    for dst in sorted(ALL):
        npdst = dst.np_dtype
        got = run("Cast", [x], {"dst_type": dst})
        assert got.dtype == npdst
        want = [_cast_ref(v, npdst) for v in x.tolist()]
        if npdst.kind in "fc":
            with np.errstate(over="ignore"):
                ref = np.array(want, np.complex128 if npdst.kind == "c" else np.float64)
                ref = ref.astype(npdst)
            np.testing.assert_allclose(got, ref, rtol=1e-6, equal_nan=True)
        else:
            assert got.tolist() == want, (src.name, dst.name)


def test_cast_saturates_at_the_int64_limits_and_takes_int_or_name():
    x = np.array([9.3e18, -9.3e18, 2.0**63, -(2.0**63), 1.5e19, -1.0], np.float64)
    got = run("Cast", [x], {"dst_type": "int64"})
    i64 = np.iinfo(np.int64)
    assert got.tolist() == [i64.max, i64.min, i64.max, i64.min, i64.max, -1]
    u = run("Cast", [x], {"dst_type": int(U64)})
    assert u.tolist() == [9300000000000000000, 0, 2**63, 0, 15000000000000000000, 0]


def test_cast_bad_attrs():
    fails(
        "Cast",
        [(F32, (2,))],
        {"dst_type": DataType.DT_STRING},
        match="DT_STRING",
        code=DATATYPE_INVALID,
    )
    assert infer("Cast", [(F32, (2,))], {"dst_type": DataType.DT_BF16}).dtype == DataType.DT_BF16
    fails("Cast", [(F32, (2,))], {"dst_type": 999}, match="dst_type")
    fails("Cast", [(F32, (2,))], {}, match="needs attr 'dst_type'")


# ----- activations -----------------------------------------------------------------------------


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


_A, _L = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

ACTIVATIONS = [
    # (op, attrs, reference on a Python float)
    ("Relu", {}, lambda v: max(v, 0.0)),
    ("Relu6", {}, lambda v: min(max(v, 0.0), 6.0)),
    ("LeakyRelu", {}, lambda v: max(v, 0.0)),
    ("LeakyRelu", {"negative_slope": 0.1}, lambda v: v if v > 0 else 0.1 * v),
    ("LeakyRelu", {"negative_slope": -2.5}, lambda v: v if v > 0 else -2.5 * v),
    ("Elu", {}, lambda v: v if v > 0 else math.expm1(v)),
    (
        "Elu",
        {"alpha": 0.5, "scale": 2.0, "input_scale": 3.0},
        lambda v: 2 * v if v > 0 else 2 * 0.5 * math.expm1(3 * v),
    ),
    ("Selu", {}, lambda v: _L * v if v > 0 else _L * _A * math.expm1(v)),
    ("Sigmoid", {}, _sigmoid),
    ("HardSigmoid", {}, lambda v: min(max(0.16666666 * v + 0.5, 0.0), 1.0)),
    ("HardSigmoid", {"alpha": 0.2, "beta": 0.4}, lambda v: min(max(0.2 * v + 0.4, 0.0), 1.0)),
    ("Tanh", {}, math.tanh),
    ("FastGelu", {}, lambda v: v * _sigmoid(1.702 * v)),
    ("Swish", {}, lambda v: v * _sigmoid(v)),
    ("Swish", {"scale": 1.5}, lambda v: v * _sigmoid(1.5 * v)),
    ("HardSwish", {}, lambda v: v * min(max(v + 3, 0.0), 6.0) / 6),
    ("Softplus", {}, _softplus),
    ("Softsign", {}, lambda v: v / (1 + abs(v))),
    ("Mish", {}, lambda v: v * math.tanh(_softplus(v))),
    ("ThresholdedRelu", {}, lambda v: v if v > 1.0 else 0.0),
    ("ThresholdedRelu", {"alpha": -0.5}, lambda v: v if v > -0.5 else 0.0),
]


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=lambda t: t.name)
@pytest.mark.parametrize("op,attrs,ref", ACTIVATIONS, ids=[f"{a[0]}{a[1]}" for a in ACTIVATIONS])
def test_activations_match_formula(op, attrs, ref, dtype):
    for shape in ((3, 17), (0,), ()):
        x = rand(dtype, shape, -8, 8)
        got = run(op, [x], attrs)
        want = scalar_ref(ref, x.astype(np.float64), out_dtype=np.float64)
        close(got, want, dtype, scale=2.0)
    big = np.array([-1e4, -80.0, 0.0, 80.0, 1e4], dtype.np_dtype)
    if dtype == F16:
        big = np.array([-6e4, -20.0, 0.0, 20.0, 6e4], np.float16)
    got = run(op, [big], attrs)
    want = scalar_ref(ref, big.astype(np.float64), out_dtype=np.float64)
    close(got, want, dtype, scale=2.0)


@pytest.mark.parametrize("slope", [0.0, 0.1, 1.0, 2.5, -0.5])
def test_leaky_relu_infinities_and_nan(slope):
    x = np.array([np.inf, -np.inf, np.nan, 2.0, -2.0], np.float32)
    got = run("LeakyRelu", [x], {"negative_slope": slope})
    want = [np.inf, -np.inf * slope if slope else 0.0, np.nan, 2.0, -2.0 * slope]
    np.testing.assert_array_equal(got, np.array(want, np.float32))


def test_relu_and_relu6_integers_and_nan():
    assert run("Relu", [np.array([3, 0, 200], np.uint8)]).tolist() == [3, 0, 200]
    assert run("Relu", [np.array([-3, 0, 200], np.int16)]).tolist() == [0, 0, 200]
    assert run("Relu6", [np.array([-3, 4, 100], np.int8)]).tolist() == [0, 4, 6]
    assert np.isnan(run("Relu", [np.array([np.nan], np.float32)])).all()


def _ort(op: str, inputs, attrs=None, opset: int = 20):
    import onnxruntime as ort

    names = [f"i{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    elem = helper.np_dtype_to_tensor_dtype(inputs[0].dtype)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(n, elem, a.shape)
            for n, a in zip(names, inputs, strict=True)
        ],
        [helper.make_tensor_value_info("y", elem, inputs[0].shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs, strict=True)))[0]


@pytest.mark.parametrize(
    "op,attrs,onnx_op,onnx_attrs",
    [
        ("Erf", {}, "Erf", {}),
        ("Gelu", {}, "Gelu", {"approximate": "tanh"}),
        ("GeluV2", {"approximate": "none"}, "Gelu", {}),
        ("GeluV2", {"approximate": "tanh"}, "Gelu", {"approximate": "tanh"}),
        ("Sigmoid", {}, "Sigmoid", {}),
        ("Elu", {"alpha": 0.7}, "Elu", {"alpha": 0.7}),
        ("Selu", {}, "Selu", {}),
        ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}, "HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
        ("HardSwish", {}, "HardSwish", {}),
        ("LeakyRelu", {"negative_slope": 0.01}, "LeakyRelu", {"alpha": 0.01}),
        ("Softplus", {}, "Softplus", {}),
        ("Softsign", {}, "Softsign", {}),
        ("Mish", {}, "Mish", {}),
        ("ThresholdedRelu", {"alpha": 0.5}, "ThresholdedRelu", {"alpha": 0.5}),
    ],
)
def test_activations_agree_with_onnxruntime(op, attrs, onnx_op, onnx_attrs):
    x = rand(F32, (4, 33), -6, 6)
    np.testing.assert_allclose(
        run(op, [x], attrs), _ort(onnx_op, [x], onnx_attrs), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=lambda t: t.name)
def test_prelu_channel_scalar_and_broadcast_weights(dtype):
    npdt = dtype.np_dtype
    x = rand(dtype, (2, 3, 4, 5), -4, 4)
    w = rand(dtype, (3,), -1, 1)

    def ref(xv, wv):
        return scalar_ref(
            lambda a, b: a if a > 0 else a * b, xv.astype(float), wv.astype(float), out_dtype=float
        )

    close(run("PRelu", [x, w]), ref(x, w.reshape(3, 1, 1)), dtype)  # per channel, axis 1
    s = np.array([0.25], npdt)
    close(run("PRelu", [x, s]), ref(x, s), dtype)
    w3 = rand(dtype, (3, 1, 1), -1, 1)  # ONNX-style broadcastable slope
    close(run("PRelu", [x, w3]), ref(x, w3), dtype)
    w5 = rand(dtype, (5,), -1, 1)  # not the channel count: trailing-axis broadcasting
    close(run("PRelu", [x, w5]), ref(x, w5), dtype)
    if dtype == F32:
        np.testing.assert_allclose(run("PRelu", [x, w3]), _ort("PRelu", [x, w3]), rtol=1e-6)


def test_prelu_errors():
    fails("PRelu", [(F32, (2, 3, 4)), (F32, (5,))], match="channel axis 1", code=SHAPE_INVALID)
    fails("PRelu", [(F32, (2, 3)), (F32, (2, 3, 1))], match="weight shape")
    fails("PRelu", [(F32, (2, 3)), (F16, (3,))], match="insert a Cast")
    fails("PRelu", [(I32, (2, 3)), (I32, (3,))], code=DATATYPE_INVALID)


# ----- binary ops as one-step compiled programs -------------------------------------------------


def _edge_values(n: int, dtype, rng) -> np.ndarray:
    """Random values mixed with the IEEE edges: ±0, ±inf, NaN, tiny and huge magnitudes."""
    v = rng.standard_normal(n).astype(dtype) * dtype(100)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-38, -3e38, 7.0], dtype)
    v[rng.integers(0, n, 64)] = rng.choice(edges, 64)
    return v


@pytest.mark.parametrize("op", sorted(elementwise.COMPILED_BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 96, 56, 56), (2, 96, 1, 1)),  # a squeeze-and-excitation scale
        ((1, 96, 1, 1), (1, 96, 56, 56)),  # the same, the per-channel operand first
        ((1, 64, 48, 48), (1, 64, 48, 48)),  # same shapes
        ((1, 64, 48, 48), ()),  # a scalar
        ((4, 96, 512), (512,)),  # a last-axis vector
    ],
)
def test_compiled_binary_ops_give_numpys_bits(op, dtype, shapes):
    """A float binary op with a large output runs as a one-step compiled program and gives
    exactly the NumPy kernel's bits, NaN, infinities and signed zeros included."""
    rng = np.random.default_rng(zlib.crc32(f"{op}{shapes}".encode()))
    a = _edge_values(int(np.prod(shapes[0])), dtype, rng).reshape(shapes[0])
    b = _edge_values(max(1, int(np.prod(shapes[1]))), dtype, rng).reshape(shapes[1])
    b[b == 0] = dtype(3)  # keep some divisions finite
    schema = get_schema(op)
    want = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype)
    with np.errstate(all="ignore"):
        schema.kernel([a, b], [want])
    got = np.full_like(want, 12345.0)
    run = schema.prepare([a, b], [got], [False, False])
    assert run is not None, "the compiled program should apply to this shape"
    run()
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))


def test_compiled_binary_ops_leave_other_cases_to_numpy():
    """Integers, small outputs in a model that has not loaded numba, and broadcasts the loop
    does not cover keep the NumPy kernel (``prepare`` gives None)."""
    from openge.ops import compiled

    mul = get_schema("Mul")
    big = np.ones((1, 64, 48, 48), np.int32)
    assert mul.prepare([big, big], [np.empty_like(big)], [False, False]) is None
    small = np.ones((4, 4), np.float32)
    with compiled.model_build():
        assert mul.prepare([small, small], [np.empty_like(small)], [False, False]) is None
    odd = np.ones((64, 1, 48), np.float32)  # a middle-axis broadcast
    other = np.ones((64, 48, 48), np.float32)
    y = np.empty((64, 48, 48), np.float32)
    assert mul.prepare([other, odd], [y], [False, False]) is None
