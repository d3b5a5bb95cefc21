"""Data dump: every op execution's tensors in GE's layout and binary format, or as .npy.

Configured by the GE options ``ge.exec.enableDump`` / ``dumpPath`` / ``dumpMode`` /
``dumpStep`` / ``dumpLayer`` (:meth:`DumpConfig.from_options`) or by acl.json's ``"dump"``
section (:meth:`DumpConfig.from_acl_json`, what ``openge.acl.init`` calls), then attached to a
loaded model with ``Model.set_dump(config, model_id=...)``. docs/dump.md has the details.

Layout: ``{dump_path}/{YYYYMMDDHHMMSS}/{device_id}/{model_name}/{model_id}/{step}/`` holds, per
task execution, ``{op_type}.{op_name}.{task_id}.{stream_id}.{timestamp}``: an 8-byte
little-endian header length, a ``toolkit.dump.DumpData`` header (``dump_data.proto``; every
``data`` field empty) and the raw bytes of the inputs then the outputs — so the file size is
8 + header length + Σ sizes. With ``ge.exec.dumpFormat=npy`` (``"dump_format": "npy"`` in
acl.json) the outputs are written as golden ``{op_name}.{output_index}.{timestamp}.npy`` files
instead. A fused task names its file after itself and records, per output, the source op it
computes (``original_op``, from ``_datadump_original_op_names``).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import Format
from openge.om.modeldef import to_proto_dtype
from openge.om.plan import CompiledModel

logger = logging.getLogger(__name__)

#: The DumpData ``version`` openge writes.
DUMP_VERSION = "2.0"
ORIGINAL_NAMES_ATTR = "_datadump_original_op_names"
MODES = ("input", "output", "all")
_STEP_RE = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*\|\s*\d+(\s*-\s*\d+)?)*\s*$")
#: Characters a name may not carry into a file name.
_UNSAFE = re.compile(r"[/\\\x00]")


def parse_steps(text: str, where: str) -> tuple[tuple[int, int], ...] | None:
    """``"0|2-4"`` → ((0, 0), (2, 4)); empty → None (every step)."""
    if not text.strip():
        return None
    if not _STEP_RE.match(text):
        raise GeError(
            PARAM_INVALID,
            f"{where} = {text!r} is not valid; write steps and ranges joined by |, e.g. 0|2-4",
        )
    out = []
    for part in text.split("|"):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi) if hi.strip() else int(lo)
        if b < a:
            raise GeError(PARAM_INVALID, f"{where}: range {part.strip()!r} is backwards")
        out.append((a, b))
    return tuple(out)


@dataclass(frozen=True)
class DumpConfig:
    """What to dump and where."""

    path: str
    mode: str = "output"
    steps: tuple[tuple[int, int], ...] | None = None
    #: op names to dump (a fused task matches any of its source ops); None: every op.
    layers: frozenset[str] | None = None
    #: model names to dump (acl.json dump_list); None: every model. Per model, the layers.
    models: Mapping[str, frozenset[str] | None] | None = None
    format: str = "ge"
    device_id: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise GeError(PARAM_INVALID, f"dump mode {self.mode!r}: accepted {', '.join(MODES)}")
        if self.format not in ("ge", "npy"):
            raise GeError(PARAM_INVALID, f"dump format {self.format!r}: accepted ge, npy")
        if not self.path.strip():
            raise GeError(PARAM_INVALID, "the dump path is empty; set ge.exec.dumpPath")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> DumpConfig | None:
        """The dump asked for by GE options (None when ``ge.exec.enableDump`` is not 1)."""
        if options.get("ge.exec.enableDump", "0") != "1":
            return None
        path = options.get("ge.exec.dumpPath", "")
        if not path:
            raise GeError(
                PARAM_INVALID, "ge.exec.enableDump=1 needs ge.exec.dumpPath (the dump folder)"
            )
        layers = options.get("ge.exec.dumpLayer", "").split()
        return cls(
            path=path,
            mode=options.get("ge.exec.dumpMode", "output"),
            steps=parse_steps(options.get("ge.exec.dumpStep", ""), "ge.exec.dumpStep"),
            layers=frozenset(layers) if layers else None,
            format=options.get("ge.exec.dumpFormat", "ge"),
            device_id=int(options.get("ge.exec.deviceId", "0") or 0),
        )

    @classmethod
    def from_acl_json(cls, dump: Mapping[str, Any], device_id: int = 0) -> DumpConfig | None:
        """The dump asked for by acl.json's ``"dump"`` object (already parsed JSON).

        Keys: ``dump_path`` (required), ``dump_mode`` (input|output|all, default output),
        ``dump_step`` ("0|2-4"), ``dump_list`` ([{"model_name": m, "layer": [...]}]; empty or
        absent: every model; an entry without layers: every op of that model),
        ``dump_op_switch`` (accepted; single-op dumps do not exist in openge),
        ``dump_data`` ("tensor"; "stats" is refused), openge's ``dump_format`` (ge|npy).
        Returns None when ``dump_path`` is absent and nothing else is set (dump off).
        """
        if not isinstance(dump, Mapping):
            raise GeError(PARAM_INVALID, 'acl.json "dump" must be an object')
        if not dump:
            return None
        path = dump.get("dump_path")
        if not isinstance(path, str) or not path.strip():
            raise GeError(PARAM_INVALID, 'acl.json "dump" needs "dump_path" (a folder)')
        data = dump.get("dump_data", "tensor")
        if data != "tensor":
            raise GeError(
                PARAM_INVALID, f'acl.json dump_data = {data!r}: openge dumps "tensor" only'
            )
        models: dict[str, frozenset[str] | None] | None = None
        entries = dump.get("dump_list", [])
        if not isinstance(entries, list):
            raise GeError(PARAM_INVALID, 'acl.json "dump_list" must be a list')
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("model_name"), str):
                raise GeError(
                    PARAM_INVALID,
                    f'acl.json dump_list entry {entry!r} needs "model_name" (a string)',
                )
            layer = entry.get("layer", [])
            if not isinstance(layer, list) or not all(isinstance(x, str) for x in layer):
                raise GeError(PARAM_INVALID, f"acl.json dump_list layer {layer!r}: strings")
            models = models if models is not None else {}
            models[entry["model_name"]] = frozenset(layer) if layer else None
        for key in ("dump_mode", "dump_step", "dump_format"):
            if key in dump and not isinstance(dump[key], str):
                raise GeError(PARAM_INVALID, f"acl.json {key} must be a string")
        return cls(
            path=path,
            mode=dump.get("dump_mode", "output"),
            steps=parse_steps(dump.get("dump_step", ""), "acl.json dump_step"),
            models=models,
            format=dump.get("dump_format", "ge"),
            device_id=device_id,
        )

    def layers_for(self, model_name: str) -> tuple[bool, frozenset[str] | None]:
        """(whether the model is dumped at all, its op-name filter or None for all)."""
        if self.models is None:
            return True, self.layers
        if model_name not in self.models:
            return False, None
        return True, self.models[model_name]

    def wants_step(self, step: int) -> bool:
        """True when execution ``step`` (0-based) is dumped."""
        return self.steps is None or any(a <= step <= b for a, b in self.steps)


@dataclass(frozen=True)
class _TaskInfo:
    index: int
    name: str
    op_type: str
    sources: tuple[str, ...]
    in_formats: tuple[int, ...]
    out_formats: tuple[int, ...]


def safe_name(name: str) -> str:
    """``name`` usable as one path component (``/`` → ``_``, as GE does)."""
    cleaned = _UNSAFE.sub("_", name)
    return "_" if cleaned in ("", ".", "..") else cleaned


class ModelDumper:
    """Writes the dump of one loaded model: one instance per ``Model.set_dump``."""

    def __init__(
        self, config: DumpConfig, compiled: CompiledModel, model_name: str, model_id: int
    ) -> None:
        self.config = config
        self.model_name = model_name
        self.model_id = model_id
        self.step = 0
        self.folder: str | None = None
        self._stamp = time.strftime("%Y%m%d%H%M%S")
        enabled, layers = config.layers_for(model_name)
        self.enabled = enabled
        formats = _formats_of(compiled)
        self.tasks: list[_TaskInfo | None] = []
        for i, task in enumerate(compiled.tasks):
            sources = tuple(task.attrs.get(ORIGINAL_NAMES_ATTR) or (task.name,))
            wanted = layers is None or task.name in layers or any(s in layers for s in sources)
            fin, fout = formats.get(task.name, ((), ()))
            self.tasks.append(
                _TaskInfo(i, task.name, task.op_type, sources, fin, fout) if wanted else None
            )

    def begin(self) -> bool:
        """Start one execution; True when it is dumped (its folder then exists)."""
        step = self.step
        self.step += 1
        if not self.enabled or not self.config.wants_step(step):
            self.folder = None
            return False
        folder = os.path.join(
            self.config.path,
            self._stamp,
            str(self.config.device_id),
            safe_name(self.model_name),
            str(self.model_id),
            str(step),
        )
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise GeError(
                PARAM_INVALID, f"cannot create dump folder {folder!r}: {err.strerror}"
            ) from err
        self.folder = folder
        return True

    def task(self, index: int, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Dump task ``index``'s tensors (after it ran)."""
        info = self.tasks[index]
        if info is None or self.folder is None:
            return
        stamp = f"{time.time_ns() // 1000:016d}"
        mode = self.config.mode
        ins = [x for x in inputs if isinstance(x, np.ndarray)] if mode != "output" else []
        outs = list(outputs) if mode != "input" else []
        try:
            if self.config.format == "npy":
                for k, y in enumerate(outputs):
                    name = f"{safe_name(info.sources[-1])}.{k}.{stamp}.npy"
                    np.save(os.path.join(self.folder, name), np.asarray(y))
                return
            name = f"{safe_name(info.op_type)}.{safe_name(info.name)}.{info.index}.0.{stamp}"
            write_dump_file(os.path.join(self.folder, name), info, ins, outs)
        except OSError as err:
            raise GeError(
                PARAM_INVALID, f"cannot write the dump of {info.name}: {err.strerror}"
            ) from err


def write_dump_file(
    path: str, info: _TaskInfo, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]
) -> None:
    """One GE dump file: u64 header length, DumpData header, inputs' bytes, outputs' bytes."""
    from openge.runtime import dump_data_pb2 as pb

    header = pb.DumpData(version=DUMP_VERSION, dump_time=time.time_ns() // 1000)
    header.op_name = info.name
    blobs: list[np.ndarray] = []
    for k, x in enumerate(inputs):
        entry = header.input.add(data_type=_dump_dtype(x), size=x.nbytes)
        entry.format = info.in_formats[k] if k < len(info.in_formats) else Format.FORMAT_ND
        entry.shape.dim.extend(x.shape)
        entry.original_shape.dim.extend(x.shape)
        blobs.append(x)
    for k, y in enumerate(outputs):
        entry = header.output.add(data_type=_dump_dtype(y), size=y.nbytes)
        entry.format = info.out_formats[k] if k < len(info.out_formats) else Format.FORMAT_ND
        entry.shape.dim.extend(y.shape)
        entry.original_shape.dim.extend(y.shape)
        entry.original_op.name = info.sources[-1]
        entry.original_op.output_index = k
        entry.original_op.data_type = entry.data_type
        entry.original_op.format = entry.format
        blobs.append(y)
    raw = header.SerializeToString()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(np.ascontiguousarray(b).reshape(-1).view(np.uint8).data)


def _dump_dtype(x: np.ndarray) -> int:
    from openge.graph import from_numpy_dtype

    return to_proto_dtype(from_numpy_dtype(x.dtype))


def _formats_of(compiled: CompiledModel) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Task name → (input formats, output formats) from the compiled graph's descs."""
    try:
        graph = compiled.graph
    except Exception:  # a model without its graph: every tensor is ND
        return {}
    out = {}
    for node in graph:
        fin = tuple(
            int(p.desc.format) if p is not None else int(Format.FORMAT_ND) for p in node.inputs
        )
        out[node.name] = (fin, tuple(int(d.format) for d in node.output_descs))
    return out


__all__ = [
    "DUMP_VERSION",
    "MODES",
    "DumpConfig",
    "ModelDumper",
    "parse_steps",
    "safe_name",
    "write_dump_file",
]
