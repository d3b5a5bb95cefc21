"""Reading GE data-dump files (``runtime.dump`` writes them; device dumps have the same form).

A file is untrusted: its header length, protobuf header and every size are checked against the
file's real size before anything is sliced, and the result is a GeError — never a struct or
protobuf traceback — when the file does not follow the rule
``size = 8 + header_len + Σ input sizes + Σ output sizes + Σ buffer sizes``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.om.modeldef import from_proto_dtype

#: Largest dump file read (a bigger one is refused).
MAX_DUMP_BYTES = 1 << 33


@dataclass
class DumpTensor:
    """One input or output of a dump file."""

    array: np.ndarray
    format: int
    original_op: str = ""
    original_index: int = 0


@dataclass
class DumpFile:
    """A parsed dump file: the DumpData header and the tensors it describes."""

    op_name: str
    header_len: int
    header: Any
    inputs: list[DumpTensor] = field(default_factory=list)
    outputs: list[DumpTensor] = field(default_factory=list)


def read_dump_file(path: str) -> DumpFile:
    """Parse a GE dump file (GeError naming the file and the rule it breaks)."""
    from google.protobuf.message import DecodeError

    from openge.runtime import dump_data_pb2 as pb

    try:
        size = os.path.getsize(path)
        if size > MAX_DUMP_BYTES:
            raise GeError(PARAM_INVALID, f"dump file {path}: {size} bytes is over the limit")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise GeError(PARAM_INVALID, f"cannot read dump file {path}: {err.strerror}") from err
    if len(data) < 8:
        raise GeError(PARAM_INVALID, f"dump file {path}: shorter than its 8-byte header length")
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > len(data) - 8:
        raise GeError(
            PARAM_INVALID,
            f"dump file {path}: header length {header_len} exceeds the file ({len(data)} bytes)",
        )
    header = pb.DumpData()
    try:
        header.ParseFromString(data[8 : 8 + header_len])
    except DecodeError as err:
        raise GeError(PARAM_INVALID, f"dump file {path}: bad DumpData header: {err}") from None
    offset = 8 + header_len
    out = DumpFile(header.op_name, header_len, header)
    for kind, entries, target in (
        ("input", header.input, out.inputs),
        ("output", header.output, out.outputs),
    ):
        for k, entry in enumerate(entries):
            where = f"dump file {path}: {kind} {k}"
            array = _tensor(data, offset, entry, where)
            offset += entry.size
            name = entry.original_op.name if kind == "output" else ""
            index = entry.original_op.output_index if kind == "output" else 0
            target.append(DumpTensor(array, int(entry.format), name, int(index)))
    offset += sum(b.size for b in header.buffer)
    if offset != len(data):
        raise GeError(
            PARAM_INVALID,
            f"dump file {path}: 8 + header {header_len} + tensor sizes = {offset} bytes, "
            f"but the file has {len(data)}",
        )
    return out


def _tensor(data: bytes, offset: int, entry: Any, where: str) -> np.ndarray:
    try:
        dtype = from_proto_dtype(int(entry.data_type)).np_dtype
    except GeError as err:
        raise GeError(PARAM_INVALID, f"{where}: {err.message}") from None
    shape = tuple(int(d) for d in entry.shape.dim)
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != entry.size:
        raise GeError(
            PARAM_INVALID,
            f"{where}: shape {list(shape)} of {dtype} needs {count * dtype.itemsize} bytes, "
            f"size says {entry.size}",
        )
    if offset + entry.size > len(data):
        raise GeError(PARAM_INVALID, f"{where}: data runs past the end of the file")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
