"""Offline compilation: build_initialize, build_model, save_model (GE's ``aclgrphBuild*``)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from openge.compiler import compile_graph
from openge.compiler.options import validate_options
from openge.compiler.passes.externalize_weights import SESSION_WEIGHT_DIR
from openge.errors import (
    GE_CLI_GE_NOT_INITIALIZED,
    MODEL_PATH_INVALID,
    PARAM_INVALID,
    SUCCESS,
    GeError,
)
from openge.fileio import write_atomic
from openge.graph import Graph
from openge.om.buffer import ModelBufferData
from openge.om.writer import serialize
from openge.runtime.compat import check_loadable
from openge.weight_folders import register

logger = logging.getLogger(__name__)


class _BuildState:
    lock = threading.Lock()
    initialized = False
    options: ClassVar[dict[str, str]] = {}
    temp_dir: str | None = None


def build_initialize(options: Mapping[str, str] | None = None) -> int:
    """Start an offline build environment with global options (``aclgrphBuildInitialize``)."""
    checked = validate_options(options, "build global")
    with _BuildState.lock:
        _BuildState.options = checked
        _BuildState.initialized = True
    return int(SUCCESS)


def build_finalize() -> int:
    """End the build environment (``aclgrphBuildFinalize``) and delete its temp weight folder;
    weights of unsaved buffers become unavailable, as in GE."""
    with _BuildState.lock:
        _BuildState.initialized = False
        _BuildState.options = {}
        if _BuildState.temp_dir is not None:
            shutil.rmtree(_BuildState.temp_dir, ignore_errors=True)
            _BuildState.temp_dir = None
    return int(SUCCESS)


def _build_temp_dir() -> str:
    if _BuildState.temp_dir is None:
        base = os.environ.get("ASCEND_WORK_PATH") or os.getcwd()
        # Session id 0 stands for the offline builder (sessions count from 1).
        _BuildState.temp_dir = os.path.join(os.path.abspath(base), f"tmp_weight_{os.getpid()}_0")
        register(_BuildState.temp_dir, temporary=True)
    return _BuildState.temp_dir


atexit.register(lambda: _BuildState.temp_dir and shutil.rmtree(_BuildState.temp_dir, True))


def build_model(graph: Graph, options: Mapping[str, str] | None = None) -> ModelBufferData:
    """Compile ``graph`` into a model buffer (``aclgrphBuildModel``). The buffer is an
    "online" model: it loads under this openge version; ``save_model`` makes it portable."""
    if not _BuildState.initialized:
        raise GeError(
            GE_CLI_GE_NOT_INITIALIZED,
            "build_model needs the build environment: call "
            "openge.offline_compile.build_initialize(options) first",
        )
    if not isinstance(graph, Graph):
        raise GeError(
            PARAM_INVALID, f"build_model needs an openge Graph, got {type(graph).__name__}"
        )
    merged = dict(_BuildState.options)
    merged.update(validate_options(options, "build"))
    if merged.get("ge.externalWeight", "0") != "0" and not merged.get("ge.externalWeightDir"):
        merged[SESSION_WEIGHT_DIR] = _build_temp_dir()
    compiled = compile_graph(graph, merged)
    return ModelBufferData(serialize(compiled, online=True))


def _final_path(output_file: str) -> str:
    if not isinstance(output_file, (str, os.PathLike)) or not os.fspath(output_file):
        raise GeError(MODEL_PATH_INVALID, f"save_model: output_file {output_file!r} is not a path")
    return os.path.abspath(os.fspath(output_file) + ".om")


def _move_weights(compiled, om_dir: str):
    """Put the model's weight files in ``<om dir>/weight/`` (see weight_export.place_weights)."""
    from openge.offline_compile.weight_export import place_weights

    return place_weights(compiled.external_weights, om_dir)


def save_model(output_file: str | os.PathLike[str], buf: Any) -> str:
    """Save a model buffer as an offline .om (``aclgrphSaveModel``) and return the final path.

    GE behaviour: ``.om`` is always appended (``"x"`` → ``x.om``, ``"x.om"`` → ``x.om.om``);
    missing parent folders are created; the file is written atomically with mode 0600; weight
    files in a session temp folder move to ``<om dir>/weight/``; the model is marked offline.
    """
    path = _final_path(output_file)
    try:
        view = memoryview(getattr(buf, "data", buf)).cast("B")
    except TypeError as err:
        raise GeError(PARAM_INVALID, "save_model needs a ModelBufferData or bytes") from err
    compiled = check_loadable(view, source="buffer")
    om_dir = os.path.dirname(path)
    try:
        os.makedirs(om_dir, exist_ok=True)
    except OSError as err:
        raise GeError(MODEL_PATH_INVALID, f"cannot create folder {om_dir}: {err.strerror}") from err
    compiled.external_weights = _move_weights(compiled, om_dir)
    compiled.weights = bytes(compiled.weights)
    data = serialize(compiled, online=False)
    try:
        write_atomic(path, [data])
    except OSError as err:
        raise GeError(MODEL_PATH_INVALID, f"cannot write {path}: {err.strerror}") from err
    logger.info("saved %s (%d bytes)", path, len(data))
    return path


__all__ = [
    "ModelBufferData",
    "build_finalize",
    "build_initialize",
    "build_model",
    "save_model",
]
