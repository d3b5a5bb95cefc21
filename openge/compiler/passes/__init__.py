"""Compiler passes, one module each."""

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass
from openge.compiler.passes.externalize_weights import ExternalizeWeightsPass
from openge.compiler.passes.fold_constants import FoldConstantsPass
from openge.compiler.passes.infer_shapes import InferShapesPass
from openge.compiler.passes.variable_format import VariableFormat, VariableFormatPass

__all__ = [
    "EliminateDeadCodePass",
    "ExternalizeWeightsPass",
    "FoldConstantsPass",
    "GraphPass",
    "InferShapesPass",
    "PassContext",
    "VariableFormat",
    "VariableFormatPass",
]
