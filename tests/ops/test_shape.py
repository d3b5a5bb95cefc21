"""Tests for openge.ops.shape: reshape family, transpose, concat/split, slicing, gathers, tile,
shape queries, fill/range and one-hot.

Every kernel is compared with a reference written here (plain NumPy / Python or
onnx.reference), never with the kernel itself.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from openge.errors import GeError
from openge.graph import DataType, Format, Graph, TensorDesc, from_numpy_dtype
from openge.ops import Trait, evaluate, get_schema, infer_node

RNG = np.random.default_rng(99)
BAD = "bad_node"
I32, I64 = np.int32, np.int64
DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.uint8,
    np.int32,
    np.int64,
    np.bool_,
    np.complex64,
]


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


def run(op, inputs, attrs=None, const=None, name="n", formats=None):
    """Infer and run ``op``; inputs in ``const`` (default: all but input 0) are constants."""
    attrs = dict(attrs or {})
    g = Graph("t")
    ports = []
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        fmt = (formats or {}).get(i, Format.FORMAT_ND)
        data = g.add_node(
            "Data",
            name=f"in{i}",
            attrs={"index": i},
            output_descs=[TensorDesc(from_numpy_dtype(a.dtype), a.shape, fmt)],
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


def run1(op, inputs, attrs=None, const=None):
    return run(op, inputs, attrs, const)[1][0]


def infer_error(op, inputs, attrs=None, const=None, match=""):
    with pytest.raises(GeError, match=f"node {BAD} \\({op}\\).*{match}"):
        run(op, inputs, attrs, const, name=BAD)


def kernel_error(op, inputs, attrs=None, const=(), match=""):
    """Bad values only known at run time: the kernel must raise a GeError naming the op."""
    with pytest.raises(GeError, match=f"{op}: .*{match}"):
        run(op, inputs, attrs, const=const)


def onnx_run(op_type, inputs, attrs=None, n_out=1, opset=18):
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


def rand(shape, dtype=np.float32):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return RNG.random(shape) > 0.5
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(0, 100, size=shape).astype(dtype)


def a(values, dtype=I64):
    return np.array(values, dtype=dtype)


# ----- Reshape family --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape_dtypes(dtype):
    x = rand((2, 3, 4), dtype)
    y = run1("Reshape", [x, a([4, -1])])
    np.testing.assert_array_equal(y, x.ravel().reshape(4, 6))


def test_reshape_zero_copies_and_minus_one():
    x = rand((2, 3, 4))
    for spec, want in [
        ([0, -1], (2, 12)),
        ([0, 0, 2, 2], (2, 3, 2, 2)),
        ([-1], (24,)),
        ([2, 0, -1], (2, 3, 4)),
        ([1, 24, 1], (1, 24, 1)),
    ]:
        (d,), (y,) = run("Reshape", [x, a(spec, I32)])
        assert d.shape == want
        np.testing.assert_array_equal(y, x.ravel().reshape(want))
    (want,) = onnx_run("Reshape", [x, a([0, -1, 2])])
    np.testing.assert_array_equal(run1("Reshape", [x, a([0, -1, 2])]), want)


def test_reshape_axis_num_axes_caffe():
    x = rand((2, 6, 4))
    # replace dims [1, 2) by [2, 3]
    (d,), (y,) = run("Reshape", [x, a([2, 3])], {"axis": 1, "num_axes": 1})
    assert d.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(y, x.reshape(2, 2, 3, 4))
    # axis=-1 appends after the last dim; num_axes=0 inserts
    (d,), _ = run("Reshape", [x, a([1])], {"axis": -1, "num_axes": 0})
    assert d.shape == (2, 6, 4, 1)
    (d,), _ = run("Reshape", [x, a([-1])], {"axis": 1})
    assert d.shape == (2, 24)


def test_reshape_errors():
    x = rand((2, 3))
    infer_error("Reshape", [x, a([4, 2])], match="6 elements")
    infer_error("Reshape", [x, a([4, -1])], match="multiple of 4")
    infer_error("Reshape", [x, a([-1, -1])], match="more than one -1")
    infer_error("Reshape", [x, a([0, 0, 0])], match="does not have")
    infer_error("Reshape", [x, a([-2, 3])], match="invalid dim")
    infer_error("Reshape", [x, a([6])], const=(), match="constant")
    infer_error("Reshape", [x, a([6], np.float32)], match="dtype")
    infer_error("Reshape", [x, a([6])], {"axis": 5}, match="axis")
    infer_error("Reshape", [x, a([6])], {"num_axes": 3}, match="num_axes")


def test_squeeze_unsqueeze_family():
    x = rand((1, 3, 1, 2))
    np.testing.assert_array_equal(run1("Squeeze", [x]), x.reshape(3, 2))
    np.testing.assert_array_equal(run1("Squeeze", [x], {"axis": [-2]}), x.reshape(1, 3, 2))
    np.testing.assert_array_equal(run1("SqueezeV2", [x], {"axis": [0]}), x.reshape(3, 1, 2))
    np.testing.assert_array_equal(run1("SqueezeV3", [x, a([0, 2])]), x.reshape(3, 2))
    (d,), _ = run("SqueezeV3", [x])
    assert d.shape == (3, 2)
    y = rand((3, 2), np.int8)
    for op, key in [("Unsqueeze", "axes"), ("UnsqueezeV2", "axis")]:
        out = run1(op, [y], {key: [0, -1]})
        np.testing.assert_array_equal(out, y.reshape(1, 3, 2, 1))
    np.testing.assert_array_equal(run1("UnsqueezeV3", [y, a([1])]), y.reshape(3, 1, 2))
    (want,) = onnx_run("Unsqueeze", [y, a([0, 3])], opset=13)
    np.testing.assert_array_equal(run1("UnsqueezeV3", [y, a([0, 3])]), want)
    for axis, want in [(0, (1, 3, 2)), (2, (3, 2, 1)), (-1, (3, 2, 1)), (-3, (1, 3, 2))]:
        np.testing.assert_array_equal(run1("ExpandDims", [y, a(axis, I32)]), y.reshape(want))


def test_squeeze_unsqueeze_errors():
    x = rand((1, 3))
    infer_error("Squeeze", [x], {"axis": [1]}, match="not 1")
    infer_error("Squeeze", [x], {"axis": [2]}, match="out of range")
    infer_error("SqueezeV3", [x, a([0], I32)], match="DT_INT32")
    infer_error("Unsqueeze", [x], {"axes": [0, 0]}, match="repeats")
    infer_error("Unsqueeze", [x], {"axes": [3]}, match="out of range")
    infer_error("UnsqueezeV3", [x, a([5])], match="out of range")
    infer_error("ExpandDims", [x, a(3, I32)], match="out of range")
    infer_error("ExpandDims", [x, a([0, 1], I32)], match="exactly one")


def test_flatten():
    x = rand((2, 3, 4, 5))
    for axis in range(-4, 5):
        (want,) = onnx_run("Flatten", [x], {"axis": axis}, opset=13)
        (d,), (y,) = run("Flatten", [x], {"axis": axis})
        assert d.shape == want.shape
        np.testing.assert_array_equal(y, want)
    infer_error("Flatten", [x], {"axis": 5}, match="out of range")
    infer_error("Flatten", [x], {"axis": -5}, match="out of range")


# ----- Transpose -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.bool_, np.complex64])
def test_transpose(dtype):
    x = rand((2, 3, 4), dtype)
    for perm in itertools.permutations(range(3)):
        want = np.empty([x.shape[p] for p in perm], dtype=x.dtype)
        for idx in itertools.product(*(range(s) for s in want.shape)):
            src = [0] * 3
            for i, p in enumerate(perm):
                src[p] = idx[i]
            want[idx] = x[tuple(src)]
        np.testing.assert_array_equal(run1("Transpose", [x, a(perm, I32)]), want)
        np.testing.assert_array_equal(run1("TransposeD", [x], {"perm": list(perm)}), want)
    np.testing.assert_array_equal(
        run1("TransposeD", [x], {"perm": [-1, 0, 1]}), x.transpose(2, 0, 1)
    )


def test_transpose_errors():
    x = rand((2, 3))
    infer_error("Transpose", [x, a([0, 0])], match="repeats")
    infer_error("Transpose", [x, a([0])], match="2 entries")
    infer_error("TransposeD", [x], {"perm": [0, 2]}, match="out of range")
    infer_error("TransposeD", [x], {}, match="needs attr 'perm'")
    infer_error("Transpose", [x, a([1, 0])], const=(), match="constant")


# ----- Concat / Pack ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_v2(dtype):
    xs = [rand((2, k, 3), dtype) for k in (1, 4, 2)]
    for axis in (1, -2):
        (d,), (y,) = run("ConcatV2", [*xs, a(axis, I32)], {"N": 3})
        assert d.shape == (2, 7, 3)
        want = np.zeros((2, 7, 3), dtype=dtype)
        want[:, 0:1], want[:, 1:5], want[:, 5:7] = xs
        np.testing.assert_array_equal(y, want)
    # N left at its default 1 is accepted for any count
    y = run1("ConcatV2", [xs[0], xs[0], a(0)])
    np.testing.assert_array_equal(y[:2], xs[0])
    np.testing.assert_array_equal(run1("ConcatD", xs, {"concat_dim": 1, "N": 3}), want)


def test_concat_keeps_layout_and_errors():
    xs = [rand((1, 2, 4, 4)), rand((1, 3, 4, 4))]
    descs, _ = run("ConcatV2", [*xs, a(1)], formats={0: Format.FORMAT_NCHW, 1: Format.FORMAT_NCHW})
    assert descs[0].format == Format.FORMAT_NCHW and descs[0].shape == (1, 5, 4, 4)
    infer_error("ConcatV2", [*xs, a(2)], match="differ in dim 1")
    infer_error("ConcatV2", [*xs, a(4)], match="out of range")
    infer_error("ConcatV2", [*xs, a(1)], {"N": 3}, match="N = 3")
    infer_error("ConcatV2", [xs[0], xs[0].astype(np.float16), a(1)], match="same dtype")
    infer_error("ConcatV2", [xs[0], rand((2, 4, 4)), a(1)], match="same rank")
    infer_error("ConcatD", xs, {}, match="concat_dim")
    infer_error("ConcatV2", [np.float32(1), np.float32(2), a(0)], match="scalars")


def test_pack():
    xs = [rand((2, 3), np.int32) for _ in range(4)]
    for axis in (0, 1, 2, -1, -3):
        np.testing.assert_array_equal(
            run1("Pack", xs, {"axis": axis, "N": 4}), np.stack(xs, axis=axis)
        )
    infer_error("Pack", xs, {"N": 3}, match="N = 3")
    infer_error("Pack", xs, {"axis": 3, "N": 4}, match="out of range")
    infer_error("Pack", [xs[0], rand((3, 2), np.int32)], {"N": 2}, match="same shape")


# ----- Split family ----------------------------------------------------------------------------


def test_split_v():
    x = rand((3, 10, 2), np.float16)
    for sizes, axis in [([2, 5, 3], 1), ([3, -1, 1], -2), ([0, 10], 1), ([1, 1, 1], 0)]:
        _descs, outs = run("SplitV", [x, a(sizes), a(axis, I32)], {"num_split": len(sizes)})
        dim = x.shape[axis]
        real = [s if s >= 0 else dim - sum(t for t in sizes if t >= 0) for s in sizes]
        bounds = np.cumsum([0, *real])
        assert len(outs) == len(sizes)
        for k, o in enumerate(outs):
            idx = np.arange(bounds[k], bounds[k + 1])
            np.testing.assert_array_equal(o, np.take(x, idx, axis=axis))
    outs = run("SplitVD", [x], {"size_splits": [4, 6], "split_dim": 1, "num_split": 2})[1]
    np.testing.assert_array_equal(outs[1], x[:, 4:])


def test_split_equal():
    x = rand((4, 6), np.int64)
    outs = run("Split", [a(1, I32), x], {"num_split": 3}, const=[0])[1]
    for k, o in enumerate(outs):
        np.testing.assert_array_equal(o, x[:, 2 * k : 2 * k + 2])
    outs = run("SplitD", [x], {"split_dim": -2, "num_split": 2})[1]
    np.testing.assert_array_equal(outs[1], x[2:])
    want = onnx_run("Split", [x], {"axis": 1, "num_outputs": 3}, n_out=3)
    for o, w in zip(run("SplitD", [x], {"split_dim": 1, "num_split": 3})[1], want, strict=True):
        np.testing.assert_array_equal(o, w)


def test_split_errors():
    x = rand((4, 6))
    infer_error("SplitV", [x, a([2, 2]), a(1, I32)], {"num_split": 2}, match="sum to 4")
    infer_error("SplitV", [x, a([2, 2, 2]), a(1, I32)], {"num_split": 2}, match="3 entries")
    infer_error("SplitV", [x, a([-1, -1]), a(1, I32)], {"num_split": 2}, match="at most one")
    infer_error("SplitV", [x, a([7, -1]), a(1, I32)], {"num_split": 2}, match="more than")
    infer_error("SplitV", [x, a([3, 3]), a(2, I32)], {"num_split": 2}, match="out of range")
    infer_error("SplitV", [x, a([3, 3]), a(1, I32)], {}, match="needs attr 'num_split'")
    infer_error("SplitD", [x], {"split_dim": 1, "num_split": 4}, match="not divisible")
    infer_error("SplitD", [x], {"split_dim": 1, "num_split": 0}, match="≥ 1")
    infer_error("Split", [a(0, I32), np.float32(1)], {"num_split": 1}, const=[0], match="scalar")


# ----- StridedSlice / Slice --------------------------------------------------------------------


def ref_strided_slice(x, begin, end, strides, bm, em, elm, nam, sam):
    """TensorFlow StridedSlice semantics, written out dim by dim (independent of Python slicing).

    Returns the result, or raises ValueError where TensorFlow reports an error.
    """
    spec = []
    n_real = sum(1 for i in range(len(begin)) if not (elm >> i) & 1 and not (nam >> i) & 1)
    has_ellipsis = False
    for i in range(len(begin)):
        if (elm >> i) & 1:
            if has_ellipsis:
                raise ValueError("two ellipses")
            has_ellipsis = True
            spec.extend([("full",)] * (x.ndim - n_real))
        elif (nam >> i) & 1:
            spec.append(("new",))
        else:
            spec.append(
                ("dim", begin[i], end[i], strides[i], (bm >> i) & 1, (em >> i) & 1, (sam >> i) & 1)
            )
    n_dims = sum(1 for s in spec if s[0] != "new")
    if n_dims > x.ndim:
        raise ValueError("too many dims")
    spec.extend([("full",)] * (x.ndim - n_dims))
    out = x
    axis = 0  # current axis in `out`
    for s in spec:
        if s[0] == "new":
            out = np.expand_dims(out, axis)
            axis += 1
            continue
        size = out.shape[axis]
        if s[0] == "full":
            axis += 1
            continue
        _, b, e, st_, bmask, emask, shrink = s
        if shrink:
            if st_ <= 0:
                raise ValueError("shrink needs a positive stride")
            k = b + size if b < 0 else b
            if not 0 <= k < size:
                raise ValueError("shrink index out of range")
            out = np.take(out, k, axis=axis)
            continue
        if st_ == 0:
            raise ValueError("zero stride")
        lo, hi = (0, size) if st_ > 0 else (-1, size - 1)

        def canon(v, masked, default, lo=lo, hi=hi, size=size):
            if masked:
                return default
            v = v + size if v < 0 else v
            return min(max(v, lo), hi)

        start = canon(b, bmask, 0 if st_ > 0 else size - 1)
        stop = canon(e, emask, size if st_ > 0 else -1)
        out = np.take(out, list(range(start, stop, st_)), axis=axis)
        axis += 1
    return out


def test_strided_slice_fixed_cases():
    x = rand((4, 5, 6), np.int32)
    cases = [
        # (begin, end, strides, masks (bm, em, elm, nam, sam), numpy index)
        ([1, -1], [3, 0], [1, -1], (0, 0, 0, 0, 0), np.s_[1:3, -1:0:-1]),
        ([0, 0, 0], [0, 0, 0], [1, 1, -2], (7, 7, 0, 0, 0), np.s_[:, :, ::-2]),
        ([0, 2], [0, 4], [1, 1], (0, 0, 1, 0, 0), np.s_[..., 2:4]),
        ([0, 1, 0], [0, 2, 0], [1, 1, 1], (0, 0, 4, 1, 0), np.s_[None, 1:2, ...]),
        ([2, 0], [3, 0], [1, 1], (2, 2, 0, 0, 1), np.s_[2, :]),
        ([-1], [0], [1], (0, 0, 0, 0, 1), np.s_[-1]),
        ([-100, 100], [100, -100], [1, -1], (0, 0, 0, 0, 0), np.s_[:, ::-1]),
        ([3], [1], [1], (0, 0, 0, 0, 0), np.s_[3:1]),
    ]
    for begin, end, strides, masks, np_index in cases:
        attrs = dict(
            zip(
                ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"),
                masks,
                strict=True,
            )
        )
        got = run1("StridedSlice", [x, a(begin), a(end), a(strides)], attrs)
        want = ref_strided_slice(x, begin, end, strides, *masks)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, x[np_index])


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
)
def test_strided_slice_property(shape, data):
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    n = data.draw(st.integers(1, len(shape) + 1))
    begin = data.draw(st.lists(st.integers(-7, 7), min_size=n, max_size=n))
    end = data.draw(st.lists(st.integers(-7, 7), min_size=n, max_size=n))
    strides = data.draw(st.lists(st.sampled_from([-3, -2, -1, 1, 2, 3]), min_size=n, max_size=n))
    masks = [data.draw(st.integers(0, (1 << n) - 1)) for _ in range(5)]
    ell = masks[2]
    masks[2] = ell & -ell  # at most one ellipsis
    try:
        want = ref_strided_slice(x, begin, end, strides, *masks)
    except ValueError:
        want = None
    attrs = dict(
        zip(
            ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"),
            masks,
            strict=True,
        )
    )
    inputs = [x, a(begin, I32), a(end, I32), a(strides, I32)]
    if want is None:
        with pytest.raises(GeError, match=f"node {BAD}"):
            run("StridedSlice", inputs, attrs, name=BAD)
    else:
        np.testing.assert_array_equal(run1("StridedSlice", inputs, attrs), want)


def test_strided_slice_errors():
    x = rand((3, 4))
    s = [x, a([0, 0]), a([1, 1]), a([1, 1])]
    infer_error("StridedSlice", [x, a([0]), a([1, 1]), a([1, 1])], match="same length")
    infer_error("StridedSlice", [x, a([0, 0]), a([1, 1]), a([1, 0])], match="is 0")
    infer_error(
        "StridedSlice",
        [x, a([5, 0]), a([6, 1]), a([1, 1])],
        {"shrink_axis_mask": 1},
        match="invalid slice",
    )
    infer_error("StridedSlice", s, {"ellipsis_mask": 3}, match="more than one ellipsis")
    infer_error("StridedSlice", s, {"begin_mask": -1}, match="begin_mask")
    infer_error("StridedSlice", s, const=[1, 2], match="input 3")


def test_slice():
    x = rand((4, 5, 6), np.uint8)
    for offsets, size in [([0, 0, 0], [4, 5, 6]), ([1, 2, 3], [2, -1, 3]), ([3, 0, 5], [1, 0, 1])]:
        got = run1("Slice", [x, a(offsets, I32), a(size, I32)])
        want = x
        for d, (o, s) in enumerate(zip(offsets, size, strict=True)):
            stop = x.shape[d] if s == -1 else o + s
            want = np.take(want, np.arange(o, stop), axis=d)
        np.testing.assert_array_equal(got, want)
    infer_error("Slice", [x, a([0, 0, 0]), a([5, 1, 1])], match="outside")
    infer_error("Slice", [x, a([0, 0]), a([1, 1])], match="3 entries")
    infer_error("Slice", [x, a([-1, 0, 0]), a([1, 1, 1])], match="≥ 0")
    infer_error("Slice", [x, a([0, 0, 0]), a([1, 1, 1])], const=[1], match="size")


# ----- Gather / Scatter ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int8, np.int64, np.bool_])
def test_gather_v2_against_onnx(dtype):
    x = rand((4, 5, 3), dtype)
    for axis, idx in [(0, [[0, -1], [2, 3]]), (1, [4, -5, 0]), (-1, 2), (2, [[-1]])]:
        ind = a(idx, I32)
        (want,) = onnx_run("Gather", [x, ind.astype(I64)], {"axis": axis}, opset=13)
        # indices known only at run time: the kernel wraps negative values
        got = run1("GatherV2", [x, ind, a(axis, I32)], const=[2])
        np.testing.assert_array_equal(got, want)


def test_gather_v2_batch_dims():
    x = rand((2, 3, 5, 4))
    idx = RNG.integers(-5, 5, size=(2, 3, 6))
    got = run1("GatherV2", [x, idx, a(2)], {"batch_dims": 2}, const=[2])
    want = np.empty((2, 3, 6, 4), dtype=x.dtype)
    for i, j, k in itertools.product(range(2), range(3), range(6)):
        want[i, j, k] = x[i, j, idx[i, j, k] % 5]
    np.testing.assert_array_equal(got, want)
    got = run1("GatherV2", [x, idx[:, 0], a(2)], {"batch_dims": -1}, const=[2])
    for i, k in itertools.product(range(2), range(6)):
        np.testing.assert_array_equal(got[i, :, k], x[i, :, idx[i, 0, k] % 5])


def test_gather_v2_errors():
    x = rand((3, 4))
    infer_error("GatherV2", [x, a([0, 4]), a(1)], match="out of range")
    infer_error("GatherV2", [x, a([0]), a(2)], match="out of range")
    infer_error("GatherV2", [x, a([0.5], np.float32), a(0)], match="dtype")
    infer_error("GatherV2", [x, a([[0]]), a(0)], {"batch_dims": 1}, match="batch_dims")
    infer_error("GatherV2", [x, a([0]), a(0)], const=[1], match="axis")
    kernel_error("GatherV2", [x, a([1, -5]), a(1)], const=[2], match="-5, out of range")
    kernel_error("GatherV2", [x, a([3]), a(0)], const=[2], match="out of range")


def test_gather_elements():
    x = rand((3, 4), np.int32)
    for dim in (0, 1, -1):
        size = (2, 4) if dim == 0 else (3, 6)  # x is (3, 4)
        ind = RNG.integers(-x.shape[dim], x.shape[dim], size=size)
        (want,) = onnx_run("GatherElements", [x, ind], {"axis": dim % 2}, opset=13)
        got = run1("GatherElements", [x, ind], {"dim": dim}, const=())
        np.testing.assert_array_equal(got, want)
    # index smaller than x in the other dims (PyTorch gather semantics)
    ind = a([[2, 0], [1, 1]])
    got = run1("GatherElements", [x, ind], {"dim": 0})
    np.testing.assert_array_equal(got, [[x[2, 0], x[0, 1]], [x[1, 0], x[1, 1]]])
    infer_error("GatherElements", [x, a([[5]])], match="out of range")
    infer_error("GatherElements", [x, a([0, 1])], match="same rank")
    infer_error("GatherElements", [x, a([[0]] * 4)], {"dim": 1}, match="larger")
    kernel_error("GatherElements", [x, a([[0, 4]])], {"dim": 1}, match="out of range")


def test_gather_nd():
    x = rand((3, 4, 2), np.float16)
    for ind in [a([[0, 1], [2, -1]]), a([[[1], [2]]]), a([[2, 3, 1]])]:
        (want,) = onnx_run("GatherND", [x, ind], opset=13)
        np.testing.assert_array_equal(run1("GatherNd", [x, ind], const=()), want)
        np.testing.assert_array_equal(run1("GatherNd", [x, ind]), want)
    # an empty index tuple selects all of x, once per index row
    got = run1("GatherNd", [x, a(np.zeros((2, 0), I64))])
    np.testing.assert_array_equal(got, np.stack([x, x]))
    infer_error("GatherNd", [x, a([[0, 4]])], match="out of range")
    infer_error("GatherNd", [x, a([[0, 0, 0, 0]])], match="rank 3")
    infer_error("GatherNd", [x, a(1)], match="rank ≥ 1")
    kernel_error("GatherNd", [x, a([[3, 0]])], match="out of range")


@pytest.mark.parametrize("reduction", ["none", "add", "mul"])
def test_scatter_elements(reduction):
    data = rand((3, 4), np.float32)
    for axis in (0, 1, -1):
        n = data.shape[axis]
        # distinct targets per column/row so "none" is well defined
        ind = np.argsort(RNG.random((n, 4 if axis == 0 else 3)), axis=0)[:2]
        ind = ind if axis == 0 else ind.T
        ind = ind - n * (RNG.random(ind.shape) > 0.5)  # some negative indices
        upd = rand(ind.shape, np.float32)
        (want,) = onnx_run(
            "ScatterElements",
            [data, ind.astype(I64), upd],
            {"axis": axis, "reduction": reduction},
            opset=18,
        )
        got = run1(
            "ScatterElements", [data, ind, upd], {"axis": axis, "reduction": reduction}, const=()
        )
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # duplicate indices accumulate with add
    got = run1(
        "ScatterElements",
        [np.zeros(3, np.int32), a([1, 1, 1]), a([2, 3, 4], I32)],
        {"reduction": "add"},
    )
    np.testing.assert_array_equal(got, [0, 9, 0])


def test_scatter_elements_errors():
    data = rand((3, 4))
    infer_error("ScatterElements", [data, a([[0]]), rand((1, 2))], match="same shape")
    infer_error("ScatterElements", [data, a([[0]]), a([[1]], I32)], match="same dtype")
    infer_error("ScatterElements", [data, a([[3]]), rand((1, 1))], match="out of range")
    infer_error(
        "ScatterElements", [data, a([[0]]), rand((1, 1))], {"reduction": "avg"}, match="reduction"
    )
    kernel_error("ScatterElements", [data, a([[-4]]), rand((1, 1))], match="out of range")


@pytest.mark.parametrize("reduction", ["max", "min"])
def test_scatter_elements_max_min(reduction):
    data = rand((3, 4))
    idx = a([[0, 2], [0, 1], [2, 2]])  # repeated targets in a row: every update counts
    upd = rand((3, 2))
    y = run1("ScatterElements", [data, idx, upd], {"axis": 1, "reduction": reduction})
    expected = data.copy()
    pick = max if reduction == "max" else min
    for i in range(3):
        for j in range(2):
            expected[i, idx[i, j]] = pick(expected[i, idx[i, j]], upd[i, j])
    np.testing.assert_array_equal(y, expected)


# ----- Tile / BroadcastTo / Expand -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile_broadcast(dtype):
    x = rand((2, 1, 3), dtype)
    y = run1("Tile", [x, a([2, 3, 1], I32)])
    want = np.concatenate([np.concatenate([x] * 3, axis=1)] * 2, axis=0)
    np.testing.assert_array_equal(y, want)
    assert run1("Tile", [x, a([0, 1, 1])]).shape == (0, 1, 3)
    y = run1("BroadcastTo", [x, a([4, 2, 5, 3])])
    for i, j, k, m in itertools.product(range(4), range(2), range(5), range(3)):
        assert y[i, j, k, m] == x[j, 0, m]
    (want,) = onnx_run("Expand", [x, a([4, 1])], opset=13)
    np.testing.assert_array_equal(run1("Expand", [x, a([4, 1])]), want)


def test_tile_broadcast_errors():
    x = rand((2, 3))
    infer_error("Tile", [x, a([2])], match="2 non-negative")
    infer_error("Tile", [x, a([2, -1])], match="non-negative")
    infer_error("BroadcastTo", [x, a([4, 3])], match="cannot be broadcast")
    infer_error("BroadcastTo", [x, a([3])], match="cannot be broadcast")
    infer_error("Expand", [x, a([4, 1, 2])], match="cannot be broadcast")
    infer_error("Expand", [x, a([4], np.float32)], match="dtype")


# ----- Shape / Size / Rank ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_shape_size_rank(dtype):
    x = rand((2, 0, 5), dtype)
    (d,), (y,) = run("Shape", [x])
    assert d.dtype == DataType.DT_INT32 and d.shape == (3,)
    np.testing.assert_array_equal(y, [2, 0, 5])
    y = run1("Shape", [x], {"dtype": 9})
    assert y.dtype == np.int64
    y = run1("Size", [rand((3, 4), dtype)])
    assert y.shape == () and y.dtype == np.int32 and y == 12
    assert run1("Size", [x], {"dtype": DataType.DT_INT64}).dtype == np.int64
    y = run1("Rank", [x])
    assert y.shape == () and y == 3


def test_shape_kernel_runs_on_any_array_of_the_shape():
    """The compiler folds Shape by running its kernel on a dummy of the input's shape."""
    for op in ("Shape", "Size", "Rank"):
        assert get_schema(op).has(Trait.SHAPE_ONLY)
    schema = get_schema("Shape")
    dummy = np.broadcast_to(np.zeros((), np.float32), (7, 1, 3))
    (y,) = evaluate(schema, {"dtype": 3}, [dummy], [TensorDesc(DataType.DT_INT32, (3,))])
    np.testing.assert_array_equal(y, [7, 1, 3])
    (y,) = evaluate(schema, {"dtype": 9}, [np.empty(())], [TensorDesc(DataType.DT_INT64, (0,))])
    assert y.shape == (0,)


def test_shape_errors():
    infer_error("Shape", [rand((2,))], {"dtype": 1}, match="dtype")
    infer_error("Size", [rand((2,))], {"dtype": "int32"}, match="dtype")


# ----- Fill / Range / ZerosLike / OnesLike -----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_zeros_ones(dtype):
    value = rand((), dtype)
    (d,), (y,) = run("Fill", [a([2, 3], I32), value], const=[0])
    assert d.dtype == from_numpy_dtype(np.dtype(dtype)) and y.shape == (2, 3)
    assert (y == value).all()
    x = rand((3, 2), dtype)
    z = run1("ZerosLike", [x])
    o = run1("OnesLike", [x])
    assert z.dtype == x.dtype and z.shape == x.shape and not z.any()
    assert o.dtype == x.dtype and (o == np.ones((), dtype)).all()


def test_fill_errors():
    infer_error("Fill", [a([2, -1]), np.float32(1)], const=[0], match="≥ 0")
    infer_error("Fill", [a([2]), np.ones(2, np.float32)], const=[0], match="scalar")
    infer_error("Fill", [a([2]), np.float32(1)], const=(), match="constant")


@pytest.mark.parametrize(
    ("start", "limit", "delta", "dtype"),
    [
        (0, 10, 3, I32),
        (10, -3, -4, I64),
        (5, 5, 1, I32),
        (5, 1, 1, I64),
        (1.0, 2.0, 0.3, np.float32),
        (-1.5, 1.0, 0.25, np.float64),
        (2.0, -2.0, -0.5, np.float16),
    ],
)
def test_range(start, limit, delta, dtype):
    vals = [np.array(v, dtype=dtype) for v in (start, limit, delta)]
    (want,) = onnx_run("Range", vals, opset=11)
    got = run1("Range", vals, const=[0, 1, 2])
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3)


def test_range_errors():
    one = np.array(1, I32)
    infer_error("Range", [one, one, np.array(0, I32)], const=[0, 1, 2], match="delta")
    infer_error("Range", [one, np.array(2, I64), one], const=[0, 1, 2], match="same dtype")
    infer_error("Range", [one, one, one], const=[0, 1], match="constant")
    infer_error("Range", [one, a([1, 2], I32), one], const=[0, 1, 2], match="scalar")
    infer_error("Range", [np.array(True)] * 3, const=[0, 1, 2], match="DT_BOOL")


# ----- ReverseV2 / OneHot ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.bool_])
def test_reverse_v2(dtype):
    x = rand((2, 3, 4), dtype)
    for axes in ([], [0], [-1], [0, 2], [1, 0, 2]):
        want = x
        for ax in axes:
            n = x.shape[ax]
            want = np.take(want, np.arange(n - 1, -1, -1), axis=ax)
        np.testing.assert_array_equal(run1("ReverseV2", [x, a(axes, I32)]), want)
        np.testing.assert_array_equal(run1("ReverseV2", [x, a(axes, I32)], const=()), want)
    infer_error("ReverseV2", [x, a([3])], match="out of range")
    infer_error("ReverseV2", [x, a([0, -3])], match="repeats")
    kernel_error("ReverseV2", [x, a([5])], match="not valid")


def ref_one_hot(x, depth, on, off, axis):
    """TensorFlow semantics: indices outside [0, depth) give an all-off row."""
    out = np.full((*x.shape, depth), off, dtype=np.asarray(on).dtype)
    for idx in itertools.product(*(range(s) for s in x.shape)):
        v = int(x[idx])
        if 0 <= v < depth:
            out[(*idx, v)] = on
    return np.moveaxis(out, -1, axis if axis >= 0 else x.ndim)


@pytest.mark.parametrize("xdtype", [np.uint8, I32, I64])
def test_one_hot(xdtype):
    x = np.array([[0, 3, 1], [2, 7, 0]]).astype(xdtype)
    if np.dtype(xdtype).kind == "i":
        x[0, 1] = -1
    for axis, vdtype in [(-1, np.float32), (0, I32), (1, np.bool_), (2, np.float16)]:
        on, off = np.array(1, vdtype), np.array(0, vdtype)
        if vdtype != np.bool_:
            on, off = np.array(5, vdtype), np.array(-2, vdtype)
        got = run1("OneHot", [x, a(4, I32), on, off], {"axis": axis}, const=[1])
        np.testing.assert_array_equal(got, ref_one_hot(x, 4, on, off, axis))


def test_one_hot_errors():
    x = a([0, 1], I32)
    on, off = np.float32(1), np.float32(0)
    infer_error("OneHot", [x, a(-1, I32), on, off], const=[1], match="depth")
    infer_error("OneHot", [x, a(3, I32), on, np.int32(0)], const=[1], match="same dtype")
    infer_error("OneHot", [x, a(3, I32), on, off], {"axis": 2}, const=[1], match="axis")
    infer_error("OneHot", [x.astype(np.float32), a(3, I32), on, off], const=[1], match="dtype")
    infer_error("OneHot", [x, a(3, I32), np.ones(2, np.float32), off], const=[1], match="scalar")
    infer_error("OneHot", [x, a(3, I32), on, off], const=(), match="constant")


def test_every_shape_op_is_covered():
    from openge.ops import shape

    tested = {
        "Reshape",
        "Squeeze",
        "SqueezeV2",
        "SqueezeV3",
        "Unsqueeze",
        "UnsqueezeV2",
        "UnsqueezeV3",
        "ExpandDims",
        "Flatten",
        "Transpose",
        "TransposeD",
        "ConcatV2",
        "ConcatD",
        "Pack",
        "SplitV",
        "SplitVD",
        "Split",
        "SplitD",
        "StridedSlice",
        "Slice",
        "GatherV2",
        "GatherElements",
        "GatherNd",
        "ScatterElements",
        "Tile",
        "BroadcastTo",
        "Expand",
        "Shape",
        "Size",
        "Rank",
        "Fill",
        "Range",
        "ZerosLike",
        "OnesLike",
        "ReverseV2",
        "OneHot",
    }
    assert {s.op_type for s in shape.SCHEMAS} == tested
    for s in shape.SCHEMAS:
        assert s.doc and s.onnx
