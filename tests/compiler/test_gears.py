"""Gear options: every check GE applies (option_utils.cc, multi_batch_options.cc) is a GeError
that names the rule and the offending value; valid options give the gears GE would."""

from __future__ import annotations

import pytest

from openge.compiler.gears import gear_spec
from openge.errors import GeError, Status
from openge.om.gears import GearKind


def _fails(options: dict[str, str], rule: str, value: str) -> GeError:
    with pytest.raises(GeError) as info:
        gear_spec(options)
    err = info.value
    assert rule in err.message, err.message
    assert value in err.message, err.message
    return err


def batch(gears: str, shape: str = "data:-1,3,8,8") -> dict[str, str]:
    return {"ge.inputShape": shape, "ge.dynamicBatchSize": gears}


def image(gears: str, shape: str = "data:1,3,-1,-1", fmt: str = "NCHW") -> dict[str, str]:
    return {"ge.inputShape": shape, "ge.dynamicImageSize": gears, "ge.inputFormat": fmt}


def dims(gears: str, shape: str = "a:-1,4;b:-1,-1", fmt: str = "ND") -> dict[str, str]:
    return {"ge.inputShape": shape, "ge.dynamicDims": gears, "ge.inputFormat": fmt}


# ----- what valid options give ---------------------------------------------------------------


def test_no_gear_option_gives_none():
    assert gear_spec({"ge.inputShape": "x:1,3"}) is None


def test_batch_gears_fill_dim_0():
    spec = gear_spec(batch("1,2,4,8,", "data:-1,3,8,8;info:-1,4;s:2"))
    assert spec.kind == GearKind.BATCH and spec.gears == ((1,), (2,), (4,), (8,))
    assert spec.shapes(2) == {"data": (4, 3, 8, 8), "info": (4, 4), "s": (2,)}


def test_image_gears_fill_h_and_w_per_format():
    spec = gear_spec(image("16,16;32,24;"))
    assert spec.kind == GearKind.IMAGE and spec.shapes(1) == {"data": (1, 3, 32, 24)}
    nhwc = gear_spec(image("16,16;32,24", "data:1,-1,-1,3", "NHWC"))
    assert nhwc.shapes(1) == {"data": (1, 32, 24, 3)}


def test_dims_gears_fill_every_minus_one_in_input_shape_order():
    spec = gear_spec(dims("1,2,3;4,5,6", "a:-1,4;b:-1,-1;B:"))
    assert spec.kind == GearKind.DIMS
    assert spec.shapes(1) == {"a": (4, 4), "b": (5, 6), "B": ()}  # "B:" is a scalar


# ----- one test per rule ----------------------------------------------------------------------


def test_rule_at_least_two_gears():
    _fails(batch("4"), "at least 2 gears", "'4'")


def test_rule_at_most_100_gears():
    _fails(batch(",".join(str(i) for i in range(1, 102))), "at most 100 gears", "101 gears")


def test_rule_same_length():
    _fails(dims("1,2,3;4,5"), "same length", "gear 4,5")


def test_rule_no_duplicates():
    _fails(batch("1,2,2"), "no duplicates", "gear 2")


def test_rule_no_negatives():
    _fails(batch("-2,4"), "gear values > 0", "-2")


def test_rule_no_zero():
    _fails(dims("1,0,3;4,5,6"), "gear values > 0", "1,0,3")


def test_rule_digits_and_commas_only_for_batch():
    _fails(batch("1;2"), "digits and commas only", "';'")
    _fails(batch("1,2.5"), "digits and commas only", "'.'")


def test_rule_digits_for_image_size():
    _fails(image("16,16;32,x"), "digits and commas only", "'x'")


def test_rule_batch_minus_one_only_at_dim_0():
    _fails(batch("1,2", "data:-1,3,-1,8"), "-1 only at dim 0", "dim 2")
    _fails(batch("1,2", "data:1,-1"), "-1 only at dim 0", "'data'")


def test_rule_batch_needs_a_dynamic_input():
    _fails(batch("1,2", "data:1,3"), "a dynamic input", "-1 at dim 0")


def test_rule_batch_scalar_input_listed():
    _fails(batch("1,2", "data:-1,3;B:"), "batch inputs have dims", "'B'")


def test_rule_image_minus_one_only_at_h_and_w():
    _fails(image("16,16;32,32", "data:-1,3,-1,-1"), "-1 only at H and W", "[-1, 3, -1, -1]")
    _fails(image("16,16;32,32", "data:1,3,-1,8"), "-1 only at H and W", "'data'")
    nhwc = image("16,16;32,32", "data:1,3,-1,-1", "NHWC")  # H, W are dims 1, 2 in NHWC
    _fails(nhwc, "-1 only at H and W", "NHWC")


def test_rule_image_size_needs_nchw_or_nhwc():
    _fails(image("16,16;32,32", fmt="ND"), "image size needs NCHW or NHWC", "'ND'")


def test_rule_image_size_gears_are_h_w():
    _fails(image("16,16,1;32,32,1"), "image size gears are h,w", "gear 16,16,1")


def test_rule_dims_one_value_per_minus_one():
    _fails(dims("1,2;3,4"), "one value per -1", "3 -1 dims")


def test_rule_dims_needs_nd():
    _fails(dims("1,2,3;4,5,6", fmt="NCHW"), "dims needs ND", "'NCHW'")


def test_rule_dims_needs_a_minus_one():
    _fails(dims("1;2", "a:2,4"), "a dynamic input", "no -1")


def test_rule_mutually_exclusive():
    options = {**batch("1,2"), "ge.dynamicDims": "1;2"}
    _fails(options, "mutually exclusive", "ge.dynamicBatchSize, ge.dynamicDims")


def test_rule_no_ranges_with_gears():
    _fails(batch("1,2", "data:1~8,3"), "no ranges with gears", "'1~8'")


def test_rule_input_shape_required():
    _fails({"ge.dynamicBatchSize": "1,2"}, "input_shape required", "ge.inputShape is empty")


def test_rule_input_shape_digits():
    _fails(batch("1,2", "data:-1,3.5"), "input_shape digits", "'3.5'")
    _fails(batch("1,2", "data:-2,3"), "input_shape digits", "'-2'")


def test_rule_input_shape_syntax():
    _fails(batch("1,2", "-1,3"), "input_shape syntax", "'-1,3'")


def test_rule_dynamic_node_type_getnext_unsupported():
    with pytest.raises(GeError) as info:
        gear_spec({**batch("1,2"), "ge.dynamicNodeType": "0"})
    assert info.value.code == Status.ACL_ERROR_FEATURE_UNSUPPORTED
    assert "ge.dynamicNodeType" in info.value.message


def test_rule_errors_are_param_invalid():
    err = _fails(batch("1,1"), "no duplicates", "1,1")
    assert err.code == Status.ACL_ERROR_GE_PARAM_INVALID
