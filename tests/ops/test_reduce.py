"""Tests for openge.ops.reduce: reductions, ArgMaxV2/ArgMin, TopKV2, Cumsum.

Every kernel is compared with a reference written here (plain NumPy / Python formulas or
onnx.reference), never with the kernel itself.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from openge.errors import GeError
from openge.graph import DataType, Graph, TensorDesc, from_numpy_dtype
from openge.ops import evaluate, get_schema, infer_node

RNG = np.random.default_rng(1234)
BAD = "bad_node"


def _view(a: np.ndarray) -> np.ndarray:
    """A read-only, non-contiguous view with a's values (kernels must accept both)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    base = np.empty((*a.shape, 2), dtype=a.dtype)
    base[..., 0] = a
    view = base[..., 0]
    view.setflags(write=False)
    return view


def run(op, inputs, attrs=None, const=None, name="n"):
    """Infer and run ``op`` on NumPy inputs; inputs listed in ``const`` (default: all but 0) are
    compile-time constants."""
    attrs = dict(attrs or {})
    g = Graph("t")
    ports = []
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        data = g.add_node(
            "Data",
            name=f"in{i}",
            attrs={"index": i},
            output_descs=[TensorDesc(from_numpy_dtype(a.dtype), a.shape)],
        )
        ports.append(data.output(0))
    schema = get_schema(op)
    node = g.add_node(
        op, ports, name=name, attrs=attrs, num_outputs=schema.output_count(attrs, len(inputs))
    )
    const = range(1, len(inputs)) if const is None else const
    values = {ports[i]: np.asarray(inputs[i]) for i in const}
    norm, descs = infer_node(node, values)
    outs = evaluate(schema, norm, [_view(v) for v in inputs], descs)
    for d, o in zip(descs, outs, strict=True):
        assert o.shape == d.shape and o.dtype == d.dtype.np_dtype
    return descs, outs


def infer_error(op, inputs, attrs=None, const=None, match=""):
    with pytest.raises(GeError, match=f"node {BAD} \\({op}\\).*{match}"):
        run(op, inputs, attrs, const, name=BAD)


def onnx_run(op_type, inputs, attrs=None, n_out=1, opset=18):
    """Run one ONNX node with onnx.reference on NumPy inputs."""
    names = [f"i{k}" for k in range(len(inputs))]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(op_type, names, outs, **(attrs or {}))
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.asarray(v).shape
            )
            for n, v in zip(names, inputs, strict=True)
        ],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs, strict=True)))


def axes_arr(axes, dtype=np.int64):
    return np.array(axes, dtype=dtype)


def rand(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    if dtype.kind == "b":
        return RNG.random(shape) > 0.5
    lo = 0 if dtype.kind == "u" else -4
    return RNG.integers(lo, 5, size=shape).astype(dtype)


# ----- reference formulas --------------------------------------------------------------------


def ref_reduce(op, x, axes, keep):
    axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
    wide = x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)
    if op == "ReduceSum":
        r = wide.sum(axis=axes, keepdims=keep)
    elif op == "ReduceProd" and x.dtype.kind in "iu":
        # integer products wrap (two's complement); float64 would round, then saturate
        r = x.astype(np.int64).prod(axis=axes, keepdims=keep)
    elif op == "ReduceProd":
        r = wide.prod(axis=axes, keepdims=keep)
    elif op == "ReduceMean":
        r = wide.mean(axis=axes, keepdims=keep)
        if x.dtype.kind in "iu":
            r = np.trunc(r)
    elif op == "ReduceMax":
        r = wide.max(axis=axes, keepdims=keep)
    elif op == "ReduceMin":
        r = wide.min(axis=axes, keepdims=keep)
    else:
        raise AssertionError(op)
    return np.asarray(r).astype(x.dtype)


def assert_close(got, want, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-3, atol=2e-3)
    elif dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want)


# ----- ReduceSum / Mean / Max / Min / Prod -----------------------------------------------------

_DTYPES = {
    "ReduceSum": [
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int32,
        np.int64,
        np.uint8,
        np.complex64,
    ],
    "ReduceMean": [
        np.float16,
        np.float32,
        np.float64,
        np.int32,
        np.int64,
        np.uint16,
        np.complex128,
    ],
    "ReduceMax": [np.float16, np.float32, np.float64, np.int8, np.int32, np.uint32],
    "ReduceMin": [np.float16, np.float32, np.float64, np.int16, np.int64, np.uint8],
    "ReduceProd": [np.float16, np.float32, np.float64, np.int32, np.int64, np.complex64],
}
_AXES = [[0], [-1], [1, 2], [-3, -1], [0, 1, 2], [2, 0]]


@pytest.mark.parametrize(("op", "dtype"), [(op, d) for op, ds in _DTYPES.items() for d in ds])
def test_reduce_matches_numpy(op, dtype):
    x = rand((2, 3, 5), dtype)
    for axes, keep, adtype in itertools.product(_AXES, (False, True), (np.int32, np.int64)):
        _descs, (y,) = run(op, [x, axes_arr(axes, adtype)], {"keep_dims": keep})
        assert_close(y, ref_reduce(op, x, axes, keep), dtype)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"])
def test_reduce_against_onnx_reference(op):
    x = rand((3, 4, 2), np.float32)
    for axes, keep in [([1], 0), ([0, -1], 1), ([-2], 1)]:
        (want,) = onnx_run(op, [x, axes_arr(axes)], {"keepdims": keep})
        _, (got,) = run(op, [x, axes_arr(axes)], {"keep_dims": bool(keep)})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"])
def test_empty_axes_noop_or_reduce_all(op):
    x = rand((2, 3), np.float32)
    # noop_with_empty_axes defaults to true in CANN: y = x.
    descs, (y,) = run(op, [x, axes_arr([])])
    assert descs[0].shape == (2, 3)
    np.testing.assert_array_equal(y, x)
    # false: reduce every axis (ONNX default).
    _, (y,) = run(op, [x, axes_arr([])], {"noop_with_empty_axes": False, "keep_dims": True})
    assert y.shape == (1, 1)
    assert_close(y, ref_reduce(op, x, [0, 1], True), np.float32)


def test_float16_sum_accumulates_wide():
    x = np.full(4096, 0.1, dtype=np.float16)
    _, (y,) = run("ReduceSum", [x, axes_arr([0])])
    want = np.float16(x.astype(np.float64).sum())
    assert y.dtype == np.float16 and y == want
    # A naive float16 running sum stalls far below the true value.
    assert abs(float(y) - 409.5) < 1.0


def test_integer_mean_truncates_toward_zero():
    x = np.array([[-3, -4], [3, 4], [-1, 0]], dtype=np.int32)
    _, (y,) = run("ReduceMean", [x, axes_arr([1])])
    np.testing.assert_array_equal(y, [-3, 3, 0])


def test_empty_reduction_identity_values():
    x = np.zeros((2, 0, 3), dtype=np.float32)
    _, (s,) = run("ReduceSum", [x, axes_arr([1])])
    _, (mx,) = run("ReduceMax", [x, axes_arr([1])])
    _, (mn,) = run("ReduceMin", [x, axes_arr([1])])
    _, (p,) = run("ReduceProd", [x, axes_arr([1])])
    np.testing.assert_array_equal(s, np.zeros((2, 3)))
    np.testing.assert_array_equal(mx, np.full((2, 3), -np.inf))
    np.testing.assert_array_equal(mn, np.full((2, 3), np.inf))
    np.testing.assert_array_equal(p, np.ones((2, 3)))
    xi = np.zeros((0, 2), dtype=np.int32)
    _, (mi,) = run("ReduceMax", [xi, axes_arr([0])])
    np.testing.assert_array_equal(mi, [np.iinfo(np.int32).min] * 2)


def test_reduce_scalar_input():
    x = np.array(2.5, dtype=np.float32)
    _, (y,) = run("ReduceSum", [x, axes_arr([], np.int32)], {"noop_with_empty_axes": False})
    assert y.shape == () and y == 2.5
    _, (y,) = run("ReduceMax", [x, axes_arr(0)])
    assert y.shape == () and y == 2.5


def test_reduce_nan_propagates():
    x = np.array([[1.0, np.nan], [2.0, 3.0]], dtype=np.float32)
    _, (y,) = run("ReduceMax", [x, axes_arr([1])])
    assert np.isnan(y[0]) and y[1] == 3.0


def test_reduce_keeps_layout_with_keep_dims():
    g = Graph("t")
    x = g.add_node("Data", name="x", output_descs=[TensorDesc(DataType.DT_FLOAT, (1, 3, 4, 4), 0)])
    a = g.add_node(
        "Data", name="a", attrs={"index": 1}, output_descs=[TensorDesc(DataType.DT_INT64, (2,))]
    )
    n = g.add_node("ReduceMean", [x.output(0), a.output(0)], attrs={"keep_dims": True})
    _, (d,) = infer_node(n, {a.output(0): axes_arr([2, 3])})
    assert d.shape == (1, 3, 1, 1) and d.format.name == "FORMAT_NCHW"


def test_reduce_errors_name_the_node():
    x = rand((2, 3), np.float32)
    infer_error("ReduceSum", [x, axes_arr([2])], match="out of range")
    infer_error("ReduceSum", [x, axes_arr([-3])], match="out of range")
    infer_error("ReduceSum", [x, axes_arr([1, -1])], match="repeats")
    infer_error("ReduceSum", [x, axes_arr([[0]])], match="1-D")
    infer_error("ReduceSum", [x, axes_arr([0], np.int16)], match="dtype")
    infer_error("ReduceSum", [x, axes_arr([0])], const=(), match="constant")
    infer_error("ReduceSum", [x > 0, axes_arr([0])], match="DT_BOOL")
    infer_error("ReduceMax", [x.astype(np.complex64), axes_arr([0])], match="DT_COMPLEX64")
    infer_error("ReduceMean", [x, axes_arr([0])], {"keep_dims": "yes"}, match="keep_dims")
    infer_error("ReduceMean", [x, axes_arr([0])], {"keepdims": True}, match="no attr")
    infer_error("ReduceMax", [x, axes_arr([1])], {"noop_with_empty_axes": 2}, match="noop")


# ----- ReduceLogSumExp / EuclideanNorm / ReduceAll / ReduceAny ---------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_reduce_log_sum_exp(dtype):
    x = (rand((3, 4), np.float64) * 3).astype(dtype)
    for axes, keep in [([1], False), ([0, 1], True), ([-2], False)]:
        _, (y,) = run("ReduceLogSumExp", [x, axes_arr(axes)], {"keep_dims": keep})
        (want,) = onnx_run(
            "ReduceLogSumExp", [x.astype(np.float64), axes_arr(axes)], {"keepdims": int(keep)}
        )
        assert_close(y, want, dtype)
    # Stable for large inputs, where exp overflows.
    big = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]], dtype=np.float32)
    _, (y,) = run("ReduceLogSumExp", [big, axes_arr([1])])
    np.testing.assert_allclose(y, [1000 + np.log(2), -1000 + np.log1p(np.exp(-1))], rtol=1e-6)
    # noop_with_empty_axes defaults to false: empty axes reduce all.
    _, (y,) = run("ReduceLogSumExp", [big[:1], axes_arr([])])
    assert y.shape == ()
    infer_error("ReduceLogSumExp", [np.ones(2, np.int32), axes_arr([0])], match="DT_INT32")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_euclidean_norm(dtype):
    x = rand((4, 3), dtype)
    for axes, keep in [([0], False), ([1], True), ([], False)]:
        _, (y,) = run("EuclideanNorm", [x, axes_arr(axes)], {"keep_dims": keep})
        ax = tuple(axes) if axes else None
        want = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=ax, keepdims=keep))
        if np.dtype(dtype).kind == "i":
            want = np.trunc(want)
        assert_close(y, want, dtype)
    infer_error("EuclideanNorm", [x.astype(np.int8), axes_arr([0])], match="DT_INT8")


def test_reduce_all_any():
    x = RNG.random((3, 4, 2)) > 0.3
    for axes, keep in [([0], False), ([1, 2], True), ([-1], False), ([], False)]:
        ax = tuple(axes) if axes else None
        _, (a,) = run("ReduceAll", [x, axes_arr(axes)], {"keep_dims": keep})
        _, (o,) = run("ReduceAny", [x, axes_arr(axes)], {"keep_dims": keep})
        np.testing.assert_array_equal(a, np.logical_and.reduce(x, axis=ax, keepdims=keep))
        np.testing.assert_array_equal(o, np.logical_or.reduce(x, axis=ax, keepdims=keep))
    infer_error("ReduceAll", [x.astype(np.float32), axes_arr([0])], match="DT_FLOAT")


# ----- ...D variants ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "base", "dtype"),
    [
        ("ReduceSumD", "ReduceSum", np.float32),
        ("ReduceSumD", "ReduceSum", np.float16),
        ("ReduceMeanD", "ReduceMean", np.float32),
        ("ReduceMaxD", "ReduceMax", np.int8),
        ("ReduceMaxD", "ReduceMax", np.float16),
        ("ReduceMinD", "ReduceMin", np.uint8),
        ("ReduceMinD", "ReduceMin", np.int32),
        ("ReduceProdD", "ReduceProd", np.int32),
        ("ReduceProdD", "ReduceProd", np.float32),
    ],
)
def test_d_variants(op, base, dtype):
    x = rand((3, 2, 4), dtype)
    for axes, keep in [([0], False), ([-1, 1], True)]:
        _, (y,) = run(op, [x], {"axes": axes, "keep_dims": keep})
        assert_close(y, ref_reduce(base, x, axes, keep), dtype)
    # Empty axes reduce every axis (no noop attr, or ReduceMeanD's noop default false).
    _, (y,) = run(op, [x], {"axes": []})
    assert_close(y, ref_reduce(base, x, [0, 1, 2], False), dtype)


def test_d_variant_attrs_and_errors():
    x = rand((3, 2), np.float32)
    _, (y,) = run("ReduceMeanD", [x], {"axes": [], "noop_with_empty_axes": True})
    np.testing.assert_array_equal(y, x)
    b = RNG.random((3, 2)) > 0.5
    _, (y,) = run("ReduceAllD", [b], {"axes": [1]})
    np.testing.assert_array_equal(y, b.all(axis=1))
    _, (y,) = run("ReduceAnyD", [b], {"axes": [0], "keep_dims": True})
    np.testing.assert_array_equal(y, b.any(axis=0, keepdims=True))
    infer_error("ReduceSumD", [x], {}, match="needs attr 'axes'")
    infer_error("ReduceSumD", [x], {"axes": [5]}, match="out of range")
    infer_error("ReduceSumD", [x], {"axes": 1}, match="axes")
    infer_error("ReduceSumD", [x.astype(np.int32)], {"axes": [0]}, match="DT_INT32")
    infer_error("ReduceProdD", [x.astype(np.float64)], {"axes": [0]}, match="DT_DOUBLE")


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    data=st.data(),
    op=st.sampled_from(["ReduceSumD", "ReduceMaxD", "ReduceMinD", "ReduceMeanD"]),
    keep=st.booleans(),
)
def test_reduce_d_property(shape, data, op, keep):
    rank = len(shape)
    axes = data.draw(
        st.lists(
            st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda a: a % rank
        )
    )
    x = RNG.standard_normal(shape).astype(np.float32)
    _, (y,) = run(op, [x], {"axes": axes, "keep_dims": keep})
    fn = {"ReduceSumD": np.sum, "ReduceMaxD": np.max, "ReduceMinD": np.min, "ReduceMeanD": np.mean}[
        op
    ]
    want = fn(x.astype(np.float64), axis=tuple(axes), keepdims=keep)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


# ----- ArgMaxV2 / ArgMin -----------------------------------------------------------------------


@pytest.mark.parametrize("op", ["ArgMaxV2", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int8, np.int64, np.uint16])
def test_arg_extremes(op, dtype):
    x = rand((3, 4, 5), dtype)
    for dim in (0, 1, -1):
        for out_dtype, np_out in ((DataType.DT_INT32, np.int32), (DataType.DT_INT64, np.int64)):
            _descs, (y,) = run(op, [x, np.array(dim, np.int32)], {"dtype": out_dtype})
            # reference: first index of the extreme, found by a Python scan
            xm = np.moveaxis(x, dim, -1)
            flat = xm.reshape(-1, xm.shape[-1]).tolist()
            pick = max if op == "ArgMaxV2" else min
            want = [row.index(pick(row)) for row in flat]
            assert y.dtype == np_out
            np.testing.assert_array_equal(y.reshape(-1), want)
            assert y.shape == xm.shape[:-1]


def test_arg_ties_and_default_dtype():
    x = np.array([[1, 5, 5, 0], [2, 2, 2, 2]], dtype=np.float32)
    descs, (y,) = run("ArgMaxV2", [x, np.array([1], np.int64)])
    assert descs[0].dtype == DataType.DT_INT64
    np.testing.assert_array_equal(y, [1, 0])
    _, (y,) = run("ArgMin", [x, np.array(1, np.int64)])
    np.testing.assert_array_equal(y, [3, 0])
    (want,) = onnx_run("ArgMax", [x], {"axis": 1, "keepdims": 0})
    _, (y,) = run("ArgMaxV2", [x, np.array(1, np.int64)])
    np.testing.assert_array_equal(y, want)


def test_arg_errors():
    x = rand((2, 3), np.float32)
    infer_error("ArgMaxV2", [x, np.array(2, np.int32)], match="out of range")
    infer_error("ArgMin", [x, np.array([0, 1], np.int32)], match="exactly one")
    infer_error("ArgMaxV2", [x, np.array(0, np.int32)], {"dtype": DataType.DT_FLOAT}, match="dtype")
    infer_error("ArgMaxV2", [np.zeros((2, 0), np.float32), np.array(1, np.int32)], match="empty")
    infer_error("ArgMin", [x.astype(np.complex64), np.array(0, np.int32)], match="COMPLEX")
    infer_error("ArgMin", [x, np.array(0, np.int32)], const=(), match="constant")


# ----- TopKV2 ----------------------------------------------------------------------------------


def ref_topk(x, k, axis, largest):
    """Python reference: per row, sort by value (desc or asc), ties by lower index first."""
    xm = np.moveaxis(x, axis, -1)
    rows = xm.reshape(-1, xm.shape[-1])
    vals, idxs = [], []
    for row in rows.tolist():
        order = sorted(range(len(row)), key=lambda i: ((-row[i] if largest else row[i]), i))[:k]
        idxs.append(order)
        vals.append([row[i] for i in order])
    shape = (*xm.shape[:-1], k)
    v = np.moveaxis(np.array(vals, dtype=x.dtype).reshape(shape), -1, axis)
    i = np.moveaxis(np.array(idxs, dtype=np.int64).reshape(shape), -1, axis)
    return v, i


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64, np.uint32]
)
def test_topk_matches_reference(dtype):
    x = rand((3, 7), dtype)  # small integer range: many ties
    for k, dim, largest in [
        (3, -1, True),
        (7, 1, False),
        (0, -1, True),
        (2, 0, True),
        (1, 0, False),
    ]:
        descs, (v, i) = run("TopKV2", [x, np.array(k, np.int32)], {"dim": dim, "largest": largest})
        want_v, want_i = ref_topk(x, k, dim, largest)
        np.testing.assert_array_equal(v, want_v)
        np.testing.assert_array_equal(i, want_i)
        assert descs[1].dtype == DataType.DT_INT32


def test_topk_against_onnx_and_int64_indices():
    x = RNG.permutation(24).astype(np.float32).reshape(2, 3, 4)  # no ties
    for axis, largest in [(-1, 1), (1, 0)]:
        want_v, want_i = onnx_run(
            "TopK", [x, np.array([2], np.int64)], {"axis": axis, "largest": largest}, n_out=2
        )
        _, (v, i) = run(
            "TopKV2",
            [x, np.array(2, np.int64)],
            {"dim": axis, "largest": bool(largest), "indices_dtype": 9},
        )
        assert i.dtype == np.int64
        np.testing.assert_array_equal(v, want_v)
        np.testing.assert_array_equal(i, want_i)


def test_topk_errors():
    x = rand((2, 3), np.float32)
    infer_error("TopKV2", [x, np.array(4, np.int32)], match="k = 4")
    infer_error("TopKV2", [x, np.array(-1, np.int32)], match="k = -1")
    infer_error("TopKV2", [x, np.array(1, np.int32)], {"dim": 2}, match="out of range")
    infer_error("TopKV2", [x, np.array(1, np.int32)], {"indices_dtype": 1}, match="indices_dtype")
    infer_error("TopKV2", [x > 0, np.array(1, np.int32)], match="DT_BOOL")
    infer_error("TopKV2", [x, np.array(1, np.int32)], const=(), match="constant")


# ----- Cumsum ----------------------------------------------------------------------------------


def ref_cumsum(x, axis, exclusive, reverse):
    xm = np.moveaxis(x, axis, -1)
    rows = xm.reshape(-1, xm.shape[-1]).tolist()
    out = []
    for row in rows:
        seq = row[::-1] if reverse else row
        acc = list(itertools.accumulate(seq))
        if exclusive:
            acc = [0, *acc[:-1]]
        out.append(acc[::-1] if reverse else acc)
    res = np.array(out, dtype=np.complex128 if x.dtype.kind == "c" else np.float64)
    return np.moveaxis(res.reshape(xm.shape), -1, axis)


@pytest.mark.parametrize(
    "dtype",
    [np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8, np.complex64],
)
def test_cumsum_matches_reference(dtype):
    x = rand((3, 4), dtype)
    for axis, exclusive, reverse in itertools.product((0, 1, -1), (False, True), (False, True)):
        _, (y,) = run(
            "Cumsum", [x, np.array(axis, np.int32)], {"exclusive": exclusive, "reverse": reverse}
        )
        want = ref_cumsum(x, axis, exclusive, reverse)
        if np.dtype(dtype).kind in "iu":
            want = want.astype(np.int64).astype(dtype)
        assert_close(y, want, dtype)
        _, (yd,) = run("CumsumD", [x], {"axis": axis, "exclusive": exclusive, "reverse": reverse})
        np.testing.assert_array_equal(yd, y)


def test_cumsum_against_onnx_and_runtime_axis():
    x = rand((2, 5), np.float32)
    (want,) = onnx_run("CumSum", [x, np.array(1, np.int64)], {"exclusive": 1, "reverse": 1})
    # axis not constant: checked by the kernel at run time
    _, (y,) = run(
        "Cumsum", [x, np.array(1, np.int64)], {"exclusive": True, "reverse": True}, const=()
    )
    np.testing.assert_allclose(y, want, rtol=1e-6)
    schema = get_schema("Cumsum")
    with pytest.raises(GeError, match="Cumsum: axis 3"):
        evaluate(
            schema,
            {"exclusive": False, "reverse": False},
            [x, np.array(3)],
            [TensorDesc(DataType.DT_FLOAT, (2, 5))],
        )


def test_cumsum_errors():
    x = rand((2, 3), np.float32)
    infer_error("Cumsum", [x, np.array(2, np.int32)], match="out of range")
    infer_error("Cumsum", [x, np.array([0, 1], np.int32)], match="single")
    infer_error("Cumsum", [x > 0, np.array(0, np.int32)], match="DT_BOOL")
    infer_error("Cumsum", [np.float32(1.0), np.array(0, np.int32)], match="rank")
    infer_error("CumsumD", [x], {"axis": -3}, match="out of range")
    infer_error("CumsumD", [x], {"exclusive": 1}, match="exclusive")
