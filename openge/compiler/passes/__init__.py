"""Compiler passes, one module each (the order they run in is pipeline.default_passes)."""

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.cancel_inverse_ops import CancelInverseOpsPass
from openge.compiler.passes.eliminate_common_subexpressions import (
    EliminateCommonSubexpressionsPass,
)
from openge.compiler.passes.eliminate_dead_code import EliminateDeadCodePass
from openge.compiler.passes.eliminate_trans_data import EliminateTransDataPass
from openge.compiler.passes.externalize_weights import ExternalizeWeightsPass
from openge.compiler.passes.fold_batch_norm import FoldBatchNormPass
from openge.compiler.passes.fold_constants import FoldConstantsPass
from openge.compiler.passes.fold_large_constants import FoldLargeConstantsPass
from openge.compiler.passes.fuse_bias_activation import FuseBiasActivationPass
from openge.compiler.passes.fuse_elementwise import FuseElementwisePass
from openge.compiler.passes.infer_shapes import InferShapesPass
from openge.compiler.passes.lower_batch_norm import LowerBatchNormPass
from openge.compiler.passes.merge_constants import MergeConstantsPass
from openge.compiler.passes.select_layouts import SelectLayoutsPass
from openge.compiler.passes.variable_format import VariableFormat, VariableFormatPass

__all__ = [
    "CancelInverseOpsPass",
    "EliminateCommonSubexpressionsPass",
    "EliminateDeadCodePass",
    "EliminateTransDataPass",
    "ExternalizeWeightsPass",
    "FoldBatchNormPass",
    "FoldConstantsPass",
    "FoldLargeConstantsPass",
    "FuseBiasActivationPass",
    "FuseElementwisePass",
    "GraphPass",
    "InferShapesPass",
    "LowerBatchNormPass",
    "MergeConstantsPass",
    "PassContext",
    "SelectLayoutsPass",
    "VariableFormat",
    "VariableFormatPass",
]
