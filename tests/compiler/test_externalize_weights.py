"""ExternalizeWeightsPass: constants become FileConstants whose bytes live in files."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.runtime import Model

from .models import mlp


@pytest.mark.parametrize("mode", ["1", "2"])
def test_weights_leave_the_model_and_results_stay(tmp_path, mode):
    b = mlp()
    feeds = b.feeds()
    inside = compile_graph(b.g, {})
    outside = compile_graph(b.g, {"ge.externalWeight": mode, "ge.externalWeightDir": str(tmp_path)})
    assert outside.external_weights and outside.weight_size < inside.weight_size
    assert all(n.op_type != "Const" for n in outside.graph)
    files = list(tmp_path.iterdir())
    assert files and (len(files) == 1) == (mode == "2")
    with Model(inside) as m1, Model(outside) as m2:
        np.testing.assert_array_equal(m1.execute(feeds)[0], m2.execute(feeds)[0])


def test_needs_a_folder():
    with pytest.raises(GeError, match="externalWeightDir"):
        compile_graph(mlp().g, {"ge.externalWeight": "1"})
