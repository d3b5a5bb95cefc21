"""How much constant data compile-time folding may create (compiler layer).

A tiny model can ask for huge constants: three ConstantOfShape of 10^8 elements fit in a
334-byte ONNX file and would fold into a 1.2 GB model. Folding is therefore bounded; a result
past a limit is not folded and stays an op, computed at run time (in the work arena, where the
loader's own limits apply). Options (decimal byte counts):

- ``openge.constantFoldingMaxBytes``: the largest single folded result (default 512 MiB, which
  holds the biggest weight of the benchmark networks, vgg19's 411 MB fc6 matrix).
- ``openge.constantFoldingBudgetBytes``: the bytes folding may add to the model in one
  compilation — each fold adds its result minus the constant inputs only it reads (which are
  dropped), so transposing or casting a weight in place costs little and generating data from
  a shape costs all of it. Default: the larger of 256 MiB and the graph's constant bytes before
  folding (so casting every float16 weight to float32 still folds).
- ``openge.constantPropagationMaxBytes``: the total bytes of small values shape inference
  propagates (compile-time shape arithmetic) in one pass; default 64 MiB. Past it values are
  no longer propagated (and not folded).
"""

from __future__ import annotations

from collections.abc import Mapping

from openge.compiler.passes.base import PassContext
from openge.errors import PARAM_INVALID, GeError
from openge.graph import Graph

MAX_BYTES_KEY = "openge.constantFoldingMaxBytes"
BUDGET_KEY = "openge.constantFoldingBudgetBytes"
PROPAGATION_KEY = "openge.constantPropagationMaxBytes"
DEFAULT_MAX_BYTES = 512 << 20
MIN_BUDGET_BYTES = 256 << 20
DEFAULT_PROPAGATION_BYTES = 64 << 20

#: Option key → what it bounds (for options.py and the docs).
LIMIT_OPTIONS = {
    MAX_BYTES_KEY: "largest constant one fold may create, in bytes (default 512 MiB)",
    BUDGET_KEY: "bytes constant folding may add to the model (default max(256 MiB, the graph's "
    "constant bytes))",
    PROPAGATION_KEY: "bytes of compile-time values shape inference propagates per pass "
    "(default 64 MiB)",
}


def _bytes_option(options: Mapping[str, str], key: str) -> int | None:
    text = options.get(key)
    if text is None:
        return None
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise GeError(PARAM_INVALID, f"option {key} = {text!r}: write a byte count (decimal)")
    return int(text)


def max_fold_bytes(options: Mapping[str, str]) -> int:
    """The largest single result a fold may create."""
    value = _bytes_option(options, MAX_BYTES_KEY)
    return DEFAULT_MAX_BYTES if value is None else value


def propagation_limit(options: Mapping[str, str]) -> int:
    """Total bytes of values shape inference may propagate in one pass."""
    value = _bytes_option(options, PROPAGATION_KEY)
    return DEFAULT_PROPAGATION_BYTES if value is None else value


def _constant_bytes(graph: Graph) -> int:
    total = 0
    for node in graph.nodes:
        if node.op_type == "Const":
            value = node.attrs.get("value")
            if value is not None:
                total += value.numpy().nbytes
    return total


def try_charge_fold(graph: Graph, ctx: PassContext, nbytes: int) -> bool:
    """Charge ``nbytes`` of growth to this compilation's folding budget; False (nothing
    charged) when it would exceed it. The budget is fixed on first use."""
    if ctx.fold_budget is None:
        value = _bytes_option(ctx.options, BUDGET_KEY)
        ctx.fold_budget = max(MIN_BUDGET_BYTES, _constant_bytes(graph)) if value is None else value
    if ctx.folded_bytes + max(nbytes, 0) > ctx.fold_budget:
        return False
    ctx.folded_bytes += max(nbytes, 0)
    return True


__all__ = [
    "BUDGET_KEY",
    "LIMIT_OPTIONS",
    "MAX_BYTES_KEY",
    "PROPAGATION_KEY",
    "max_fold_bytes",
    "propagation_limit",
    "try_charge_fold",
]
