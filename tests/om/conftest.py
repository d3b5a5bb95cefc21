"""Fixtures for the .om tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openge.om.plan import CompiledModel
from openge.ops import Input, OpSchema, Output, has_op, registry
from tests.om.om_models import build_model


def _same_as_input(ctx):  # pragma: no cover - never run: the om tests do not infer
    return [ctx.input(0)]


def _noop_kernel(inputs, outputs):  # pragma: no cover - never run: the om tests execute nothing
    pass


@pytest.fixture(scope="module", autouse=True)
def catalog_ops() -> Iterator[None]:
    """Make sure Add and Relu are in the catalog while the elementwise family is being written.

    The om layer only asks ``has_op``; stand-in schemas are registered when the real ones are
    missing and removed afterwards.
    """
    added = []
    for op_type, n_in in (("Add", 2), ("Relu", 1)):
        if not has_op(op_type):
            registry._REGISTRY[op_type] = OpSchema(
                op_type,
                inputs=tuple(Input(f"x{i}") for i in range(n_in)),
                outputs=(Output("y"),),
                infer=_same_as_input,
                kernel=_noop_kernel,
            )
            added.append(op_type)
    yield
    for op_type in added:
        del registry._REGISTRY[op_type]


@pytest.fixture
def model() -> CompiledModel:
    """A fresh hand-built model."""
    return build_model()
