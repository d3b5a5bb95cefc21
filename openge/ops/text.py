"""Text-feature ops on integer token ids: TfIdfVectorizer (n-gram counts, ONNX semantics)."""

from __future__ import annotations

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import DataType, TensorDesc
from openge.ops.common import check_dtype
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

_TOKEN_TYPES = frozenset({DataType.DT_INT32, DataType.DT_INT64})


def ngram_table(
    pool: list[int], counts: list[int], min_n: int, max_n: int
) -> tuple[dict[tuple[int, ...], int], set[tuple[int, ...]]]:
    """The pool's n-grams → their 0-based id (only sizes min_n..max_n), and every prefix of
    those n-grams (the walk over a row stops at the first prefix that is none)."""
    grams: dict[tuple[int, ...], int] = {}
    prefixes: set[tuple[int, ...]] = set()
    next_id = 0
    for size, start in enumerate(counts, start=1):
        end = counts[size] if size < len(counts) else len(pool)
        n_grams = max(end - start, 0) // size
        for k in range(n_grams):
            gram = tuple(pool[start + k * size : start + (k + 1) * size])
            if min_n <= size <= max_n:
                grams.setdefault(gram, next_id)
                prefixes.update(gram[:j] for j in range(1, size + 1))
            next_id += 1
    return grams, prefixes


def tfidf(
    x: np.ndarray,
    *,
    max_gram_length: int,
    min_gram_length: int,
    max_skip_count: int,
    mode: str,
    ngram_counts: list[int],
    ngram_indexes: list[int],
    pool_int64s: list[int],
    weights: list[float],
) -> np.ndarray:
    """ONNX TfIdfVectorizer on a [C] or [B, C] token tensor (float32 [size] or [B, size])."""
    size = max(ngram_indexes) + 1
    rows = x.reshape(1, -1) if x.ndim <= 1 else x
    freq = np.zeros((rows.shape[0], size), dtype=np.int64)
    grams, prefixes = ngram_table(pool_int64s, ngram_counts, min_gram_length, max_gram_length)
    if grams and x.size:
        for r, row in enumerate(rows.tolist()):
            start_n = min_gram_length
            for skip in range(1, max_skip_count + 2):
                for s in range(len(row)):
                    if s + skip * (start_n - 1) >= len(row):
                        break
                    gram: tuple[int, ...] = ()
                    for item in range(s, min(len(row), s + skip * max_gram_length), skip):
                        gram = (*gram, row[item])
                        if gram not in prefixes:
                            break
                        gid = grams.get(gram)
                        if len(gram) >= start_n and gid is not None:
                            freq[r, ngram_indexes[gid]] += 1
                if start_n == 1:
                    start_n = 2
                    if start_n > max_gram_length:
                        break
    w = np.asarray(weights, dtype=np.float32)
    if mode == "TF":
        y = freq.astype(np.float32)
    elif mode == "IDF":
        y = np.where(freq > 0, w[:size] if w.size else np.float32(1), np.float32(0))
    else:  # TFIDF
        y = freq * w[:size] if w.size else freq.astype(np.float32)
    y = np.asarray(y, dtype=np.float32)
    return y.reshape(size) if x.ndim <= 1 else y


def _infer_tfidf(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, _TOKEN_TYPES)
    x = ctx.input(0)
    a = ctx.attrs
    if len(x.shape) > 2:
        raise ctx.error(f"X must be [C] or [B, C], got {list(x.shape)}", SHAPE_INVALID)
    if not a["ngram_indexes"] or min(a["ngram_indexes"]) < 0:
        raise ctx.error("ngram_indexes must be non-empty and non-negative")
    if not 1 <= a["min_gram_length"] <= a["max_gram_length"] or a["max_skip_count"] < 0:
        raise ctx.error("needs 1 ≤ min_gram_length ≤ max_gram_length and max_skip_count ≥ 0")
    if a["weights"] and len(a["weights"]) < max(a["ngram_indexes"]) + 1:
        raise ctx.error("weights must have one value per output column")
    size = max(a["ngram_indexes"]) + 1
    shape = (size,) if len(x.shape) <= 1 else (x.shape[0], size)
    return [TensorDesc(DataType.DT_FLOAT, shape)]


def _tfidf_kernel(
    inputs,
    outputs,
    *,
    max_gram_length,
    min_gram_length,
    max_skip_count,
    mode,
    ngram_counts,
    ngram_indexes,
    pool_int64s,
    weights,
):
    outputs[0][...] = tfidf(
        np.asarray(inputs[0]),
        max_gram_length=max_gram_length,
        min_gram_length=min_gram_length,
        max_skip_count=max_skip_count,
        mode=mode,
        ngram_counts=ngram_counts,
        ngram_indexes=ngram_indexes,
        pool_int64s=pool_int64s,
        weights=weights,
    )


SCHEMAS = [
    OpSchema(
        "TfIdfVectorizer",
        inputs=[Input("x")],
        outputs=[Output("y")],
        attrs=[
            Attr("max_gram_length", AttrType.INT),
            Attr("min_gram_length", AttrType.INT),
            Attr("max_skip_count", AttrType.INT),
            Attr("mode", AttrType.STR, choices=("TF", "IDF", "TFIDF")),
            Attr("ngram_counts", AttrType.LIST_INT),
            Attr("ngram_indexes", AttrType.LIST_INT),
            Attr("pool_int64s", AttrType.LIST_INT),
            Attr("weights", AttrType.LIST_FLOAT, []),
        ],
        infer=_infer_tfidf,
        kernel=_tfidf_kernel,
        onnx="TfIdfVectorizer",
        doc="N-gram (with skips) counts of integer tokens against a pool, weighted TF, IDF or "
        "TFIDF; float32 [size] or [B, size].",
    ),
]
