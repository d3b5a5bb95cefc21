"""Model: a loaded compiled model — memory bound once, a flat execution plan, ``execute``.

The plan is built at load: every task's kernel is resolved and every slot becomes a NumPy view
(of the work arena, the weights, a variable) or a placeholder bound to the caller's input and
output arrays at each call. ``execute`` is one loop over that plan: no graph walking, no name
lookups, no allocation of intermediates.

Threads: one Model may be used from several threads; calls to ``execute`` are serialized by a
lock because they share the work arena and the variables (run one Model per thread for
parallel execution).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openge.errors import (
    INTERNAL_ERROR,
    LOAD_MODEL,
    MODEL_DATA_SIZE_INVALID,
    PARAM_INVALID,
    SHAPE_INVALID,
    GeError,
)
from openge.graph import Tensor
from openge.kernels import allocator
from openge.om.container import as_byte_view
from openge.om.gears import GearKind, GearSet
from openge.om.limits import LoadLimits, resolve_limits
from openge.om.plan import CompiledModel, IODesc, Slot, SlotKind
from openge.ops import get_schema
from openge.ops.compiled import model_build, model_loads_compiled, take_deferred
from openge.ops.exact_cube import task_kernel
from openge.runtime.files import MappedFile, as_path
from openge.runtime.gears import GearRuntime
from openge.runtime.validate import check_sizes, check_tasks
from openge.runtime.variables import VariableStore
from openge.runtime.weights import MappedFiles, resolve_weight
from openge.runtime.weights import weight_places as places_for

logger = logging.getLogger(__name__)

_Step = tuple[Any, list, list, dict, str, str]


#: Alignment of the work memory's start (every tensor's offset in it is a multiple of
#: openge.compiler.memory.ARENA_ALIGN): a cache line, and a 16-float vector.
ARENA_START_ALIGN = 64


def _aligned_zeros(size: int) -> np.ndarray:
    """``size`` zero bytes starting at a multiple of :data:`ARENA_START_ALIGN` (numpy's large
    allocations start 16 bytes into a page: every tensor would straddle cache lines, and two
    threads writing neighbouring parts of one tensor would share lines at every boundary)."""
    raw = np.zeros(size + ARENA_START_ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ARENA_START_ALIGN
    return raw[skip : skip + size]


def _as_writable_buffer(memory: Any, size: int, what: str) -> np.ndarray:
    try:
        array = np.frombuffer(memory, dtype=np.uint8)
    except (TypeError, ValueError) as err:
        raise GeError(PARAM_INVALID, f"{what} must be a writable bytes-like buffer") from err
    if array.size < size:
        raise GeError(
            PARAM_INVALID,
            f"{what} has {array.size} bytes; the model needs {size} (see query_size)",
        )
    if not array.flags.writeable:
        raise GeError(PARAM_INVALID, f"{what} is read-only; pass a bytearray or a writable array")
    return array


def _view(buffer: Any, slot: Slot, limit: int, what: str) -> np.ndarray:
    nbytes = slot.nbytes
    if slot.offset + nbytes > limit:
        raise GeError(
            LOAD_MODEL,
            f"{what} slot at offset {slot.offset} (+{nbytes} bytes) lies outside the "
            f"{limit}-byte region: the model is corrupt",
        )
    dtype = slot.dtype.np_dtype
    if nbytes == 0:
        return np.empty(slot.shape, dtype=dtype)
    return np.ndarray(slot.shape, dtype=dtype, buffer=buffer, offset=slot.offset)


def _check_no_overlap(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    for i, out in enumerate(outputs):
        for j, other in enumerate(inputs + outputs[:i]):
            if np.may_share_memory(out, other):
                what = f"input {j}" if j < len(inputs) else f"output {j - len(inputs)}"
                raise GeError(
                    PARAM_INVALID,
                    f"output buffer {i} overlaps {what}; pass separate arrays",
                )


class _Prepared:
    """A task's kernel specialized at load for its fixed arrays (``OpSchema.prepare``): called
    like the kernel, it ignores the arguments and runs the closure. ``kernel`` is the generic
    kernel it stands for."""

    __slots__ = ("kernel", "run")

    def __init__(self, run: Any, kernel: Any) -> None:
        self.run = run
        self.kernel = kernel

    def __call__(self, inputs: Any = None, outputs: Any = None, **kwargs: Any) -> None:
        self.run()


#: Vector constants (biases, scales) of a mapped .om up to this many bytes are read from private
#: copies (Model._release_file_pages): resnet50's peak RSS 324 → 312 MiB (AMD EPYC VM, Linux
#: 6.18, ext4). Copying matrices too cost more than it saved: their copies stay referenced by
#: the plan even when a kernel packs them (inception_v2 +20 MiB, densenet121 +22).
_PRIVATE_WEIGHT_BYTES = 1 << 20

#: Caller inputs up to this many bytes per task are staged into private copies (_Staged).
_STAGE_BYTES = 8 << 20


class _Staged(_Prepared):
    """A prepared kernel of a task that reads the caller's inputs or writes the caller's
    outputs: the closure was made over private arrays in their place (the caller's arrays
    are only known per call), the inputs copied in from the bound ones before it runs, the
    outputs copied out after — one copy instead of the generic kernel's per-call work (a
    first convolution's padding and im2col, a last product's NumPy matmul and epilogue
    passes: GPT-2's last 3072 → 768 product took 6.4 ms generic, 4.9 prepared)."""

    __slots__ = ("stage", "unstage")

    def __init__(
        self,
        run: Any,
        kernel: Any,
        stage: list[tuple[int, np.ndarray]],
        unstage: list[tuple[int, np.ndarray]] = (),  # type: ignore[assignment]
    ) -> None:
        super().__init__(run, kernel)
        self.stage = stage
        self.unstage = unstage

    def __call__(self, inputs: Any = None, outputs: Any = None, **kwargs: Any) -> None:
        for pos, buf in self.stage:
            np.copyto(buf, inputs[pos])
        self.run()
        for pos, buf in self.unstage:
            np.copyto(outputs[pos], buf)


class Model:
    """An executable compiled model (``aclmdlLoadFromFile`` / ``aclmdlLoadFromMem`` result)."""

    def __init__(
        self,
        compiled: CompiledModel,
        *,
        variables: VariableStore | None = None,
        work_memory: Any = None,
        weight_memory: Any = None,
        weight_places: Sequence[str] = (),
        keepalive: Any = None,
        weight_arrays: Mapping[int, np.ndarray] | None = None,
        limits: LoadLimits | None = None,
        source: MappedFile | None = None,
        from_buffer: bool = True,
    ) -> None:
        # weight_arrays: WEIGHT slots resolve to these arrays (by slot offset) instead of views
        # of compiled.weights — a dynamic model's plans share one copy (runtime.weight_share)
        self._compiled = compiled
        self._weight_arrays = weight_arrays
        self._keepalive = keepalive
        self._source = source  # the mapped .om: its size is re-checked before each execute
        self._lock = threading.Lock()
        self._files = MappedFiles()
        self._closed = False
        self.inputs: list[IODesc] = list(compiled.inputs)
        self.outputs: list[IODesc] = list(compiled.outputs)
        self.name = compiled.name
        self.variables = variables if variables is not None else VariableStore()
        # Untrusted model: sizes first (nothing allocated yet), then external weights, then
        # every task against its op's schema (docs/security.md).
        limits = resolve_limits(limits)
        check_sizes(compiled, limits)
        self._weight_bytes: np.ndarray | None = None  # the weights as bytes, for _constant_of
        self._externals = [
            resolve_weight(w, places_for(w, weight_places, from_buffer), self._files)
            for w in compiled.external_weights
        ]
        check_tasks(compiled, limits, self._constant_of)

        if work_memory is not None:
            self._arena = _as_writable_buffer(work_memory, compiled.memory_size, "work_memory")
        else:
            # Zeroed (calloc: fresh pages cost nothing): a task reading arena bytes no task
            # wrote sees zeros, never memory freed by someone else.
            try:
                self._arena = _aligned_zeros(max(compiled.memory_size, 1))
            except MemoryError:
                raise GeError(
                    LOAD_MODEL,
                    f"cannot allocate the {compiled.memory_size}-byte work memory of model "
                    f"{compiled.name}: not enough memory",
                ) from None
        weights = compiled.weights
        if weight_memory is not None:
            target = _as_writable_buffer(weight_memory, len(weights), "weight_memory")
            target[: len(weights)] = np.frombuffer(weights, dtype=np.uint8)
            weights = target
        self._weights = weights
        self._weight_size = len(weights) if weight_memory is None else compiled.weight_size
        # weights in the .om's file mapping: small ones are read from private copies, and the
        # mapping's pages are released once the plans are built (_release_file_pages)
        self._file_weights = source is not None and weight_memory is None and weight_arrays is None
        self._private_weights: dict[tuple[int, str, tuple[int, ...]], np.ndarray] = {}
        self._variable_arrays = [
            self.variables.bind(v, self._initial_value(v)) for v in compiled.variables
        ]
        self._dynamic: Any = None
        if compiled.is_dynamic and not compiled.tasks and compiled.stats.get("dynamic_shape"):
            # a dynamic-shape model: a static plan per input-shape signature, made at run time
            from openge.runtime.dynamic import DynamicExecutor

            self._dynamic = DynamicExecutor(compiled, max_bytes=limits.max_arena_bytes)
            self.inputs = list(self._dynamic.inputs)
        self._gears: GearRuntime | None = None
        self._gear_plans: list[tuple[list[_Step], list, list]] = []
        # the file check read every page: the kernels' preparation reads back what it needs,
        # so the whole file is not resident while numba starts and the weights are packed
        self._release_file_pages()
        # tasks prepared before the model's first compiled kernel loaded (_prepare_deferred)
        self._deferred: list[tuple[list[_Step], int, tuple[Any, ...]]] = []
        with model_build():  # kernel choices depend on this model, not the process's past
            if compiled.gears is None:
                self._steps, self._input_binds, self._output_binds = self._build_plan(
                    compiled.tasks, self.inputs, self.outputs
                )
            else:  # one plan per gear over the shared arena and weights
                self._gears = GearRuntime(self.inputs, self.outputs, compiled.gears)
                for i, g in enumerate(compiled.gears.gears):
                    self._gear_plans.append(
                        self._build_plan(
                            compiled.tasks[g.task_begin : g.task_end],
                            self._gears.in_descs[i],
                            self._gears.out_descs[i],
                        )
                    )
                largest = compiled.gears.largest
                self._steps, self._input_binds, self._output_binds = self._gear_plans[largest]
            self._prepare_deferred()
        self._private_weights = {}
        self._release_file_pages()
        self._dumper: Any = None  # a runtime.dump.ModelDumper while a data dump is on

    # ----- loading -------------------------------------------------------------------------
    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        weight_dir: str | None = None,
        *,
        work_memory: Any = None,
        weight_memory: Any = None,
        variables: VariableStore | None = None,
        limits: LoadLimits | None = None,
    ) -> Model:
        """Load an .om file (``aclmdlLoadFromFile``): the file is memory-mapped and weights are
        views into the mapping. External weights are looked up in ``weight_dir``, else in
        ``<om dir>/weight/`` only. ``limits`` bounds what an untrusted file may ask for
        (openge.om.limits; docs/security.md)."""
        from openge.runtime.compat import check_loadable

        path = as_path(path, "model file")
        limits = resolve_limits(limits)
        source = MappedFile(path, "model file", limits.max_model_bytes)
        try:
            if source.size == 0:
                raise GeError(MODEL_DATA_SIZE_INVALID, f"model file {path} is empty")
            compiled = check_loadable(source.view(), source=path, limits=limits)
            if weight_dir is not None:
                places = [as_path(weight_dir, "weight_dir")]
            else:
                places = [os.path.join(os.path.dirname(os.path.abspath(path)), "weight")]
            return cls(
                compiled,
                variables=variables,
                work_memory=work_memory,
                weight_memory=weight_memory,
                weight_places=places,
                keepalive=source.mapping,
                limits=limits,
                source=source,
                from_buffer=False,
            )
        except BaseException:
            source.close()  # views still alive in the traceback keep the pages until freed
            raise

    @classmethod
    def from_bytes(
        cls,
        buffer: Any,
        weight_dir: str | None = None,
        *,
        work_memory: Any = None,
        weight_memory: Any = None,
        variables: VariableStore | None = None,
        limits: LoadLimits | None = None,
    ) -> Model:
        """Load a model from memory (``aclmdlLoadFromMem``): bytes, bytearray, memoryview or
        ModelBufferData. Weights view the buffer without a copy; the model keeps it alive.
        External weights are looked up in ``weight_dir``, else in the folder the model records
        when this process compiled weights there (docs/security.md)."""
        from openge.runtime.compat import check_loadable

        if buffer is None or isinstance(buffer, (str, os.PathLike)):
            raise GeError(
                PARAM_INVALID,
                f"from_bytes needs bytes, a memoryview or ModelBufferData, got "
                f"{type(buffer).__name__} (use Model.from_file for a path)",
            )
        owner = getattr(buffer, "data", buffer) if hasattr(buffer, "length") else buffer
        view = as_byte_view(owner)
        limits = resolve_limits(limits)
        compiled = check_loadable(view, source="buffer", limits=limits)
        places = [as_path(weight_dir, "weight_dir")] if weight_dir is not None else []
        return cls(
            compiled,
            variables=variables,
            work_memory=work_memory,
            weight_memory=weight_memory,
            weight_places=places,
            keepalive=owner,
            limits=limits,
        )

    def _constant_of(self, slot: Slot) -> np.ndarray | None:
        """The array of a WEIGHT or EXTERNAL slot (a task input known at load), else None."""
        if slot.kind == SlotKind.WEIGHT and self._weight_arrays is not None:
            array = self._weight_arrays.get(slot.offset)  # a dynamic plan's shared weights
            if array is not None and array.dtype == slot.dtype.np_dtype:
                return array if array.shape == slot.shape else None
            return None
        if slot.kind == SlotKind.WEIGHT:
            blob = self._weight_bytes
            if blob is None:
                blob = self._weight_bytes = np.frombuffer(self._compiled.weights, np.uint8)
            end = slot.offset + slot.nbytes
            if end > blob.size:
                return None  # out of bounds: _build_plan reports it
            return blob[slot.offset : end].view(slot.dtype.np_dtype).reshape(slot.shape)
        if slot.kind == SlotKind.EXTERNAL and slot.offset < len(self._externals):
            array = self._externals[slot.offset]
            if array.dtype == slot.dtype.np_dtype and array.shape == slot.shape:
                return array
        return None

    def _initial_value(self, var) -> np.ndarray:
        return _view(
            self._compiled.weights,
            Slot(SlotKind.WEIGHT, var.init_offset, var.dtype, var.shape),
            len(self._compiled.weights),
            f"variable {var.name}",
        )

    def _release_file_pages(self) -> None:
        """Drop the .om mapping's pages from RSS once every kernel is prepared.

        Why: Linux maps a file's page-cache folio whole on a read fault (2 MiB on ext4 with
        large folios, Linux 6.18). A bias read at run time then brought back the pages of the
        packed weights beside it that a kernel had released (allocator.release_pages):
        resnet50's file pages went from 13 to 54 MiB resident over its first run. With the
        small constants read from private copies (_weight_view), runs only touch the weights
        the kernels read in place; those pages come back from the page cache on first use.
        """
        if self._file_weights:
            allocator.release_pages(np.frombuffer(self._weights, np.uint8))

    def _weight_view(self, slot: Slot, where: str) -> np.ndarray:
        """A WEIGHT slot's array: a view of the weights, or for a small constant of a mapped
        .om a private copy, made once per slot (see _release_file_pages)."""
        array = _view(self._weights, slot, len(self._weights), where)
        vector = array.size == max(array.shape, default=1)  # bias, scale: never packed
        if not (self._file_weights and vector and 0 < array.nbytes <= _PRIVATE_WEIGHT_BYTES):
            return array
        key = (slot.offset, array.dtype.str, array.shape)
        private = self._private_weights.get(key)
        if private is None:
            private = self._private_weights[key] = array.copy()
            private.flags.writeable = False
        return private

    def _resolve(self, slot: Slot, task_name: str) -> np.ndarray | None:
        kind = slot.kind
        where = f"task {task_name}"
        if kind == SlotKind.ARENA:
            return _view(self._arena, slot, self._compiled.memory_size, where)
        if kind == SlotKind.WEIGHT:
            if self._weight_arrays is None:
                return self._weight_view(slot, where)
            if slot.nbytes == 0:  # an empty constant has no bytes, nor a shared array
                return np.empty(slot.shape, slot.dtype.np_dtype)
            array = self._weight_arrays.get(slot.offset)
            if array is None:
                raise GeError(LOAD_MODEL, f"{where}: no shared weight at offset {slot.offset}")
        elif kind == SlotKind.VARIABLE:
            if slot.offset >= len(self._variable_arrays):
                raise GeError(LOAD_MODEL, f"{where}: variable slot {slot.offset} does not exist")
            array = self._variable_arrays[slot.offset]
        elif kind == SlotKind.EXTERNAL:
            if slot.offset >= len(self._externals):
                raise GeError(LOAD_MODEL, f"{where}: external weight {slot.offset} does not exist")
            array = self._externals[slot.offset]
        elif kind == SlotKind.NONE:
            return None
        else:
            raise GeError(LOAD_MODEL, f"{where}: unexpected slot kind {kind!r}")
        if array.dtype != slot.dtype.np_dtype or array.shape != slot.shape:
            raise GeError(LOAD_MODEL, f"{where}: slot type differs from its storage")
        return array

    def _build_plan(
        self, tasks: Sequence[Any], in_descs: Sequence[IODesc], out_descs: Sequence[IODesc]
    ) -> tuple[list[_Step], list[tuple[list, int, int]], list[tuple[list, int, int]]]:
        steps: list[_Step] = []
        input_binds: list[tuple[list, int, int]] = []
        output_binds: list[tuple[list, int, int]] = []
        io = (in_descs, out_descs)
        for task in tasks:
            binds_before_in, binds_before_out = len(input_binds), len(output_binds)
            schema = get_schema(task.op_type)
            if schema.kernel is None:
                raise GeError(LOAD_MODEL, f"task {task.name}: op {task.op_type} has no kernel")
            try:
                kwargs = {k: task.attrs[k] for k in schema.kernel_attrs}
            except KeyError as err:
                raise GeError(
                    LOAD_MODEL, f"task {task.name} ({task.op_type}) lacks attr {err.args[0]!r}"
                ) from None
            ins: list = []
            for pos, slot in enumerate(task.inputs):
                ins.append(self._bind(slot, task.name, ins, pos, input_binds, output_binds, io))
            outs: list = []
            for pos, slot in enumerate(task.outputs):
                if slot.kind in (SlotKind.WEIGHT, SlotKind.EXTERNAL, SlotKind.INPUT, SlotKind.NONE):
                    raise GeError(
                        LOAD_MODEL,
                        f"task {task.name} writes into a read-only slot ({slot.kind.name})",
                    )
                outs.append(self._bind(slot, task.name, outs, pos, input_binds, output_binds, io))
            new_binds = (input_binds[binds_before_in:], output_binds[binds_before_out:])
            take_deferred()
            kernel = self._task_kernel(task, schema, kwargs, ins, outs, *new_binds)
            if take_deferred():  # chosen before the model's first compiled kernel loaded
                redo = (task, schema, kwargs, ins, outs, *new_binds)
                self._deferred.append((steps, len(steps), redo))
            steps.append((kernel, ins, outs, kwargs, task.name, task.op_type))
        # the kernels' NumPy temporaries from reused heap memory, not fresh mappings per run
        allocator.keep_freed_memory()
        # the kernels are loaded: the compiler's code pages are not needed to run them
        allocator.release_compiler_pages()
        return steps, input_binds, output_binds

    def _prepare_deferred(self) -> None:
        """Prepare again the tasks whose kernel was chosen before the model's first compiled
        kernel loaded, once it has (openge.ops.compiled.take_deferred): small tasks take
        compiled kernels when the model pays numba's start anyway, wherever they stand in the
        plan (BERT-tiny's first compiled kernel is its GELU, after ten smaller tasks)."""
        deferred, self._deferred = self._deferred, []
        if not deferred or not model_loads_compiled():
            return
        for steps, index, (task, schema, kwargs, ins, outs, *binds) in deferred:
            kernel = self._task_kernel(task, schema, kwargs, ins, outs, *binds)
            steps[index] = (kernel, ins, outs, kwargs, task.name, task.op_type)
        take_deferred()
        allocator.release_compiler_pages()

    def _task_kernel(
        self,
        task: Any,
        schema: Any,
        kwargs: dict[str, Any],
        ins: list,
        outs: list,
        in_binds: list[tuple[list, int, int]],
        out_binds: list[tuple[list, int, int]],
    ) -> Any:
        """The kernel of one task: its op's prepared closure bound to the task's arrays, a
        precision-mode or low-precision kernel, or the op's generic kernel. ``in_binds`` /
        ``out_binds`` are the task's bindings to the caller's inputs and outputs."""
        # exactly accumulated cube ops (precision modes), bfloat16 / float8 through float32
        dtypes = [s.dtype.np_dtype for s in (*task.inputs, *task.outputs)]
        special = task_kernel(schema.kernel, task.attrs, dtypes)
        kernel = special or schema.kernel
        if special is None and schema.prepare is not None:
            # every array of the task is fixed for the model's life, except the caller's
            # inputs and outputs: those are staged through private arrays (_Staged)
            constant = [s.kind in (SlotKind.WEIGHT, SlotKind.EXTERNAL) for s in task.inputs]
            stage = [
                (pos, np.empty(task.inputs[pos].shape, task.inputs[pos].dtype.np_dtype))
                for target, pos, _ in in_binds
                if target is ins
            ]
            unstage = [
                (pos, np.empty(task.outputs[pos].shape, task.outputs[pos].dtype.np_dtype))
                for target, pos, _ in out_binds
                if target is outs
            ]
            if sum(buf.nbytes for _, buf in (*stage, *unstage)) > _STAGE_BYTES:
                stage = unstage = []  # too big to copy each call: the generic kernel
            staged, unstaged = list(ins), list(outs)
            for pos, buf in stage:
                staged[pos] = buf
            for pos, buf in unstage:
                unstaged[pos] = buf
            try:
                run = None
                if len(in_binds) == len(stage) and len(out_binds) == len(unstage):
                    run = schema.prepare(staged, unstaged, constant, **kwargs)
            except GeError as err:
                raise GeError(
                    LOAD_MODEL, f"task {task.name} ({task.op_type}): {err.message}"
                ) from err
            except Exception as err:  # validated attrs should never get here: name it
                raise GeError(
                    LOAD_MODEL,
                    f"task {task.name} ({task.op_type}): preparing its kernel failed "
                    f"({type(err).__name__}: {err})",
                ) from err
            if run is not None:
                kernel = (
                    _Staged(run, schema.kernel, stage, unstage)
                    if stage or unstage
                    else _Prepared(run, schema.kernel)
                )
            if any(constant):
                # what this task read of the .om (whole 2 MiB folios around a small
                # constant) would otherwise stay resident to the end of the load
                self._release_file_pages()
            if run is not None:  # and the compiler's code its kernels' loads touched
                allocator.release_compiler_pages(recheck=False)
        return kernel

    def _bind(
        self, slot: Slot, task_name: str, target: list, pos: int, input_binds, output_binds, io
    ):
        if slot.kind in (SlotKind.INPUT, SlotKind.OUTPUT):
            descs = io[0] if slot.kind == SlotKind.INPUT else io[1]
            if slot.offset >= len(descs):
                raise GeError(
                    LOAD_MODEL,
                    f"task {task_name}: {slot.kind.name.lower()} {slot.offset} does not exist",
                )
            desc = descs[slot.offset]
            if desc.dtype != slot.dtype or tuple(desc.shape) != slot.shape:
                raise GeError(LOAD_MODEL, f"task {task_name}: io slot differs from the model's io")
            binds = input_binds if slot.kind == SlotKind.INPUT else output_binds
            binds.append((target, pos, slot.offset))
            return None
        return self._resolve(slot, task_name)

    # ----- properties ----------------------------------------------------------------------
    @property
    def compiled(self) -> CompiledModel:
        """The loaded plan (plain data)."""
        return self._compiled

    @property
    def dynamic(self) -> Any:
        """The dynamic-shape executor (plan cache, limits, ``last_plan_seconds``, ``stats()``)
        of a dynamic-shape model; None for a static model."""
        return self._dynamic

    @property
    def memory_size(self) -> int:
        """Work arena bytes."""
        return self._compiled.memory_size

    @property
    def weight_size(self) -> int:
        """Weight bytes."""
        return self._compiled.weight_size

    # ----- execution -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise GeError(PARAM_INVALID, f"model {self.name} is closed (unloaded)")

    def _prepare_inputs(self, inputs: Any, descs: Sequence[IODesc]) -> list[np.ndarray]:
        if isinstance(inputs, Mapping):
            names = [d.name for d in descs]
            unknown = [k for k in inputs if k not in names]
            if unknown:
                raise GeError(
                    PARAM_INVALID,
                    f"model {self.name} has no input named {', '.join(map(repr, unknown))}; "
                    f"its inputs are {', '.join(names)}",
                )
            missing = [n for n in names if n not in inputs]
            if missing:
                raise GeError(PARAM_INVALID, f"missing model inputs: {', '.join(missing)}")
            inputs = [inputs[n] for n in names]
        if isinstance(inputs, (np.ndarray, Tensor)):
            inputs = [inputs]
        if inputs is None or isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
            raise GeError(
                PARAM_INVALID,
                f"execute needs a list of arrays (or a dict by input name), got "
                f"{type(inputs).__name__}",
            )
        inputs = list(inputs)
        if len(inputs) != len(descs):
            raise GeError(
                PARAM_INVALID,
                f"model {self.name} takes {len(descs)} inputs "
                f"({', '.join(d.name for d in descs)}); {len(inputs)} given",
            )
        arrays = []
        for desc, value in zip(descs, inputs):
            array = value.numpy() if isinstance(value, Tensor) else value
            if not isinstance(array, np.ndarray):
                try:
                    array = np.asarray(array, dtype=desc.dtype.np_dtype)
                except (TypeError, ValueError, OverflowError) as err:
                    raise GeError(
                        PARAM_INVALID, f"input {desc.name}: cannot convert {type(value).__name__}"
                    ) from err
            if array.dtype != desc.dtype.np_dtype:
                raise GeError(
                    PARAM_INVALID,
                    f"input {desc.name}: expected dtype {desc.dtype.short_name}, given "
                    f"{array.dtype}",
                )
            if self._dynamic is not None:
                self._dynamic.check_input(len(arrays), array)
            elif tuple(array.shape) != tuple(desc.shape):
                raise GeError(
                    SHAPE_INVALID,
                    f"input {desc.name}: expected shape {list(desc.shape)}, given "
                    f"{list(array.shape)}",
                )
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            arrays.append(array)
        return arrays

    def _prepare_outputs(
        self, outputs: Sequence[np.ndarray] | None, descs: Sequence[IODesc]
    ) -> list[np.ndarray]:
        if outputs is None:
            try:
                return [np.empty(d.shape, dtype=d.dtype.np_dtype) for d in descs]
            except MemoryError:
                raise GeError(
                    INTERNAL_ERROR, f"not enough memory for the outputs of model {self.name}"
                ) from None
        if isinstance(outputs, np.ndarray) or not hasattr(outputs, "__iter__"):
            raise GeError(
                PARAM_INVALID,
                f"outputs must be a list of arrays, one per model output, got "
                f"{type(outputs).__name__}",
            )
        outputs = list(outputs)
        if len(outputs) != len(descs):
            raise GeError(
                PARAM_INVALID,
                f"model {self.name} has {len(descs)} outputs; {len(outputs)} buffers given",
            )
        for desc, array in zip(descs, outputs):
            if (
                not isinstance(array, np.ndarray)
                or array.dtype != desc.dtype.np_dtype
                or tuple(array.shape) != tuple(desc.shape)
                or not array.flags.c_contiguous
                or not array.flags.writeable
            ):
                got = (
                    f"{array.dtype}{list(array.shape)}"
                    if isinstance(array, np.ndarray)
                    else type(array).__name__
                )
                raise GeError(
                    PARAM_INVALID,
                    f"output {desc.name}: buffer must be a writable C-contiguous "
                    f"{desc.dtype.short_name}{list(desc.shape)} array, given {got}",
                )
        return outputs

    def execute(
        self,
        inputs: Sequence[Any] | Mapping[str, Any],
        outputs: Sequence[np.ndarray] | None = None,
        *,
        intermediates: bool = False,
    ) -> Any:
        """Run the model (``aclmdlExecute``).

        Args:
            inputs: arrays (or Tensors) in input order, or a dict by input name.
            outputs: optional preallocated output arrays, written in place.
            intermediates: debug: also return every task output, by ``"task:index"``.

        Returns:
            The output arrays (and, with ``intermediates``, a dict of every value).
        """
        with self._lock:
            self._check_open()
            if self._source is not None:
                self._source.check_unchanged()  # a shrunk mapping would SIGBUS, not raise
            self._files.check_unchanged()
            steps, input_binds, output_binds = self._steps, self._input_binds, self._output_binds
            in_descs, out_descs = self.inputs, self.outputs
            first_task = 0  # index in compiled.tasks of the plan's first step (for the dump)
            if self._gears is not None:  # the gear of the shape data, or of the input shapes
                gear, inputs = self._gears.select(inputs)
                steps, input_binds, output_binds = self._gear_plans[gear]
                first_task = self._compiled.gears.gears[gear].task_begin
                in_descs, out_descs = self._gears.in_descs[gear], self._gears.out_descs[gear]
            try:
                in_arrays = self._prepare_inputs(inputs, in_descs)
            except GeError as err:
                if self._gears is None or err.code != SHAPE_INVALID:
                    raise
                raise GeError(err.code, f"{err.message}; {self._gears.chosen_by()}") from err
            if self._dynamic is not None:
                return self._dynamic.execute(in_arrays, outputs, intermediates=intermediates)
            out_arrays = self._prepare_outputs(outputs, out_descs)
            if outputs is not None:
                _check_no_overlap(in_arrays, out_arrays)
            for target, pos, index in input_binds:
                target[pos] = in_arrays[index]
            for target, pos, index in output_binds:
                target[pos] = out_arrays[index]
            values: dict[str, np.ndarray] | None = {} if intermediates else None
            step_index = 0
            # Kernels define their results for inf/nan inputs; NumPy's warnings would only be
            # noise on user data. One errstate per call, not per kernel.
            errstate = np.errstate(all="ignore")
            errstate.__enter__()
            # The plain loop unless this call dumps or collects: the per-task hook costs
            # nothing when the dump is off.
            dumper = self._dumper if self._dumper is not None and self._dumper.begin() else None
            try:
                if values is None and dumper is None:
                    for step_index, (kernel, ins, outs, kwargs, _, _) in enumerate(steps):  # noqa: B007
                        kernel(ins, outs, **kwargs)
                else:
                    for step_index, (kernel, ins, outs, kwargs, name, _) in enumerate(steps):
                        kernel(ins, outs, **kwargs)
                        if dumper is not None:
                            dumper.task(first_task + step_index, ins, outs)
                        if values is not None:
                            for i, out in enumerate(outs):
                                values[f"{name}:{i}"] = np.array(out, copy=True)
            except GeError as err:
                _, _, _, _, name, op_type = steps[step_index]
                raise GeError(
                    err.code, f"while executing node {name} ({op_type}): {err.message}"
                ) from err
            except Exception as err:
                _, _, _, _, name, op_type = steps[step_index]
                raise GeError(
                    INTERNAL_ERROR,
                    f"while executing node {name} ({op_type}): {type(err).__name__}: {err}",
                ) from err
            finally:
                errstate.__exit__(None, None, None)
                for target, pos, _ in input_binds:
                    target[pos] = None
                for target, pos, _ in output_binds:
                    target[pos] = None
            if values is not None:
                return out_arrays, values
            return out_arrays

    # ----- gears (aclmdlGetDynamicBatch … / aclmdlSetDynamicBatchSize …) ------------------------
    @property
    def gears(self) -> GearSet | None:
        """The model's gears (None for a model compiled without gear options)."""
        return self._compiled.gears

    def _gear_runtime(self, call: str) -> GearRuntime:
        if self._gears is None:
            raise GeError(
                PARAM_INVALID,
                f"{call}: model {self.name} has no gears (compile it with ge.dynamicBatchSize, "
                "ge.dynamicImageSize or ge.dynamicDims, or atc --dynamic_batch_size …)",
            )
        return self._gears

    def get_dynamic_batch(self) -> list[int]:
        """The batch gears (``aclmdlGetDynamicBatch``); empty when the model has none."""
        gears = self._compiled.gears
        if gears is None or gears.kind != GearKind.BATCH:
            return []
        return [v[0] for v in gears.values]

    def get_dynamic_hw(self, index: int = -1) -> list[tuple[int, int]]:
        """The (height, width) gears (``aclmdlGetDynamicHW``); empty when the model has none.
        ``index`` is an input index or -1 (the gears are the same for every input)."""
        gears = self._compiled.gears
        if not -1 <= index < len(self.inputs):
            raise GeError(PARAM_INVALID, f"input index {index}; the model has {len(self.inputs)}")
        if gears is None or gears.kind != GearKind.IMAGE:
            return []
        return [(v[0], v[1]) for v in gears.values]

    def get_input_dynamic_dims(self) -> list[list[int]]:
        """Per gear, every input_shape input's dims concatenated in input_shape order
        (``aclmdlGetInputDynamicDims``; its length is ``aclmdlGetInputDynamicGearCount``)."""
        if self._gears is None:
            return []
        return [self._gears.full_dims(i) for i in range(len(self._gears.gears.gears))]

    def get_cur_output_dims(self, index: int) -> list[int]:
        """Output ``index``'s dims at the gear set last (``aclmdlGetCurOutputDims``): the largest
        gear's before any; the output's shape for a model without gears."""
        if self._gears is None:
            if not 0 <= index < len(self.outputs):
                raise GeError(PARAM_INVALID, f"output index {index}; {len(self.outputs)} outputs")
            return list(self.outputs[index].shape)
        return self._gears.output_dims(index)

    def set_dynamic_batch_size(self, inputs: Any, index: int, batch: int) -> np.ndarray:
        """Choose the batch gear (``aclmdlSetDynamicBatchSize``): writes ``batch`` into the
        ``ascend_mbatch_shape_data`` entry (input ``index``) of the list or dict ``inputs``
        (appended when the list stops before it) and returns that array."""
        return self._gear_runtime("set_dynamic_batch_size").set_batch(inputs, index, batch)

    def set_dynamic_hw_size(self, inputs: Any, index: int, height: int, width: int) -> np.ndarray:
        """Choose the image-size gear (``aclmdlSetDynamicHWSize``), like set_dynamic_batch_size."""
        return self._gear_runtime("set_dynamic_hw_size").set_hw(inputs, index, height, width)

    def set_input_dynamic_dims(self, inputs: Any, index: int, dims: Sequence[int]) -> np.ndarray:
        """Choose the dims gear (``aclmdlSetInputDynamicDims``): ``dims`` are the full dims of
        every input_shape input, concatenated (one entry of get_input_dynamic_dims)."""
        return self._gear_runtime("set_input_dynamic_dims").set_dims(inputs, index, dims)

    def set_dump(self, config: Any, *, model_id: int = 1, model_name: str | None = None) -> None:
        """Dump every op execution of later ``execute`` calls (a ``runtime.dump.DumpConfig``,
        e.g. from acl.json's "dump" section); None turns the dump off. ``model_id`` and
        ``model_name`` (default: the model's name) name the dump folders (docs/dump.md)."""
        from openge.runtime.dump import ModelDumper

        with self._lock:
            self._check_open()
            self._dumper = (
                None
                if config is None
                else ModelDumper(config, self._compiled, model_name or self.name, model_id)
            )

    def get_variables(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Copies of this model's variable values by name."""
        own = [v.name for v in self._compiled.variables]
        return self.variables.snapshot(own if names is None else names)

    def close(self) -> None:
        """Release the model's memory (``aclmdlUnload``); later calls raise GeError."""
        with self._lock:
            self._closed = True
            self._steps = []
            self._gear_plans = []
            self._externals = []
            self._weight_arrays = None
            self._files.close()
            self._keepalive = None
            if self._source is not None:
                self._source.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(f"{d.name}:{d.dtype.short_name}{list(d.shape)}" for d in self.inputs)
        outs = ", ".join(f"{d.name}:{d.dtype.short_name}{list(d.shape)}" for d in self.outputs)
        return f"Model({self.name!r}, inputs=[{ins}], outputs=[{outs}])"
