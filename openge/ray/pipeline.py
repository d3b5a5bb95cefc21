"""``predict``: score a Ray Dataset with an openge model on an actor pool.

The model is put in the object store once (a uint8 array, so actors map it without copying);
``map_batches`` runs ``OmPredictor`` on ``actors`` actors of ``num_cpus`` CPUs each. Ray restarts
an actor that dies and re-runs its batch, so a lost actor costs time, not rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, UNSUPPORTED, GeError
from openge.ray.predictor import OmPredictor, load_model_bytes


def require_ray() -> Any:
    """The ``ray`` module, or a GeError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise GeError(
            UNSUPPORTED,
            "Ray is not installed: batch inference needs the extra, pip install 'openge[ray]'",
        ) from err
    return ray


def predict(
    dataset: Any,
    model: Any,
    *,
    actors: int = 1,
    num_cpus: float = 1,
    batch_size: int = 256,
    batch_format: str = "numpy",
    input_columns: Mapping[str, str] | Sequence[str] | None = None,
    output_columns: Mapping[str, str] | Sequence[str] | None = None,
    passthrough_columns: Sequence[str] = (),
    gear_column: str | None = None,
    weight_dir: str | None = None,
    predictor_class: type = OmPredictor,
) -> Any:
    """Score ``dataset`` (a ``ray.data.Dataset``) with ``model``; returns the lazy result Dataset.

    Args:
        dataset: rows with one column per model input (see ``OmPredictor``).
        model: .om path, bytes, ModelBufferData, or an ObjectRef to the bytes.
        actors: size of the actor pool.
        num_cpus: CPUs per actor; each actor runs that many intra-op threads.
        batch_size: rows per ``map_batches`` batch (cut to the model's gears inside the actor).
        batch_format: "numpy", "pandas" or "pyarrow": the form the actors receive.
        predictor_class: ``OmPredictor`` or a subclass of it.

    Actors work on blocks: a dataset held in one block (``from_numpy`` of one array) keeps one
    actor busy. Make at least ``actors`` blocks (``from_numpy`` of a list of arrays,
    ``from_arrow`` of several tables, a file reader). ``repartition`` would need CPUs beside the
    actors' and can stall a cluster whose CPUs the actor pool holds.

    Row order follows the input when ``DataContext.execution_options.preserve_order`` is set
    (``openge batch`` sets it); otherwise Ray may reorder blocks — pass an id column through.
    """
    ray = require_ray()
    if actors < 1 or batch_size < 1 or num_cpus <= 0:
        raise GeError(
            PARAM_INVALID,
            f"actors ({actors}), batch_size ({batch_size}) and num_cpus ({num_cpus}) must be "
            "positive",
        )
    if batch_format not in ("numpy", "pandas", "pyarrow"):
        raise GeError(PARAM_INVALID, f"batch_format {batch_format!r}: use numpy, pandas or pyarrow")
    if _is_ref(model):
        model_ref = model
    else:
        data = load_model_bytes(model)
        model_ref = ray.put(np.frombuffer(data, dtype=np.uint8))
    return dataset.map_batches(
        predictor_class,
        fn_constructor_kwargs={
            "model": model_ref,
            "input_columns": input_columns,
            "output_columns": output_columns,
            "passthrough_columns": tuple(passthrough_columns),
            "num_threads": max(1, int(num_cpus)),
            "weight_dir": weight_dir,
            "gear_column": gear_column,
        },
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        batch_format=batch_format,
        num_cpus=num_cpus,
        zero_copy_batch=True,
    )


def _is_ref(value: Any) -> bool:
    return type(value).__name__ == "ObjectRef" and type(value).__module__.startswith("ray")
