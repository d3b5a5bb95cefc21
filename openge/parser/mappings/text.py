"""Text-feature ops on integer tokens (TfIdfVectorizer); string pools are refused."""

from __future__ import annotations

from collections.abc import Sequence

from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext

_ATTRS = (
    "max_gram_length",
    "min_gram_length",
    "max_skip_count",
    "mode",
    "ngram_counts",
    "ngram_indexes",
    "pool_int64s",
    "pool_strings",
    "weights",
)


@onnx_op("TfIdfVectorizer", since=9, needs=("TfIdfVectorizer",), attrs=_ATTRS, inputs=1)
def tfidf_vectorizer(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """TfIdfVectorizer with an int64 pool → TfIdfVectorizer."""
    if node.attr("pool_strings"):
        raise ctx.unsupported("string pools (openge has no string tensors)")
    attrs = {k: node.attr(k) for k in _ATTRS if k != "pool_strings" and node.attr(k) is not None}
    attrs = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in attrs.items()}
    return [ctx.emit1("TfIdfVectorizer", [node.input(0)], attrs)]
