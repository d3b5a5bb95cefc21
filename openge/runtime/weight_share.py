"""Weights shared by every cached plan of one dynamic-shape model, content-addressed.

Each input-shape signature of a dynamic model is compiled into its own static plan, and the
compiler writes every constant the plan uses into that plan's weights blob. Kept as is, a model
served at 8 shapes would hold its weights 8 times (BERT-base: 8 × 440 MB). Instead, once a plan
is compiled, every constant it uses is resolved to one shared copy:

* a constant whose bytes *are* the model's own constants (the Const values of the stored graph:
  views of the loaded .om, or the caller's arrays) is served from that memory — no copy, no hash;
* any other constant (a fold the compiler made: transposed or fused weights, shape-dependent
  tables) is looked up by content — its size and a fingerprint of at most :data:`SAMPLE_BYTES`
  bytes, then an exact byte comparison — among the constants already held (the model's own,
  fingerprinted lazily once each, and earlier plans'); a match is served from the held copy, a
  miss is kept (once) as a new shared constant.

Plans are compiled with taskgen's by-reference layout (``WEIGHTS_BY_REFERENCE``: offsets, no
blob, so no transient copy of the weights either) and load with ``Model(compiled,
weight_arrays=...)``: WEIGHT slots resolve to these arrays. (A plan compiled with a blob works
too: its blob is dropped once its slots are resolved.) New constants are held only through the
plans that use them (the index keeps weak references), so evicting a plan frees what only it
used.
"""

from __future__ import annotations

import bisect
import hashlib
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.compiler.taskgen import WEIGHTS_BY_REFERENCE
from openge.errors import LOAD_MODEL, GeError
from openge.graph import Graph, Tensor
from openge.om.plan import CompiledModel, SlotKind

#: Bytes of a tensor fingerprinted (all of a smaller one; evenly spread chunks of a larger).
SAMPLE_BYTES = 64 << 10
_CHUNK = 1 << 10
#: Bytes compared at a time when two candidates' fingerprints match (bounded temporaries).
_COMPARE_CHUNK = 1 << 20


def _flat_bytes(array: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array as a flat uint8 view (no copy)."""
    return array.reshape(-1).view(np.uint8) if array.ndim else array.reshape(1).view(np.uint8)


def fingerprint(data: np.ndarray) -> bytes:
    """SHA-256 of ``data``'s bytes (flat uint8), sampled to at most :data:`SAMPLE_BYTES`: the
    content address's cheap part (a match is confirmed by :func:`same_bytes`)."""
    n = data.size
    h = hashlib.sha256(n.to_bytes(8, "little"))
    if n <= SAMPLE_BYTES:
        h.update(data.data)
        return h.digest()
    chunks = SAMPLE_BYTES // _CHUNK - 1
    step = (n - _CHUNK) // chunks
    for k in range(chunks):
        h.update(data[k * step : k * step + _CHUNK].data)
    h.update(data[n - _CHUNK :].data)  # the tail, always
    return h.digest()


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Exact equality of two flat uint8 arrays, compared in bounded chunks."""
    if a.size != b.size:
        return False
    for i in range(0, a.size, _COMPARE_CHUNK):
        if not np.array_equal(a[i : i + _COMPARE_CHUNK], b[i : i + _COMPARE_CHUNK]):
            return False
    return True


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


@dataclass
class PlanWeights:
    """What one plan holds: its WEIGHT slot arrays by offset, the shared constants it keeps alive
    (not the model's own), and the bytes it uses (what a private copy would take)."""

    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    owned: list[np.ndarray] = field(default_factory=list)
    used_bytes: int = 0
    seconds: float = 0.0


class SharedWeights:
    """The content-addressed weight store of one dynamic-shape model (see the module doc)."""

    def __init__(self, graph: Graph) -> None:
        originals: dict[int, np.ndarray] = {}
        for node in graph.nodes:
            if node.op_type != "Const":
                continue
            value = node.attrs.get("value")
            array = value.numpy() if isinstance(value, Tensor) else None
            if (
                isinstance(array, np.ndarray)
                and array.flags.c_contiguous
                and not array.dtype.hasobject
                and array.nbytes
            ):
                originals.setdefault(_address(array), _flat_bytes(array))
        spans = sorted((addr, addr + a.size, a) for addr, a in originals.items())
        self._starts = [s for s, _, _ in spans]
        self._spans = spans
        #: the model's own constants not fingerprinted yet, by byte size
        self._pending: dict[int, list[np.ndarray]] = {}
        for _, _, a in spans:
            self._pending.setdefault(a.size, []).append(a)
        self.original_bytes = sum(a.size for _, _, a in spans)
        self._originals: dict[tuple[int, bytes], list[np.ndarray]] = {}
        self._shared: dict[tuple[int, bytes], list[weakref.ref]] = {}
        self.fingerprints = 0

    # ----- lookup --------------------------------------------------------------------------
    def _inside_original(self, array: np.ndarray) -> bool:
        """True when the (contiguous) array's bytes lie inside one of the model's constants."""
        start = _address(array)
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and start + array.nbytes <= self._spans[i][1]

    def _fingerprint(self, data: np.ndarray) -> bytes:
        self.fingerprints += 1
        return fingerprint(data)

    def _find(self, key: tuple[int, bytes], data: np.ndarray) -> np.ndarray | None:
        """The held flat bytes equal to ``data`` (the model's own or a shared one), or None."""
        for original in self._pending.pop(key[0], ()):  # fingerprint same-size originals once
            self._originals.setdefault((original.size, self._fingerprint(original)), []).append(
                original
            )
        for held in self._originals.get(key, ()):
            if same_bytes(held, data):
                return held
        for ref in self._shared.get(key, ()):
            held = ref()
            if held is not None and same_bytes(_flat_bytes(held), data):
                return held
        return None

    def _share(self, array: np.ndarray, plan: PlanWeights, seen: dict[int, np.ndarray]) -> Any:
        """The held array with ``array``'s bytes (registering it when new): the model's own
        memory, a shared constant, or ``array`` itself (copied when it views other memory)."""
        if array.flags.c_contiguous and self._inside_original(array):
            return array
        if id(array) in seen:
            return seen[id(array)]
        owner = array if array.flags.c_contiguous and array.base is None else array.copy()
        data = _flat_bytes(owner)
        key = (data.size, self._fingerprint(data))
        held = self._find(key, data)
        if held is None:
            self._shared.setdefault(key, []).append(weakref.ref(owner))
            held = owner
        if held.base is None and all(h is not held for h in plan.owned):
            plan.owned.append(held)
        seen[id(array)] = held
        return held

    # ----- plans ---------------------------------------------------------------------------
    def adopt(self, compiled: CompiledModel) -> tuple[CompiledModel, PlanWeights]:
        """Resolve every WEIGHT slot of a freshly compiled plan to held memory. Returns the plan
        without its weights blob (its graph's constants rebound to the held arrays) and what the
        plan holds, for ``Model(..., weight_arrays=plan.arrays)``."""
        start = time.perf_counter()
        blob = np.frombuffer(compiled.weights, dtype=np.uint8) if compiled.weights else None
        const_at: dict[int, Any] = {}
        graph = compiled.graph
        for name, (offset, _) in (compiled.stats.get("const_offsets") or {}).items():
            node = graph.node(name) if graph.has_node(name) else None
            if node is not None and node.op_type == "Const":
                const_at[int(offset)] = node
        plan = PlanWeights()
        seen: dict[int, np.ndarray] = {}
        for slot in _weight_slots(compiled.tasks):
            if slot.offset in plan.arrays or slot.nbytes == 0:  # empty: Model makes its own
                continue
            nbytes = slot.nbytes
            node = const_at.get(slot.offset)
            value = node.attrs["value"].numpy() if node is not None else None
            if (
                not isinstance(value, np.ndarray)
                or value.nbytes != nbytes
                or value.dtype.hasobject
                or value.dtype != slot.dtype.np_dtype
            ):  # not a Const we know: the blob's bytes (a copy, owned by the shared store)
                node = None
                if blob is None or slot.offset + nbytes > blob.size:
                    raise GeError(
                        LOAD_MODEL, f"weight slot at offset {slot.offset} lies outside the blob"
                    )
                value = blob[slot.offset : slot.offset + nbytes].copy().view(slot.dtype.np_dtype)
            held = self._share(value, plan, seen)
            view = _flat_bytes(held).view(slot.dtype.np_dtype).reshape(slot.shape)
            plan.arrays[slot.offset] = view
            plan.used_bytes += nbytes
            if node is not None:
                old = node.attrs["value"]
                node.attrs["value"] = Tensor(view.reshape(value.shape), format=old.format)
        plan.seconds = time.perf_counter() - start
        return _without_blob(compiled), plan

    def prune(self) -> None:
        """Forget the shared constants no plan holds any more (freed with their plans)."""
        for key, refs in list(self._shared.items()):
            alive = [r for r in refs if r() is not None]
            if alive:
                self._shared[key] = alive
            else:
                del self._shared[key]

    def held(self) -> list[np.ndarray]:
        """The shared (non-original) constants alive now, each once."""
        self.prune()
        return [a for refs in self._shared.values() for r in refs if (a := r()) is not None]


def _weight_slots(tasks: Iterable[Any]) -> Iterable[Any]:
    for task in tasks:
        for slot in task.inputs:
            if slot.kind == SlotKind.WEIGHT:
                yield slot


def _without_blob(compiled: CompiledModel) -> CompiledModel:
    """``compiled`` with an empty weights blob (the plan's WEIGHT slots resolve elsewhere)."""
    from dataclasses import replace

    return replace(compiled, weights=b"")


__all__ = [
    "SAMPLE_BYTES",
    "WEIGHTS_BY_REFERENCE",
    "PlanWeights",
    "SharedWeights",
    "fingerprint",
    "same_bytes",
]
