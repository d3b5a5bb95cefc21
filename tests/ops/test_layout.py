"""TransData: NCHW ↔ NHWC ↔ NC1HWC0 and ND/NCHW/NHWC ↔ FRACTAL_NZ against loop-based references."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openge.errors import GeError
from openge.graph import DataType, Format, Graph, TensorDesc, from_numpy_dtype
from openge.ops import evaluate, get_schema, infer_node
from openge.ops.layout import SUPPORTED_PAIRS, cube_c0

NCHW, NHWC, ND = Format.FORMAT_NCHW, Format.FORMAT_NHWC, Format.FORMAT_ND
NC1HWC0, NZ = Format.FORMAT_NC1HWC0, Format.FORMAT_FRACTAL_NZ
SCHEMA = get_schema("TransData")
RNG = np.random.default_rng(0)


# ----- independent references: explicit per-element loops, no reshape/transpose tricks -------


def ref_to_5hd(x: np.ndarray, fmt: Format, c0: int) -> np.ndarray:
    if fmt == NHWC:
        x = np.moveaxis(x, 3, 1)
    n, c, h, w = x.shape
    out = np.zeros((n, math.ceil(c / c0), h, w, c0), dtype=x.dtype)
    for ch in range(c):
        out[:, ch // c0, :, :, ch % c0] = x[:, ch]
    return out


def ref_from_5hd(y: np.ndarray, fmt: Format, c: int) -> np.ndarray:
    n, _, h, w, c0 = y.shape
    out = np.zeros((n, c, h, w), dtype=y.dtype)
    for ch in range(c):
        out[:, ch] = y[:, ch // c0, :, :, ch % c0]
    return np.moveaxis(out, 1, 3) if fmt == NHWC else out


def ref_to_nz(x: np.ndarray, w0: int) -> np.ndarray:
    one_d = x.ndim == 1
    mat = x[None, :] if one_d else x
    *batch, h, w = mat.shape
    out = np.zeros((*batch, math.ceil(w / w0), math.ceil(h / 16), 16, w0), dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            out[..., j // w0, i // 16, i % 16, j % w0] = mat[..., i, j]
    return out


def ref_from_nz(y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    w0 = y.shape[-1]
    mat_shape = (1, shape[0]) if len(shape) == 1 else shape
    h, w = mat_shape[-2:]
    out = np.zeros(mat_shape, dtype=y.dtype)
    for i in range(h):
        for j in range(w):
            out[..., i, j] = y[..., j // w0, i // 16, i % 16, j % w0]
    return out.reshape(shape)


# ----- helpers -----------------------------------------------------------------------------------


def rand(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind in "iu":
        return RNG.integers(1, 100, size=shape).astype(dtype)
    return (RNG.random(shape) + 0.5).astype(dtype)


def make_node(
    desc: TensorDesc,
    src: str,
    dst: str,
    *,
    preset: TensorDesc | None = None,
    name: str = "trans",
    **extra: object,
):
    """A Data → TransData graph; returns the TransData node (not inferred yet)."""
    g = Graph("g")
    data = g.add_node("Data", name="x", attrs={"index": 0}, output_descs=[desc])
    node = g.add_node(
        "TransData",
        [data.output(0)],
        name=name,
        attrs={"src_format": src, "dst_format": dst, **extra},
    )
    if preset is not None:
        node.output_descs = [preset]
    return node


def run(desc: TensorDesc, x: np.ndarray, src: str, dst: str, **kw: object):
    node = make_node(desc, src, dst, **kw)
    attrs, descs = infer_node(node)
    (y,) = evaluate(SCHEMA, attrs, [x], descs)
    assert y.shape == descs[0].shape
    assert y.dtype == x.dtype
    return y, descs[0]


def plain_desc(x: np.ndarray, fmt: Format, **kw: object) -> TensorDesc:
    return TensorDesc(from_numpy_dtype(x.dtype), x.shape, fmt, **kw)


def expect_error(node, *fragments: str) -> GeError:
    with pytest.raises(GeError) as info:
        infer_node(node)
    msg = str(info.value)
    assert node.name in msg and "TransData" in msg
    for frag in fragments:
        assert frag in msg, msg
    return info.value


# ----- C0 rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "c0"),
    [
        (DataType.DT_FLOAT16, 16),
        (DataType.DT_FLOAT, 16),
        (DataType.DT_DOUBLE, 16),
        (DataType.DT_INT32, 16),
        (DataType.DT_INT64, 16),
        (DataType.DT_INT16, 16),
        (DataType.DT_INT8, 32),
        (DataType.DT_UINT8, 32),
        (DataType.DT_BOOL, 32),
    ],
)
def test_c0_follows_ge_cube_size(dtype: DataType, c0: int) -> None:
    assert cube_c0(dtype) == c0
    node = make_node(TensorDesc(dtype, (1, 3, 2, 2), NCHW), "NCHW", "NC1HWC0")
    _, (d,) = infer_node(node)
    assert d.shape == (1, 1, 2, 2, c0)


# ----- NC1HWC0 ---------------------------------------------------------------------------------

DTYPES = [np.float32, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1, 3, 16, 17, 33])
@pytest.mark.parametrize("fmt", [NCHW, NHWC])
def test_to_5hd_and_back(dtype: type, c: int, fmt: Format) -> None:
    shape = (2, c, 3, 5) if fmt == NCHW else (2, 3, 5, c)
    x = rand(shape, dtype)
    c0 = cube_c0(from_numpy_dtype(x.dtype))
    y, d = run(plain_desc(x, fmt), x, fmt.layout_name, "NC1HWC0")
    np.testing.assert_array_equal(y, ref_to_5hd(x, fmt, c0))
    assert d.format == NC1HWC0
    assert d.origin_format == fmt and d.origin_shape == shape
    # the padded channels are zeros
    assert (
        not y.reshape(2, -1, 3, 5, c0).transpose(0, 2, 3, 1, 4).reshape(2, 3, 5, -1)[..., c:].any()
    )
    # inverse (C from the input's origin shape), to both plain layouts
    for back in (NCHW, NHWC):
        z, dz = run(d, y, "NC1HWC0", back.layout_name)
        np.testing.assert_array_equal(z, ref_from_5hd(y, back, c))
        assert dz.format == back
        expected = x if back == fmt else np.moveaxis(x, *((1, 3) if fmt == NCHW else (3, 1)))
        np.testing.assert_array_equal(z, expected)


def test_inverse_takes_c_from_preset_output_desc() -> None:
    y = rand((1, 2, 2, 2, 16), np.float32)
    desc = TensorDesc(DataType.DT_FLOAT, y.shape, NC1HWC0)  # no origin shape
    preset = TensorDesc(DataType.DT_FLOAT, (1, 2, 2, 17), NHWC)
    z, d = run(desc, y, "NC1HWC0", "NHWC", preset=preset)
    assert d.shape == (1, 2, 2, 17)
    np.testing.assert_array_equal(z, ref_from_5hd(y, NHWC, 17))


def test_inconsistent_preset_and_origin_are_ignored() -> None:
    y = rand((1, 2, 2, 2, 16), np.float32)
    # origin says C=40 (needs C1=3): inconsistent with C1=2, so it is not used
    desc = TensorDesc(DataType.DT_FLOAT, y.shape, NC1HWC0, origin_format=NCHW)
    desc = replace(desc, origin_shape=(1, 40, 2, 2))
    preset = TensorDesc(DataType.DT_FLOAT, (1, 3, 2, 2), NCHW)  # C=3 needs C1=1
    z, d = run(desc, y, "NC1HWC0", "NCHW", preset=preset)
    assert d.shape == (1, 32, 2, 2)  # fallback: no padding assumed
    np.testing.assert_array_equal(z, ref_from_5hd(y, NCHW, 32))


def test_inverse_without_origin_assumes_no_padding() -> None:
    y = rand((2, 3, 1, 4, 32), np.int8)
    z, d = run(TensorDesc(DataType.DT_INT8, y.shape, ND), y, "NC1HWC0", "NCHW")
    assert d.shape == (2, 96, 1, 4) and d.format == NCHW
    np.testing.assert_array_equal(z, ref_from_5hd(y, NCHW, 96))


def test_nchw_nhwc_transpose() -> None:
    x = rand((2, 3, 4, 5), np.float16)
    y, d = run(plain_desc(x, NCHW), x, "NCHW", "NHWC")
    np.testing.assert_array_equal(y, np.transpose(x, (0, 2, 3, 1)))
    assert d.format == NHWC and d.shape == (2, 4, 5, 3)
    z, d2 = run(d, y, "NHWC", "NCHW")
    np.testing.assert_array_equal(z, x)
    assert d2.format == NCHW


def test_read_only_and_non_contiguous_inputs() -> None:
    base = rand((2, 6, 4, 10), np.float32)
    x = base[:, ::2, :, ::2]
    x.flags.writeable = False
    before = x.copy()
    y, _ = run(plain_desc(x, NCHW), x, "NCHW", "NC1HWC0")
    np.testing.assert_array_equal(y, ref_to_5hd(np.ascontiguousarray(x), NCHW, 16))
    np.testing.assert_array_equal(x, before)
    yt = np.asfortranarray(y)
    yt.flags.writeable = False
    z, _ = run(
        TensorDesc(DataType.DT_FLOAT, y.shape, NC1HWC0),
        yt,
        "NC1HWC0",
        "NHWC",
        preset=TensorDesc(DataType.DT_FLOAT, (2, 4, 5, 3), NHWC),
    )
    np.testing.assert_array_equal(z, np.transpose(x, (0, 2, 3, 1)))


def test_unknown_dims_stay_unknown() -> None:
    node = make_node(TensorDesc(DataType.DT_FLOAT, (-1, 3, -1, 5), NCHW), "NCHW", "NC1HWC0")
    _, (d,) = infer_node(node)
    assert d.shape == (-1, 1, -1, 5, 16)
    node = make_node(TensorDesc(DataType.DT_FLOAT16, (4, -1), ND), "ND", "FRACTAL_NZ")
    _, (d,) = infer_node(node)
    assert d.shape == (-1, 1, 16, 16)


# ----- FRACTAL_NZ ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int8, np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(5,), (3, 7), (16, 16), (17, 33), (2, 3, 20, 40)])
def test_nd_to_nz_and_back(dtype: type, shape: tuple[int, ...]) -> None:
    x = rand(shape, dtype)
    w0 = cube_c0(from_numpy_dtype(x.dtype))
    y, d = run(plain_desc(x, ND), x, "ND", "FRACTAL_NZ")
    np.testing.assert_array_equal(y, ref_to_nz(x, w0))
    assert d.format == NZ and d.origin_shape == shape and d.origin_format == ND
    assert y.shape[-2:] == (16, w0)
    z, dz = run(d, y, "FRACTAL_NZ", "ND")
    assert dz.shape == shape and dz.format == ND
    np.testing.assert_array_equal(z, ref_from_nz(y, shape))
    np.testing.assert_array_equal(z, x)


def test_nz_one_d_layout_matches_ge() -> None:
    # GE: [N] -> [ceil(N / W0), 1, 16, W0]
    node = make_node(TensorDesc(DataType.DT_FLOAT16, (40,), ND), "ND", "FRACTAL_NZ")
    _, (d,) = infer_node(node)
    assert d.shape == (3, 1, 16, 16)


def test_nz_inverse_without_origin_assumes_no_padding() -> None:
    y = rand((2, 3, 16, 16), np.float32)
    z, d = run(TensorDesc(DataType.DT_FLOAT, y.shape, NZ), y, "FRACTAL_NZ", "ND")
    assert d.shape == (48, 32)
    np.testing.assert_array_equal(z, ref_from_nz(y, (48, 32)))


@pytest.mark.parametrize("fmt", [NCHW, NHWC])
def test_4d_plain_to_nz_and_back(fmt: Format) -> None:
    x = rand((2, 3, 5, 18), np.float32)
    y, d = run(plain_desc(x, fmt), x, fmt.layout_name, "FRACTAL_NZ")
    np.testing.assert_array_equal(y, ref_to_nz(x, 16))
    assert d.origin_format == fmt
    z, dz = run(d, y, "FRACTAL_NZ", fmt.layout_name)
    assert dz.format == fmt
    np.testing.assert_array_equal(z, x)


# ----- every supported pair, and the rejected ones ---------------------------------------------


def _input_for(src: Format, dst: Format) -> tuple[np.ndarray, TensorDesc, np.ndarray]:
    """An input in ``src`` plus the expected output, built from a plain NCHW / ND tensor."""
    if src in (NCHW, NHWC) and dst in (NCHW, NHWC, NC1HWC0):
        x = rand((2, 5, 3, 4) if src == NCHW else (2, 3, 4, 5), np.float32)
        if dst == NC1HWC0:
            return x, plain_desc(x, src), ref_to_5hd(x, src, 16)
        return x, plain_desc(x, src), np.moveaxis(x, *((1, 3) if src == NCHW else (3, 1)))
    if src == NC1HWC0:
        plain = rand((2, 5, 3, 4), np.float32)
        y = ref_to_5hd(plain, NCHW, 16)
        desc = replace(
            TensorDesc(DataType.DT_FLOAT, y.shape, NC1HWC0, origin_format=NCHW),
            origin_shape=plain.shape,
        )
        return y, desc, ref_from_5hd(y, dst, 5)
    if dst == NZ:
        x = rand((2, 3, 17, 9) if src != ND else (17, 9), np.float32)
        return x, plain_desc(x, src), ref_to_nz(x, 16)
    plain_shape = (2, 3, 17, 9) if dst != ND else (17, 9)
    plain = rand(plain_shape, np.float32)
    y = ref_to_nz(plain, 16)
    desc = replace(
        TensorDesc(DataType.DT_FLOAT, y.shape, NZ, origin_format=dst), origin_shape=plain_shape
    )
    return y, desc, plain


@pytest.mark.parametrize(("src", "dst"), sorted(SUPPORTED_PAIRS), ids=lambda f: f.layout_name)
def test_every_supported_pair(src: Format, dst: Format) -> None:
    x, desc, expected = _input_for(src, dst)
    y, d = run(desc, x, src.layout_name, dst.layout_name)
    assert d.format == dst
    np.testing.assert_array_equal(y, expected)


def test_format_names_accept_ge_spellings() -> None:
    x = rand((1, 2, 2, 2), np.float32)
    y, d = run(plain_desc(x, NCHW), x, "FORMAT_NCHW", "nc1hwc0")
    assert d.format == NC1HWC0
    np.testing.assert_array_equal(y, ref_to_5hd(x, NCHW, 16))


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("NCHW", "NCHW"),
        ("NC1HWC0", "FRACTAL_NZ"),
        ("ND", "NC1HWC0"),
        ("HWCN", "NCHW"),
        ("NCHW", "FRACTAL_Z"),
        ("NCDHW", "NDHWC"),
        ("FRACTAL_NZ", "NC1HWC0"),
    ],
)
def test_unsupported_pairs_raise(src: str, dst: str) -> None:
    node = make_node(TensorDesc(DataType.DT_FLOAT, (1, 2, 3, 4), ND), src, dst)
    err = expect_error(node, "not supported", "NCHW->NC1HWC0")
    assert err.name == "ACL_ERROR_FEATURE_UNSUPPORTED"


def test_unknown_format_name_raises() -> None:
    node = make_node(TensorDesc(DataType.DT_FLOAT, (1, 2, 3, 4), NCHW), "NCHW", "NCWH")
    expect_error(node, "dst_format", "'NCWH'")


def test_bad_attrs_raise() -> None:
    desc = TensorDesc(DataType.DT_FLOAT, (1, 2, 3, 4), NCHW)
    expect_error(make_node(desc, "NCHW", "NC1HWC0", groups=2), "groups")
    expect_error(make_node(desc, "NCHW", "NC1HWC0", dst_subformat=1), "dst_subformat")
    expect_error(make_node(desc, 3, "NC1HWC0"), "src_format")  # type: ignore[arg-type]
    g = Graph("g")
    data = g.add_node("Data", attrs={"index": 0}, output_descs=[desc])
    node = g.add_node("TransData", [data.output(0)], name="no_dst", attrs={"src_format": "NCHW"})
    expect_error(node, "dst_format")


@pytest.mark.parametrize(
    ("desc", "src", "dst", "fragment"),
    [
        (TensorDesc(DataType.DT_FLOAT, (2, 3, 4), NCHW), "NCHW", "NC1HWC0", "rank 4"),
        (TensorDesc(DataType.DT_FLOAT, (2, 3, 4, 5, 6, 7), ND), "NHWC", "NCHW", "rank 4"),
        (TensorDesc(DataType.DT_FLOAT, (1, 1, 2, 2, 8), NC1HWC0), "NC1HWC0", "NCHW", "C0 = 16"),
        (TensorDesc(DataType.DT_INT8, (1, 1, 2, 2, 16), NC1HWC0), "NC1HWC0", "NHWC", "C0 = 32"),
        (TensorDesc(DataType.DT_FLOAT, (1, 2, 2, 16), NC1HWC0), "NC1HWC0", "NHWC", "rank 5"),
        (TensorDesc(DataType.DT_FLOAT, (2, 16, 16), NZ), "FRACTAL_NZ", "ND", "rank ≥ 4"),
        (TensorDesc(DataType.DT_INT8, (1, 1, 16, 16), NZ), "FRACTAL_NZ", "ND", "[16, 32]"),
        (TensorDesc(DataType.DT_FLOAT, (1, 1, 16, 16), NZ), "FRACTAL_NZ", "NCHW", "rank-6"),
        (TensorDesc(DataType.DT_FLOAT, (), ND), "ND", "FRACTAL_NZ", "scalar"),
    ],
)
def test_bad_shapes_raise(desc: TensorDesc, src: str, dst: str, fragment: str) -> None:
    err = expect_error(make_node(desc, src, dst), fragment)
    assert err.name == "ACL_ERROR_GE_SHAPE_INVALID"


def test_input_format_must_match_src_format() -> None:
    desc = TensorDesc(DataType.DT_FLOAT, (1, 2, 3, 4), NHWC)
    expect_error(make_node(desc, "NCHW", "NC1HWC0"), "format NHWC", "src_format is NCHW")
    # an ND-declared input is taken to be in src_format
    infer_node(make_node(replace(desc, format=ND, origin_format=ND), "NCHW", "NC1HWC0"))


def test_bad_dtype_raises() -> None:
    desc = TensorDesc(DataType.DT_STRING, (1, 2, 3, 4), NCHW)
    err = expect_error(make_node(desc, "NCHW", "NHWC"), "DT_STRING")
    assert err.name == "ACL_ERROR_GE_DATATYPE_INVALID"


# ----- property: any shape round-trips --------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    dims=st.lists(st.integers(1, 20), min_size=4, max_size=4),
    fmt=st.sampled_from([NCHW, NHWC]),
    dtype=st.sampled_from([np.float16, np.int8, np.float32]),
)
def test_round_trip_property(dims: list[int], fmt: Format, dtype: type) -> None:
    x = rand(tuple(dims), dtype)
    y, d = run(plain_desc(x, fmt), x, fmt.layout_name, "NC1HWC0")
    z, _ = run(d, y, "NC1HWC0", fmt.layout_name)
    np.testing.assert_array_equal(z, x)
    nz, dn = run(plain_desc(x, ND), x, "ND", "FRACTAL_NZ")
    back, _ = run(dn, nz, "FRACTAL_NZ", "ND")
    np.testing.assert_array_equal(back, x)
