"""GeSession: graphs by id, compile, run (sync/async), compiled-model export, variables."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.compiler import compile_graph as _compile
from openge.compiler.gears import gear_spec
from openge.compiler.options import validate_options
from openge.compiler.passes.variable_format import VariableFormat, convert_value
from openge.errors import (
    FAILED,
    GE_GRAPH_GRAPH_NOT_EXIST,
    PARAM_INVALID,
    UNSUPPORTED,
    GeError,
)
from openge.graph import Graph, Tensor, TensorDesc, from_numpy_dtype
from openge.om.buffer import ModelBufferData
from openge.om.plan import CompiledModel
from openge.om.writer import serialize
from openge.runtime import Model, VariableStore
from openge.runtime.dump import DumpConfig
from openge.session.ge_global import (
    global_options,
    register_session,
    require_initialized,
    unregister_session,
)
from openge.session.summary import CompiledGraphSummary, summarize

logger = logging.getLogger(__name__)

_session_ids = itertools.count(1)
_temp_dirs: set[str] = set()


def _remove_temp_dirs() -> None:
    for path in list(_temp_dirs):
        shutil.rmtree(path, ignore_errors=True)
        _temp_dirs.discard(path)


atexit.register(_remove_temp_dirs)


@dataclass
class _GraphEntry:
    graph: Graph
    options: dict[str, str]
    compiled: CompiledModel | None = None
    compiled_shapes: tuple | None = None
    model: Model | None = None
    run_mode: str | None = None
    need_rebuild: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _as_tensor_desc(value: Any) -> TensorDesc:
    if isinstance(value, TensorDesc):
        return value
    if isinstance(value, Tensor):
        return value.desc
    array = np.asarray(value)
    return TensorDesc(from_numpy_dtype(array.dtype), array.shape)


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    return value if isinstance(value, np.ndarray) else np.asarray(value)


class GeSession:
    """A GE session (``ge::Session``): holds graphs by id and the variables they share.

    Options layer global ⊂ session ⊂ graph; the narrower level wins. Use as a context manager
    or call ``close()``; ``GeApi.ge_finalize()`` closes every open session.
    """

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        require_initialized("creating a GeSession")
        self.session_id = next(_session_ids)
        self._options = validate_options(options, "session")
        self._graphs: dict[int, _GraphEntry] = {}
        self._variables = VariableStore()
        self._lock = threading.RLock()
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        self._temp_weight_dir: str | None = None
        self._variable_formats: dict[str, VariableFormat] = {}
        register_session(self)
        self._finalizer = weakref.finalize(self, _cleanup_dir, None)

    # ----- graphs ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise GeError(PARAM_INVALID, f"session {self.session_id} is closed")
        require_initialized("this session call")

    def _entry(self, graph_id: int) -> _GraphEntry:
        self._check_open()
        entry = self._graphs.get(graph_id)
        if entry is None:
            known = ", ".join(str(i) for i in sorted(self._graphs)) or "none"
            raise GeError(
                GE_GRAPH_GRAPH_NOT_EXIST,
                f"graph {graph_id} does not exist in session {self.session_id} (graphs: "
                f"{known}); add it with add_graph first",
            )
        return entry

    def _check_new_id(self, graph_id: int, graph: Graph) -> None:
        self._check_open()
        if isinstance(graph_id, bool) or not isinstance(graph_id, int) or graph_id < 0:
            raise GeError(PARAM_INVALID, f"graph id {graph_id!r} must be a non-negative int")
        if not isinstance(graph, Graph):
            raise GeError(
                PARAM_INVALID, f"add_graph needs an openge Graph, got {type(graph).__name__}"
            )
        if graph_id in self._graphs:
            raise GeError(
                PARAM_INVALID,
                f"graph id {graph_id} is already used in session {self.session_id}; "
                "remove_graph it first or pick another id",
            )

    def add_graph(
        self, graph_id: int, graph: Graph, options: Mapping[str, str] | None = None
    ) -> int:
        """Register ``graph`` under ``graph_id`` (``AddGraph``). The session keeps a reference:
        later edits to ``graph`` before the first compile are seen. Returns SUCCESS (0)."""
        with self._lock:
            self._check_new_id(graph_id, graph)
            graph.validate()
            self._graphs[graph_id] = _GraphEntry(graph, validate_options(options, "graph"))
        return 0

    def add_graph_clone(
        self, graph_id: int, graph: Graph, options: Mapping[str, str] | None = None
    ) -> int:
        """Register a deep copy of ``graph`` (``AddGraphClone``): later edits to the caller's
        graph do not affect the session. Returns SUCCESS (0)."""
        with self._lock:
            self._check_new_id(graph_id, graph)
            graph.validate()
            self._graphs[graph_id] = _GraphEntry(graph.clone(), validate_options(options, "graph"))
        return 0

    def remove_graph(self, graph_id: int) -> int:
        """Remove a graph and unload its model (``RemoveGraph``). Returns SUCCESS (0)."""
        with self._lock:
            entry = self._entry(graph_id)
            if entry.model is not None:
                entry.model.close()
            del self._graphs[graph_id]
        return 0

    def options_for(self, graph_id: int) -> dict[str, str]:
        """The effective options of a graph: global ⊂ session ⊂ graph."""
        entry = self._entry(graph_id)
        merged = global_options()
        merged.update(self._options)
        merged.update(entry.options)
        return merged

    # ----- compile ----------------------------------------------------------------------------
    def compile_graph(self, graph_id: int, inputs: Sequence[Any] | None = None) -> int:
        """Compile a graph (``CompileGraph``); ``inputs`` (Tensors, arrays or TensorDescs) fix
        the input shapes of a graph with unknown dims. Returns SUCCESS (0)."""
        entry = self._entry(graph_id)
        descs = None
        if inputs is not None:
            descs = [_as_tensor_desc(v) for v in inputs]
        with entry.lock:
            self._compile(graph_id, entry, descs)
        return 0

    def _compile(
        self, graph_id: int, entry: _GraphEntry, descs: list[TensorDesc] | None
    ) -> CompiledModel:
        options = self.options_for(graph_id)
        options.setdefault("_openge.session_weight_dir", self._weight_dir_for(options))
        compiled = _compile(entry.graph, options, descs, variable_formats=self._variable_formats)
        self._after_format_change(graph_id, compiled.stats.get("changed_variables", []))
        if entry.model is not None:
            entry.model.close()
        entry.compiled = compiled
        entry.compiled_shapes = tuple(tuple(d.shape) for d in compiled.inputs)
        entry.model = None
        entry.need_rebuild = False
        return compiled

    def _after_format_change(self, graph_id: int, names: Sequence[str]) -> None:
        """A variable changed format: convert its stored value and flag the other graphs that
        use it for a rebuild (their compiled plans read the old format)."""
        for name in names:
            fmt = self._variable_formats[name]
            current = self._variables.get(name)
            if current is not None:
                self._variables.replace(name, convert_value(current, fmt))
            for other_id, other in self._graphs.items():
                if other_id == graph_id or other.compiled is None:
                    continue
                if any(n.op_type == "Variable" and n.name == name for n in other.graph):
                    other.need_rebuild = True
                    if other.model is not None:
                        other.model.close()
                        other.model = None

    def _weight_dir_for(self, options: Mapping[str, str]) -> str:
        if options.get("ge.externalWeightDir"):
            return options["ge.externalWeightDir"]
        if self._temp_weight_dir is None:
            base = os.environ.get("ASCEND_WORK_PATH") or os.getcwd()
            path = os.path.join(
                os.path.abspath(base), f"tmp_weight_{os.getpid()}_{self.session_id}"
            )
            self._temp_weight_dir = path
            _temp_dirs.add(path)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _cleanup_dir, path)
        return self._temp_weight_dir

    def _loaded_model(self, graph_id: int, entry: _GraphEntry, arrays: list[np.ndarray]) -> Model:
        shapes = tuple(tuple(a.shape) for a in arrays)
        # A gear graph (ge.dynamicBatchSize …) compiles once for all its gears.
        dynamic = _has_unknown_dims(entry.graph) and gear_spec(self.options_for(graph_id)) is None
        if (
            entry.compiled is None
            or entry.need_rebuild
            or (dynamic and not entry.compiled.is_dynamic and entry.compiled_shapes != shapes)
        ):
            # A graph with unknown dims compiles once into a dynamic-shape model, which plans
            # each input-shape signature itself (openge.runtime.dynamic, cached); one with
            # variables (session state) is compiled for the shapes it is run with.
            descs = None
            if dynamic and any(n.op_type == "Variable" for n in entry.graph.nodes):
                if len(arrays) != len(entry.graph.inputs):
                    raise GeError(
                        PARAM_INVALID,
                        f"graph {graph_id} takes {len(entry.graph.inputs)} inputs; "
                        f"{len(arrays)} given",
                    )
                descs = [_as_tensor_desc(a) for a in arrays]
            self._compile(graph_id, entry, descs)
        if entry.model is None:
            assert entry.compiled is not None
            buffer = serialize(entry.compiled, online=True)
            # One execution path: run_graph loads the same bytes a saved model holds.
            entry.model = Model.from_bytes(buffer, variables=self._variables)
            dump = DumpConfig.from_options(self.options_for(graph_id))
            if dump is not None:
                entry.model.set_dump(dump, model_id=graph_id, model_name=entry.graph.name)
        return entry.model

    # ----- run --------------------------------------------------------------------------------
    def _set_mode(self, graph_id: int, entry: _GraphEntry, mode: str) -> None:
        if entry.run_mode is None:
            entry.run_mode = mode
        elif entry.run_mode != mode:
            raise GeError(
                PARAM_INVALID,
                f"graph {graph_id} was first run with {entry.run_mode}; GE fixes a graph's "
                f"run mode at its first run, so {mode} cannot run it. Add the graph again "
                "under another id to run it that way",
            )

    def run_graph(self, graph_id: int, inputs: Sequence[Any]) -> list[Tensor]:
        """Run a graph synchronously (``RunGraph``): compiles and loads on first use, then
        executes through the same runtime a loaded .om uses. Returns the outputs as Tensors."""
        entry = self._entry(graph_id)
        with entry.lock:
            self._set_mode(graph_id, entry, "run_graph")
            return self._run(graph_id, entry, inputs)

    def _run(self, graph_id: int, entry: _GraphEntry, inputs: Sequence[Any]) -> list[Tensor]:
        if isinstance(inputs, (np.ndarray, Tensor)):
            inputs = [inputs]
        arrays = [_as_array(v) for v in inputs]
        model = self._loaded_model(graph_id, entry, arrays)
        outputs = model.execute(arrays)
        return [Tensor(array, format=desc.format) for array, desc in zip(outputs, model.outputs)]

    def run_graph_async(
        self,
        graph_id: int,
        inputs: Sequence[Any],
        callback: Callable[[int, list[Tensor]], None],
    ) -> int:
        """Queue a run (``RunGraphAsync``); ``callback(status, outputs)`` is called from a worker
        thread, in submission order, with status 0 and the outputs, or the GeError's code and
        an empty list. Returns SUCCESS (0) once queued."""
        entry = self._entry(graph_id)
        if not callable(callback):
            raise GeError(PARAM_INVALID, "run_graph_async needs a callable callback")
        with entry.lock:
            self._set_mode(graph_id, entry, "run_graph_async")
        inputs = list(inputs)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"openge-session{self.session_id}"
                )
            executor = self._executor

        def work() -> None:
            try:
                with entry.lock:
                    outputs = self._run(graph_id, entry, inputs)
            except GeError as err:
                logger.error("run_graph_async graph %s failed: %s", graph_id, err)
                callback(err.code, [])
                return
            except Exception:  # report, never lose the callback
                logger.exception("run_graph_async graph %s failed", graph_id)
                callback(int(FAILED), [])
                return
            callback(0, outputs)

        executor.submit(work)
        return 0

    # ----- compiled model export ----------------------------------------------------------------
    def get_compiled_model(self, graph_id: int) -> ModelBufferData:
        """The compiled graph as a serialized buffer (``GetCompiledModel``).

        Checks, in GE's order: the graph exists; it is compiled; ``ge.exec.variable_acc`` is not
        ``"True"``. The buffer carries the variables' current values and owns its bytes.
        """
        entry = self._entry(graph_id)
        if entry.compiled is None:
            raise GeError(
                PARAM_INVALID, f"graph {graph_id} is not compiled; call compile_graph first"
            )
        if self.options_for(graph_id).get("ge.exec.variable_acc") == "True":
            raise GeError(
                UNSUPPORTED,
                f"graph {graph_id}: get_compiled_model does not support ge.exec.variable_acc="
                '"True" (variable formats may change after export); set the option '
                'ge.exec.variable_acc to "False" and compile again',
            )
        compiled = _with_current_variables(entry.compiled, self._variables)
        return ModelBufferData(serialize(compiled, online=True))

    def get_compiled_graph_summary(self, graph_id: int) -> CompiledGraphSummary:
        """Sizes, shapes and external weight files of a compiled graph."""
        entry = self._entry(graph_id)
        if entry.compiled is None:
            raise GeError(
                PARAM_INVALID, f"graph {graph_id} is not compiled; call compile_graph first"
            )
        return summarize(entry.compiled)

    def is_graph_need_rebuild(self, graph_id: int) -> bool:
        """True when the graph must be compiled again (never compiled, or a variable it uses
        changed format because another graph was compiled)."""
        entry = self._entry(graph_id)
        return entry.compiled is None or entry.need_rebuild

    def get_variables(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Copies of the session's variable values by name (all when ``names`` is None)."""
        self._check_open()
        return self._variables.snapshot(None if names is None else list(names))

    # ----- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Unload every graph, stop the async worker, delete the session's temp weight folder."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            for entry in self._graphs.values():
                if entry.model is not None:
                    entry.model.close()
            self._graphs.clear()
            self._finalizer()
            unregister_session(self)

    @property
    def temp_weight_dir(self) -> str | None:
        """The session's temp folder for external weights, if one was made."""
        return self._temp_weight_dir

    def __enter__(self) -> GeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._graphs)} graphs"
        return f"GeSession(id={self.session_id}, {state})"


Session = GeSession


def _cleanup_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)
        _temp_dirs.discard(path)


def _has_unknown_dims(graph: Graph) -> bool:
    return any(not n.output_descs[0].is_static for n in graph.inputs)


def _with_current_variables(compiled: CompiledModel, store: VariableStore) -> CompiledModel:
    if not compiled.variables:
        return compiled
    from dataclasses import replace

    weights = bytearray(compiled.weights)
    for var in compiled.variables:
        value = store.get(var.name)
        if value is not None:
            raw = np.ascontiguousarray(value).tobytes()
            weights[var.init_offset : var.init_offset + len(raw)] = raw
    return replace(compiled, weights=weights)
