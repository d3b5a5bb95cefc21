"""CompiledGraphSummary (``GetCompiledGraphSummary``): sizes, shapes, external weight files."""

from __future__ import annotations

import os
from dataclasses import dataclass

from openge.graph import DataType
from openge.om.plan import CompiledModel


@dataclass(frozen=True)
class CompiledGraphSummary:
    """What GE's CompiledGraphSummary reports about a compiled graph."""

    is_static: bool
    const_memory_size: int
    feature_memory_size: int
    output_shapes: list[list[int]]
    output_dtypes: list[DataType]
    external_weight_paths: list[str]
    stream_num: int = 1
    event_num: int = 0

    # GE-style accessors for scripts written against the C++/Python API.
    def get_const_memory_size(self) -> int:
        """Weight bytes."""
        return self.const_memory_size

    def get_feature_memory_size(self) -> int:
        """Work arena bytes."""
        return self.feature_memory_size

    def get_output_shapes(self) -> list[list[int]]:
        """Output shapes."""
        return self.output_shapes


def summarize(compiled: CompiledModel) -> CompiledGraphSummary:
    """The summary of a compiled model."""
    paths: list[str] = []
    for w in compiled.external_weights:
        path = os.path.join(w.directory, w.location) if w.directory else w.location
        if path not in paths:
            paths.append(path)
    return CompiledGraphSummary(
        is_static=not compiled.is_dynamic,
        const_memory_size=compiled.weight_size,
        feature_memory_size=compiled.memory_size,
        output_shapes=[list(d.shape) for d in compiled.outputs],
        output_dtypes=[d.dtype for d in compiled.outputs],
        external_weight_paths=paths,
    )
