"""TfIdfVectorizer against onnx.reference (every mode, skips, unigrams and bigrams)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from openge.ops.text import tfidf

POOL = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]  # unigrams 2 3 5 4, bigrams (5,6) (7,8) (6,7)
COUNTS = [0, 4]
INDEXES = [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
@pytest.mark.parametrize("weights", [[], [0.5, 1, 2, 3, 4, 5, 6]])
@pytest.mark.parametrize(("min_n", "max_n", "skip"), [(1, 2, 0), (2, 2, 3), (1, 1, 2)])
def test_tfidf_matches_onnx_reference(mode, weights, min_n, max_n, skip):
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], dtype=np.int64)
    attrs = dict(
        max_gram_length=max_n,
        min_gram_length=min_n,
        max_skip_count=skip,
        mode=mode,
        ngram_counts=COUNTS,
        ngram_indexes=INDEXES,
        pool_int64s=POOL,
    )
    if weights:
        attrs["weights"] = weights
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    if not weights and mode != "TF":
        # onnx.reference fails without weights; the spec: IDF is 1 where the count is > 0,
        # TFIDF the count itself (every weight 1), both from the TF counts
        node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **{**attrs, "mode": "TF"})
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    if not weights and mode == "IDF":
        expected = (expected > 0).astype(np.float32)
    attrs.setdefault("weights", [])
    got = tfidf(x, **attrs)
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(tfidf(x[1], **attrs), expected[1])
