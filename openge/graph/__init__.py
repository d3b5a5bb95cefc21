"""The graph IR: DataType, Format, TensorDesc, Tensor, Node, Graph (pure data + validation)."""

from openge.graph.graph import Graph, Node, Port
from openge.graph.tensor import UNKNOWN_DIM, Tensor, TensorDesc, normalize_shape
from openge.graph.types import (
    LOW_PRECISION_TYPES,
    DataType,
    Format,
    as_data_type,
    from_numpy_dtype,
    to_numpy_dtype,
)

__all__ = [
    "LOW_PRECISION_TYPES",
    "UNKNOWN_DIM",
    "DataType",
    "Format",
    "Graph",
    "Node",
    "Port",
    "Tensor",
    "TensorDesc",
    "as_data_type",
    "from_numpy_dtype",
    "normalize_shape",
    "to_numpy_dtype",
]
