"""Load-time limits on an untrusted model (docs/security.md): sizes checked before allocating.

Layer: om (used by the .om reader and by the runtime). A model file or buffer is untrusted input:
every count and size it declares is checked against these limits before anything of that size
is allocated or parsed, so a small hostile file cannot make a load use gigabytes or minutes.

The defaults hold every model of the benchmark set (bench/models.py; the largest, vgg19, has
~550 MB of weights and a ~30 MB work arena) with a wide margin. Change them per load with
``Model.from_file(path, limits=LoadLimits(max_arena_bytes=...))`` (also ``from_bytes``), or
for the whole process (the CLI, sessions) with the environment variables named in
:data:`ENV_VARS`, e.g. ``OPENGE_MAX_ARENA_BYTES=34359738368``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from openge.errors import PARAM_INVALID, GeError

#: Bytes of the array a shape describes with its zero (and unknown) dims counted as 1, beyond
#: which NumPy cannot make the array at all ("array is too big"), not even an empty one: a
#: slot or an input/output with such a shape is refused at load.
MAX_ARRAY_SPAN = 1 << 62

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class LoadLimits:
    """Upper bounds a model must fit before it is loaded (each refused with a GeError naming the
    limit, the model's value and how to raise it)."""

    #: Bytes of the whole .om (file or buffer), weights included.
    max_model_bytes: int = 64 * GiB
    #: Bytes of the work arena plus every model input and output (allocated at load / execute).
    max_arena_bytes: int = 4 * GiB
    #: Bytes of the model's metadata (MODEL_DEF + TASK_INFO partitions): parsed into objects,
    #: which cost up to ~50x their size in memory.
    max_metadata_bytes: int = 64 * MiB
    #: Tasks in the task list (also variables, external weights, io tensors: each at most this).
    max_tasks: int = 20_000
    #: Protobuf objects (sub-messages) in each of MODEL_DEF and TASK_INFO, counted on the wire
    #: before decoding; a real model has ~20-30 per task (resnet50: 3,300 in its ModelDef).
    max_objects: int = 1_000_000
    #: Nesting depth of attr values: lists/maps inside lists/maps, a fused op's epilogue program.
    max_nesting: int = 32
    #: Steps of one fused op's program (epilogue).
    max_program_steps: int = 4096

    def check(self, name: str, value: int, what: str) -> None:
        """GeError when ``value`` exceeds limit ``name`` (``what`` names the model's quantity)."""
        limit = getattr(self, name)
        if value > limit:
            env = ENV_VARS[name]
            raise GeError(
                PARAM_INVALID,
                f"{what} is {value}, over the load limit {name} = {limit}; if the model is "
                f"trusted, raise it with Model.from_file(..., limits=LoadLimits({name}=...)) or "
                f"the environment variable {env}",
            )


#: Environment variable that sets each limit's process-wide default.
ENV_VARS: dict[str, str] = {f.name: "OPENGE_" + f.name.upper() for f in fields(LoadLimits)}


def _from_env() -> LoadLimits:
    changes: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        text = os.environ.get(var)
        if text is None or not text.strip():
            continue
        try:
            value = int(text.strip())
        except ValueError:
            raise GeError(
                PARAM_INVALID, f"environment variable {var}={text!r} is not an integer"
            ) from None
        if value < 0:
            raise GeError(PARAM_INVALID, f"environment variable {var}={text!r} is negative")
        changes[name] = value
    return replace(LoadLimits(), **changes)


def default_limits() -> LoadLimits:
    """The limits in force: the defaults, changed by the ``OPENGE_MAX_*`` environment variables."""
    return _from_env()


def resolve_limits(limits: LoadLimits | None) -> LoadLimits:
    """``limits`` itself, or the process default when None (GeError for another type)."""
    if limits is None:
        return default_limits()
    if not isinstance(limits, LoadLimits):
        raise GeError(
            PARAM_INVALID, f"limits must be an openge LoadLimits, got {type(limits).__name__}"
        )
    return limits


__all__ = ["ENV_VARS", "LoadLimits", "default_limits", "resolve_limits"]
