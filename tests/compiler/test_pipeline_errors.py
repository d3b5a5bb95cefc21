"""A pass that fails with anything but a GeError is reported as a GeError naming the pass (a
malformed graph must never escape compile_graph as a raw traceback)."""

from __future__ import annotations

import pytest

from openge.compiler import compile_graph
from openge.compiler.passes import InferShapesPass
from openge.compiler.passes.base import GraphPass
from openge.errors import INTERNAL_ERROR, GeError

from .models import Builder


class _Broken(GraphPass):
    name = "BrokenPass"

    def run(self, graph, ctx):
        raise IndexError("tuple index out of range")


def test_a_pass_raising_a_non_ge_error_becomes_a_ge_error_naming_it():
    b = Builder("g")
    g = b.done(b.op("Relu", b.input((2,))))
    with pytest.raises(GeError, match="BrokenPass failed on graph g: IndexError") as info:
        compile_graph(g, passes=[InferShapesPass(), _Broken()])
    assert info.value.code == INTERNAL_ERROR
