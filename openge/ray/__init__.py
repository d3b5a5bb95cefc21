"""Batch inference on Ray Data (the optional extra ``openge[ray]``).

``OmPredictor`` is a callable class for ``ray.data.Dataset.map_batches``; ``predict`` wires it to
an actor pool with the model shipped once through the object store. Ray is imported only when
``predict`` runs (or inside the actors), so this package imports without it.
"""

from openge.ray.chunking import Chunk, plan_chunks
from openge.ray.pipeline import predict, require_ray
from openge.ray.predictor import OmPredictor, set_threads

__all__ = ["Chunk", "OmPredictor", "plan_chunks", "predict", "require_ray", "set_threads"]
