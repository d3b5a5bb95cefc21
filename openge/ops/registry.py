"""The op registry: op type name → OpSchema, filled explicitly by ``openge.ops``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from openge.errors import PARAM_INVALID, GeError
from openge.ops.schema import OpSchema

_REGISTRY: dict[str, OpSchema] = {}


def register(schemas: Iterable[OpSchema]) -> None:
    """Add op schemas; an op type may be defined only once."""
    for schema in schemas:
        if schema.op_type in _REGISTRY:
            raise ValueError(f"op type {schema.op_type} is defined twice")
        _REGISTRY[schema.op_type] = schema


def get_schema(op_type: str) -> OpSchema:
    """The schema of ``op_type``; GeError with the closest known names when it is unknown."""
    try:
        return _REGISTRY[op_type]
    except KeyError:
        close = difflib.get_close_matches(op_type, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise GeError(
            PARAM_INVALID,
            f"op type {op_type!r} is not in openge's op catalog.{hint} "
            "docs/ops.md lists the supported ops.",
        ) from None


def has_op(op_type: str) -> bool:
    """True when ``op_type`` is registered."""
    return op_type in _REGISTRY


def all_schemas() -> list[OpSchema]:
    """Every registered schema, sorted by op type."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
