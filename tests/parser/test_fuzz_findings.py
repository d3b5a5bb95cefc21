"""Inputs the fuzzers found that crashed the process, kept as regression tests. Each runs in a
child process: a regression would abort the child, not the test run."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: A 497-byte ONNX model (a Slice on an input whose dim_value is -5367572089187174769, among
#: 6 other nodes) that made ONNX's C++ shape inference abort on a std::clamp assertion when
#: the dynamic-shape parser asked it for type hints.
NEGATIVE_DIM_SLICE = (
    "CAg65gMKIQoBeBICdHIiCVRyYW5zcG9zZSoNCgRwZXJtQAFAAKABBwocCgJ4aQoBaxICZXEiD0NvbnN0YW50T2ZT"
    "aGFwZQoWCgJlcQoBeAoBehIBdyIHUmVzaGFwZQo0CgJ0chICczASAnMxIgVTcGxpdCoLCgRheGlzGACgAQIqEgoL"
    "bnVtX291dHB1dHMYAqABAgoxCgJheAoCYXgSAW0iClJlZHVjZU1lYW4qGAoIa2VlcGRpbXMYgMrNjobk09nsAaAB"
    "AgoWCgF4CgJzdAoCZW4SAnNsIgVTbGljZQoYCgF4EgJ4aSIEQ2FzdCoJCgJ0bxgHoAECEgRzZWVkKh8QB0IBa0oI"
    "AQAAAAAAAABqDAoGbGVuZ3RoEgItMXABKiIIgICAgAgIBBABQgF6ShMAAAAAAAAAAAAAAAAAAAAAAAAAKhoIAhAH"
    "QgJzdEoQAAAAAAAAAAABAAAAAAAAACoaCAIQB0ICZW5KEAEAAAAAAAAAAwAAAAAAAAAqEggBEAdCAmF4SggBAAAA"
    "AAAAAFocCgF4EhcKFQgBEhEKCwiP7cnt+bOjwbUBCgIIAWIPCgFtEgoKCAgBEgQKAggCYhQKAnMwEg4KDAgBEggK"
    "AggCCgIIAmIUCgJzbBIOCgwIARIICgIIAQoCCAJCBAoAEBU="
)

_CHILD = """
import base64, sys
from openge.errors import GeError
from openge.parser import parse_onnx
try:
    parse_onnx(base64.b64decode(sys.argv[1]))
    print("parsed")
except GeError as err:
    print("GeError", err.code)
"""


def _parse_in_child(model_b64: str, timeout: int) -> None:
    """parse_onnx on the model in a child process: it exits cleanly, parsed or GeError."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, model_b64],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] in ("GeError", "parsed"), proc.stdout


def test_negative_dim_values_never_abort_the_process():
    _parse_in_child(NEGATIVE_DIM_SLICE, 120)
    assert base64.b64decode(NEGATIVE_DIM_SLICE)[:2]  # the reproducer is intact


#: A 135-byte ONNX model (Expand(X, shape) with ``shape`` a graph input declared as 10⁸
#: long) on which ONNX's shape inference, asked for type hints by the dynamic-shape parser,
#: built a 10⁸-dim output shape: minutes and gigabytes (a libFuzzer slow unit).
HUGE_EXPAND_SHAPE = (
    "CAQSDGJhY2tlbmQtdGVzdDpvChsKAVgKBXNoYXBlEgFZGgR0ZXN0IgZFeHBhbmQSBkV4cGFuZFoXCgFYEhIKEAgB"
    "EgwKAggBCgIIAwoCCAFaFgoFc2hhcGUSDQoLCAcSBwoFCIDC1y9iFwoBWBISChAIARIMCgIIAQoCCAMKAggBQgQK"
    "ABAJ"
)


def test_a_huge_declared_shape_operand_parses_quickly():
    _parse_in_child(HUGE_EXPAND_SHAPE, 60)
