"""openge.es: GE's eager-style graph builder (GraphBuilder, TensorHolder) — es layer.

The generated op functions live in :mod:`openge.es.all` (``from openge.es.all import *``).
"""

from openge.es.builder import (
    GraphBuilder,
    TensorHolder,
    attr_scope,
    control_dependency_scope,
)
from openge.graph import DataType, Format

__all__ = [
    "DataType",
    "Format",
    "GraphBuilder",
    "TensorHolder",
    "attr_scope",
    "control_dependency_scope",
]
