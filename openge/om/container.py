"""The .om container: 256-byte header, partition table, MODEL_INOUT_INFO TLV (OM_FORMAT.md §1-3).

Layer: om (bytes only; no graph, no protobuf). ``pack_container`` lays out a file from
partition payloads; ``parse_container`` checks an untrusted buffer against every rule of
OM_FORMAT.md §7 and returns views into it (WEIGHTS_DATA is never copied). Every failure is a
``GeError``: 145006 (MODEL_DATA_SIZE_INVALID) for short buffers, sizes and offsets, 145000
(PARAM_INVALID) for a structurally invalid model.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from openge.errors import MODEL_DATA_SIZE_INVALID, PARAM_INVALID, GeError

#: ``IMOD`` read as a little-endian u32.
MODEL_MAGIC = 0x444F4D49
HEADER_SIZE = 256
#: GE's MODEL_VERSION in the header's ``version`` field.
MODEL_VERSION = 0x20000000
OM_IR_VERSION = 2
#: ``OTSK``: magic of openge's TASK_INFO partition.
TASK_INFO_MAGIC = 0x4B53544F
#: WEIGHTS_DATA starts at a file offset multiple of this, so a mapped file views it in place.
WEIGHTS_FILE_ALIGN = 4096

HEADER_STRUCT = struct.Struct("<III64sIBBBB32sI32sII20sB3sQBB62s")
assert HEADER_STRUCT.size == HEADER_SIZE
TASK_INFO_HEAD = struct.Struct("<IIQ")
_TABLE_HEAD = struct.Struct("<I4x")
_TABLE_ENTRY = struct.Struct("<I4xQQ")
_TINY_TABLE_HEAD = struct.Struct("<I")
_TINY_TABLE_ENTRY = struct.Struct("<III")
_TLV_HEAD = struct.Struct("<II")
_DESC_BASE = struct.Struct("<QiiIIII")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

#: Caps on counts read from a file (OM_FORMAT.md §7).
MAX_PARTITIONS = 32
MAX_MODELS = 32
MAX_DIMS = 8
MAX_NAME_BYTES = 4096
#: Largest tensor count accepted in one MODEL_INOUT_INFO descriptor block.
MAX_IO_TENSORS = 1 << 16

_CHECKSUM_OFFSET = 12
_CHECKSUM_SIZE = 64
_SHA_SIZE = 32


class PartitionType(IntEnum):
    """Partition types, GE's numbering (openge writes 0, 1, 2 and 8 only)."""

    MODEL_DEF = 0
    WEIGHTS_DATA = 1
    TASK_INFO = 2
    TBE_KERNELS = 3
    CUST_AICPU_KERNELS = 4
    SO_BINS = 5
    FLOW_MODEL = 6
    FLOW_SUBMODEL = 7
    MODEL_INOUT_INFO = 8


#: The partition order openge writes.
OPENGE_PARTITION_ORDER = (
    PartitionType.MODEL_INOUT_INFO,
    PartitionType.MODEL_DEF,
    PartitionType.TASK_INFO,
    PartitionType.WEIGHTS_DATA,
)


class InOutBlock(IntEnum):
    """Block types of the MODEL_INOUT_INFO TLV."""

    INPUT_DESC = 0
    OUTPUT_DESC = 1
    DYNAMIC_BATCH = 2
    DYNAMIC_HW = 3
    DYNAMIC_DIMS = 4


def _size_error(message: str) -> GeError:
    return GeError(MODEL_DATA_SIZE_INVALID, f"invalid om: {message}")


def _invalid(message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om: {message}")


# ----- header -------------------------------------------------------------------------------


def _fixed(text: str, size: int, encoding: str) -> bytes:
    """``text`` encoded, cut to ``size - 1`` bytes at a character boundary, NUL-padded."""
    raw = text.encode(encoding, errors="replace" if encoding == "ascii" else "strict")
    if len(raw) >= size:
        raw = raw[: size - 1].decode(encoding, errors="ignore").encode(encoding)
    return raw.ljust(size, b"\0")


def _cstr(raw: bytes, encoding: str) -> str:
    return raw.split(b"\0", 1)[0].decode(encoding, errors="replace")


@dataclass(frozen=True)
class OmHeader:
    """The 256-byte file header (OM_FORMAT.md §1), with openge's defaults."""

    name: str = ""
    genmode: int = 0
    ops: int = 0
    platform_version: str = ""
    is_unknow_model: int = 0
    model_length: int = 0
    checksum: bytes = bytes(_CHECKSUM_SIZE)
    magic: int = MODEL_MAGIC
    headsize: int = HEADER_SIZE
    version: int = MODEL_VERSION
    length: int = 0
    is_encrypt: int = 0
    is_checksum: int = 0
    modeltype: int = 0
    userdefineinfo: bytes = bytes(32)
    om_ir_version: int = OM_IR_VERSION
    model_num: int = 1
    platform_type: int = 0
    need_check_os_cpu_info: int = 0

    def pack(self) -> bytes:
        """The 256 header bytes (the name cut to 31 UTF-8 bytes, the version to 19 ASCII)."""
        try:
            return HEADER_STRUCT.pack(
                self.magic,
                self.headsize,
                self.version,
                self.checksum,
                self.length,
                self.is_encrypt,
                self.is_checksum,
                self.modeltype,
                self.genmode,
                _fixed(self.name, 32, "utf-8"),
                self.ops,
                self.userdefineinfo,
                self.om_ir_version,
                self.model_num,
                _fixed(self.platform_version, 20, "ascii"),
                self.platform_type,
                b"",
                self.model_length,
                self.need_check_os_cpu_info,
                self.is_unknow_model,
                b"",
            )
        except (struct.error, UnicodeError) as err:
            raise GeError(PARAM_INVALID, f"cannot write om header {self}: {err}") from err

    @classmethod
    def unpack(cls, buffer: Any) -> OmHeader:
        """Read the header from the first 256 bytes (GeError 145006 when shorter)."""
        if len(buffer) < HEADER_SIZE:
            raise _size_error(
                f"{len(buffer)} bytes is shorter than the {HEADER_SIZE}-byte om header"
            )
        (
            magic,
            headsize,
            version,
            checksum,
            length,
            is_encrypt,
            is_checksum,
            modeltype,
            genmode,
            name,
            ops,
            userdefineinfo,
            om_ir_version,
            model_num,
            platform_version,
            platform_type,
            _pad,
            model_length,
            need_check,
            is_unknow_model,
            _reserved,
        ) = HEADER_STRUCT.unpack_from(buffer, 0)
        return cls(
            name=_cstr(name, "utf-8"),
            genmode=genmode,
            ops=ops,
            platform_version=_cstr(platform_version, "ascii"),
            is_unknow_model=is_unknow_model,
            model_length=model_length,
            checksum=bytes(checksum),
            magic=magic,
            headsize=headsize,
            version=version,
            length=length,
            is_encrypt=is_encrypt,
            is_checksum=is_checksum,
            modeltype=modeltype,
            userdefineinfo=bytes(userdefineinfo),
            om_ir_version=om_ir_version,
            model_num=model_num,
            platform_type=platform_type,
            need_check_os_cpu_info=need_check,
        )

    @property
    def has_checksum(self) -> bool:
        """True when the checksum field is not all zero (GE itself writes zeros)."""
        return any(self.checksum)


# ----- partitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """One partition: its type, absolute file offset and size."""

    type: int
    offset: int
    size: int

    @property
    def type_name(self) -> str:
        """GE's name of the type, or ``TYPE_<n>`` for one openge does not know."""
        try:
            return PartitionType(self.type).name
        except ValueError:
            return f"TYPE_{self.type}"

    @property
    def end(self) -> int:
        """File offset one past the last byte."""
        return self.offset + self.size


def table_size(count: int) -> int:
    """Bytes of a partition table with ``count`` entries."""
    return _TABLE_HEAD.size + _TABLE_ENTRY.size * count


def data_start(count: int) -> int:
    """File offset of the first payload after a header and a ``count``-entry table."""
    return HEADER_SIZE + table_size(count)


def pack_container(header: OmHeader, parts: Sequence[tuple[int, Any]]) -> bytes:
    """Lay out a single-model .om: header, table, payloads back to back, SHA-256 checksum.

    ``parts`` are ``(type, payload)`` in file order, a payload being a bytes-like or a list of
    bytes-like chunks (joined without an intermediate copy); empty payloads are left out. The
    header's ``model_length``, ``model_num`` and ``checksum`` are filled in here.
    """
    payloads: list[tuple[int, list[memoryview], int]] = []
    for ptype, payload in parts:
        chunks = payload if isinstance(payload, (list, tuple)) else [payload]
        views = [_flat(c) for c in chunks]
        size = sum(v.nbytes for v in views)
        if size:
            payloads.append((int(ptype), views, size))
    if len(payloads) > MAX_PARTITIONS:
        raise GeError(PARAM_INVALID, f"{len(payloads)} partitions; at most {MAX_PARTITIONS}")
    table = bytearray(_TABLE_HEAD.pack(len(payloads)))
    offset = 0
    for ptype, _, size in payloads:
        table += _TABLE_ENTRY.pack(ptype, offset, size)
        offset += size
    sha = hashlib.sha256(table)
    for _, views, _ in payloads:
        for v in views:
            sha.update(v)
    final = replace(
        header,
        model_length=len(table) + offset,
        model_num=1,
        checksum=sha.digest().ljust(_CHECKSUM_SIZE, b"\0"),
    )
    return b"".join([final.pack(), bytes(table), *(v for _, views, _ in payloads for v in views)])


def _flat(chunk: Any) -> memoryview:
    view = memoryview(chunk)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


# ----- MODEL_INOUT_INFO ---------------------------------------------------------------------


@dataclass(frozen=True)
class InOutDesc:
    """One tensor record of MODEL_INOUT_INFO (format and dtype: the API's C++ enum values)."""

    name: str
    size: int
    format: int
    dtype: int
    dims: tuple[int, ...]
    dims_v2: tuple[int, ...] = ()
    shape_range: tuple[tuple[int, int], ...] = ()


@dataclass
class InOutInfo:
    """The parsed MODEL_INOUT_INFO partition."""

    inputs: list[InOutDesc] = field(default_factory=list)
    outputs: list[InOutDesc] = field(default_factory=list)
    dynamic_batch: list[int] = field(default_factory=list)
    #: DYNAMIC_HW / DYNAMIC_DIMS: one tuple of values per gear.
    dynamic_hw: list[tuple[int, ...]] = field(default_factory=list)
    dynamic_dims: list[tuple[int, ...]] = field(default_factory=list)
    #: Blocks of other types, raw (GE's later additions).
    other: dict[int, bytes] = field(default_factory=dict)


def _pack_descs(descs: Sequence[InOutDesc]) -> bytes:
    out = bytearray(_U32.pack(len(descs)))
    for d in descs:
        name = d.name.encode("utf-8")
        ranges = [v for pair in d.shape_range for v in pair]
        out += _DESC_BASE.pack(
            d.size,
            d.format,
            d.dtype,
            len(name),
            8 * len(d.dims),
            8 * len(d.dims_v2),
            8 * len(ranges),
        )
        out += name
        out += struct.pack(f"<{len(d.dims)}q", *d.dims)
        out += struct.pack(f"<{len(d.dims_v2)}q", *d.dims_v2)
        out += struct.pack(f"<{len(ranges)}q", *ranges)
    return bytes(out)


def _pack_gears(gears: Sequence[Sequence[int]]) -> bytes:
    """GE's vector-of-vectors value: ``u32 n; u32 part_size[n];`` then every part as i64."""
    flat = [v for g in gears for v in g]
    return struct.pack(f"<I{len(gears)}I", len(gears), *(len(g) for g in gears)) + struct.pack(
        f"<{len(flat)}q", *flat
    )


def _parse_gears(value: memoryview, what: str) -> list[tuple[int, ...]]:
    cur = _Cursor(value, what)
    (n,) = cur.unpack(_U32)
    if n * 4 > cur.left:
        raise _size_error(f"{what}: {n} gears do not fit in {cur.left} bytes")
    sizes = struct.unpack(f"<{n}I", cur.take(4 * n))
    if sum(sizes) * 8 != cur.left:
        raise _size_error(f"{what}: {sum(sizes)} values in {cur.left} bytes")
    return [cur.int64s(8 * size, "gear values", 1 << 16) for size in sizes]


def pack_inout_info(
    inputs: Sequence[InOutDesc],
    outputs: Sequence[InOutDesc],
    dynamic_batch: Sequence[int] = (),
    dynamic_hw: Sequence[Sequence[int]] = (),
    dynamic_dims: Sequence[Sequence[int]] = (),
) -> bytes:
    """The MODEL_INOUT_INFO TLV: INPUT_DESC, OUTPUT_DESC and (when given) DYNAMIC_BATCH,
    DYNAMIC_HW, DYNAMIC_DIMS (a gear model's gears, as GE records them)."""
    blocks = [
        (InOutBlock.INPUT_DESC, _pack_descs(inputs)),
        (InOutBlock.OUTPUT_DESC, _pack_descs(outputs)),
    ]
    if dynamic_batch:
        value = _U32.pack(len(dynamic_batch)) + struct.pack(
            f"<{len(dynamic_batch)}Q", *dynamic_batch
        )
        blocks.append((InOutBlock.DYNAMIC_BATCH, value))
    if dynamic_hw:
        blocks.append((InOutBlock.DYNAMIC_HW, _pack_gears(dynamic_hw)))
    if dynamic_dims:
        blocks.append((InOutBlock.DYNAMIC_DIMS, _pack_gears(dynamic_dims)))
    try:
        return b"".join(_TLV_HEAD.pack(t, len(v)) + v for t, v in blocks)
    except struct.error as err:
        raise GeError(PARAM_INVALID, f"cannot write MODEL_INOUT_INFO: {err}") from err


class _Cursor:
    """Bounds-checked little-endian reads from a memoryview; errors name ``what``."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: memoryview, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> memoryview:
        if n < 0 or n > len(self.data) - self.pos:
            raise _size_error(
                f"{self.what}: {n} bytes needed at offset {self.pos}, "
                f"{len(self.data) - self.pos} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct) -> tuple[Any, ...]:
        return st.unpack(self.take(st.size))

    def int64s(self, nbytes: int, label: str, limit: int) -> tuple[int, ...]:
        if nbytes % 8:
            raise _invalid(f"{self.what}: {label} length {nbytes} is not a multiple of 8")
        if nbytes // 8 > limit:
            raise _invalid(f"{self.what}: {nbytes // 8} {label}; at most {limit}")
        raw = self.take(nbytes)
        return struct.unpack(f"<{nbytes // 8}q", raw)

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def parse_descs(value: memoryview, what: str) -> list[InOutDesc]:
    """The tensor records of an INPUT_DESC / OUTPUT_DESC block, every length checked."""
    cur = _Cursor(value, what)
    (count,) = cur.unpack(_U32)
    if count > min(MAX_IO_TENSORS, cur.left // _DESC_BASE.size):
        raise _size_error(f"{what}: {count} tensors do not fit in {cur.left} bytes")
    out = []
    for i in range(count):
        size, fmt, dtype, name_len, dims_len, dims2_len, range_len = cur.unpack(_DESC_BASE)
        where = f"{what} tensor {i}"
        if name_len > MAX_NAME_BYTES:
            raise _invalid(f"{where}: name of {name_len} bytes; at most {MAX_NAME_BYTES}")
        name = bytes(cur.take(name_len)).decode("utf-8", errors="replace")
        dims = cur.int64s(dims_len, "dims", MAX_DIMS)
        dims2 = cur.int64s(dims2_len, "dimsV2", MAX_DIMS)
        flat = cur.int64s(range_len, "shape-range values", 2 * MAX_DIMS)
        if len(flat) % 2:
            raise _invalid(f"{where}: shape range has an odd number of values")
        ranges = tuple((flat[j], flat[j + 1]) for j in range(0, len(flat), 2))
        out.append(InOutDesc(name, size, fmt, dtype, dims, dims2, ranges))
    if cur.left:
        raise _invalid(f"{what}: {cur.left} bytes left after {count} tensors")
    return out


def parse_inout_info(data: memoryview) -> InOutInfo:
    """Parse a MODEL_INOUT_INFO payload (all lengths checked; GeError on any mismatch)."""
    info = InOutInfo()
    cur = _Cursor(data, "MODEL_INOUT_INFO")
    seen: set[int] = set()
    while cur.left:
        btype, length = cur.unpack(_TLV_HEAD)
        value = cur.take(length)
        if btype in seen:
            raise _invalid(f"MODEL_INOUT_INFO has block type {btype} twice")
        seen.add(btype)
        if btype == InOutBlock.INPUT_DESC:
            info.inputs = parse_descs(value, "MODEL_INOUT_INFO input desc")
        elif btype == InOutBlock.OUTPUT_DESC:
            info.outputs = parse_descs(value, "MODEL_INOUT_INFO output desc")
        elif btype == InOutBlock.DYNAMIC_BATCH:
            sub = _Cursor(value, "MODEL_INOUT_INFO dynamic batch")
            (n,) = sub.unpack(_U32)
            if n * 8 != sub.left:
                raise _size_error(f"dynamic batch of {n} values in {sub.left} bytes")
            info.dynamic_batch = list(struct.unpack(f"<{n}Q", sub.take(n * 8)))
        elif btype == InOutBlock.DYNAMIC_HW:
            info.dynamic_hw = _parse_gears(value, "MODEL_INOUT_INFO dynamic HW")
        elif btype == InOutBlock.DYNAMIC_DIMS:
            info.dynamic_dims = _parse_gears(value, "MODEL_INOUT_INFO dynamic dims")
        else:
            info.other[btype] = bytes(value)
    return info


# ----- reading a whole container ------------------------------------------------------------


@dataclass
class ParsedContainer:
    """The checked structure of an .om buffer; payloads are views into the caller's buffer.

    ``foreign`` is True for a file openge did not make (e.g. a device .om from ATC): its header,
    partitions and ModelDef can be read, but it cannot be executed by openge.
    """

    header: OmHeader
    #: Partitions of the first (main) model, in file order, with absolute offsets.
    partitions: list[Partition]
    buffer: memoryview
    model_def: memoryview
    weights: memoryview
    #: openge's task-list protobuf (TASK_INFO body), or None for a foreign model.
    task_body: memoryview | None
    task_format_major: int | None
    inout: InOutInfo
    foreign: bool
    checksum_verified: bool
    #: Partition lists of the further models of a multi-model (model_num > 1) file.
    extra_models: list[list[Partition]] = field(default_factory=list)
    #: Why MODEL_INOUT_INFO of a foreign model could not be read ("" when it was fine).
    inout_error: str = ""

    def partition(self, ptype: int) -> Partition | None:
        """The main model's partition of that type, or None."""
        for p in self.partitions:
            if p.type == ptype:
                return p
        return None

    def view(self, part: Partition) -> memoryview:
        """The payload of ``part`` (a view, no copy)."""
        return self.buffer[part.offset : part.end]


def as_byte_view(buffer: Any) -> memoryview:
    """A flat unsigned-byte memoryview of any bytes-like (bytes, bytearray, mmap, memoryview)."""
    try:
        view = memoryview(buffer)
    except (TypeError, ValueError) as err:  # not a buffer, or a closed mmap
        raise GeError(
            PARAM_INVALID,
            f"an om buffer must be bytes-like (bytes, bytearray, memoryview, mmap); "
            f"got {type(buffer).__name__} ({err})",
        ) from None
    if not view.c_contiguous:
        raise GeError(PARAM_INVALID, "an om buffer must be a contiguous block of bytes")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _read_table(
    view: memoryview, start: int, end: int, tiny: bool, what: str
) -> tuple[list[Partition], int]:
    """Read one partition table at ``start``; returns the partitions and the end offset."""
    head, entry = (_TINY_TABLE_HEAD, _TINY_TABLE_ENTRY) if tiny else (_TABLE_HEAD, _TABLE_ENTRY)
    if end - start < head.size:
        raise _size_error(f"{what}: no room for a partition table at offset {start}")
    (count,) = head.unpack_from(view, start)
    if count == 0 or count > MAX_PARTITIONS:
        raise _invalid(f"{what}: partition count {count}; it must be 1..{MAX_PARTITIONS}")
    tsize = head.size + entry.size * count
    if tsize > end - start:
        raise _size_error(f"{what}: a table of {count} partitions does not fit in the file")
    pos = start + tsize
    parts: list[Partition] = []
    running = 0
    for i in range(count):
        ptype, offset, size = entry.unpack_from(view, start + head.size + entry.size * i)
        if offset != running:
            raise _invalid(
                f"{what}: partition {i} (type {ptype}) has offset {offset}; the sizes before "
                f"it add up to {running} (partitions must be back to back, in table order)"
            )
        if size > end - pos:
            raise _size_error(
                f"{what}: partition {i} (type {ptype}) of {size} bytes at file offset {pos} "
                f"runs past the end of the model ({end} bytes)"
            )
        if any(p.type == ptype for p in parts):
            raise _invalid(f"{what}: partition type {ptype} appears twice")
        parts.append(Partition(ptype, pos, size))
        pos += size
        running += size
    return parts, pos


def parse_container(buffer: Any, *, verify_checksum: bool = True) -> ParsedContainer:
    """Check and split an .om buffer (bytes, bytearray, memoryview or mmap) without copying.

    Checks, in order: length ≥ 256, magic, header size, ``model_length`` against the buffer,
    the SHA-256 checksum when present (and ``verify_checksum``), then each partition table
    (count ≤ 32, offsets equal to the running size sum, no overlap, nothing past the end),
    MODEL_DEF present, MODEL_INOUT_INFO well formed, and openge's TASK_INFO head. Raises only
    GeError (145006 for sizes, 145000 for an invalid model).
    """
    view = as_byte_view(buffer)
    header = OmHeader.unpack(view)
    total = len(view)
    if header.magic != MODEL_MAGIC:
        raise _size_error(
            f"magic 0x{header.magic:08X} is not 0x{MODEL_MAGIC:08X} ('IMOD'): not an .om file"
        )
    if header.headsize != HEADER_SIZE:
        raise _invalid(f"header size {header.headsize}; an om header has {HEADER_SIZE} bytes")
    model_len = header.model_length if header.model_length else header.length
    if model_len != total - HEADER_SIZE:
        raise _size_error(
            f"the header says the model has {model_len} bytes after the header but the buffer "
            f"has {total - HEADER_SIZE} (truncated or padded file?)"
        )
    if header.is_encrypt:
        raise _invalid("the model is encrypted; openge reads only unencrypted models")
    verified = False
    if header.has_checksum and verify_checksum:
        expected = header.checksum[:_SHA_SIZE]
        if any(header.checksum[_SHA_SIZE:]) or hashlib.sha256(view[HEADER_SIZE:]).digest() != (
            expected
        ):
            raise _invalid(
                "checksum mismatch: the file is corrupted (the SHA-256 of its bytes after the "
                "header differs from the one recorded); rebuild or re-copy the model"
            )
        verified = True
    model_num = max(header.model_num, 1)
    if model_num > MAX_MODELS:
        raise _invalid(f"model_num {header.model_num}; at most {MAX_MODELS}")
    tiny = header.model_length == 0
    models: list[list[Partition]] = []
    pos = HEADER_SIZE
    for index in range(model_num):
        what = "partition table" if model_num == 1 else f"partition table of model {index}"
        parts, pos = _read_table(view, pos, total, tiny, what)
        models.append(parts)
    if model_num > 1 and pos != total:
        raise _size_error(f"the {model_num} models end at offset {pos}, the file at {total}")
    main = models[0]
    by_type = {p.type: p for p in main}
    if PartitionType.MODEL_DEF not in by_type:
        raise _invalid("no MODEL_DEF partition (the graph); every om has one")

    def view_of(ptype: int) -> memoryview:
        p = by_type.get(ptype)
        return view[p.offset : p.end] if p is not None else view[0:0]

    task_body: memoryview | None = None
    task_major: int | None = None
    task = view_of(PartitionType.TASK_INFO)
    if len(task) >= TASK_INFO_HEAD.size:
        magic, major, body_len = TASK_INFO_HEAD.unpack_from(task, 0)
        if magic == TASK_INFO_MAGIC:
            if body_len > len(task) - TASK_INFO_HEAD.size:
                raise _size_error(
                    f"TASK_INFO body of {body_len} bytes does not fit in its partition "
                    f"({len(task)} bytes)"
                )
            end = TASK_INFO_HEAD.size + body_len
            if any(task[end:]):
                raise _invalid("TASK_INFO padding after the task list is not zero")
            task_body = task[TASK_INFO_HEAD.size : end]
            task_major = major
    foreign = task_body is None
    if not foreign:
        _check_openge_layout(header, main, model_num, pos, total)
    inout = InOutInfo()
    inout_error = ""
    if PartitionType.MODEL_INOUT_INFO in by_type:
        try:
            inout = parse_inout_info(view_of(PartitionType.MODEL_INOUT_INFO))
        except GeError as err:
            if not foreign:
                raise
            inout_error = err.message  # optional for readers: a foreign file still opens
    return ParsedContainer(
        header=header,
        partitions=main,
        buffer=view,
        model_def=view_of(PartitionType.MODEL_DEF),
        weights=view_of(PartitionType.WEIGHTS_DATA),
        task_body=task_body,
        task_format_major=task_major,
        inout=inout,
        foreign=foreign,
        checksum_verified=verified,
        extra_models=models[1:],
        inout_error=inout_error,
    )


def _check_openge_layout(
    header: OmHeader, parts: list[Partition], model_num: int, end: int, total: int
) -> None:
    """Rules that hold for every file openge writes (OM_FORMAT.md §2)."""
    if model_num != 1 or header.model_length == 0:
        raise _invalid("an openge model has one model and a 64-bit partition table")
    if end != total:
        raise _size_error(f"{total - end} bytes after the last partition")
    order = [p.type for p in parts]
    allowed = [t for t in OPENGE_PARTITION_ORDER if t in order]
    if order != allowed:
        names = ", ".join(p.type_name for p in parts)
        raise _invalid(
            f"partitions {names}: openge writes MODEL_INOUT_INFO, MODEL_DEF, TASK_INFO, "
            "WEIGHTS_DATA in this order and no other types"
        )


__all__ = [
    "HEADER_SIZE",
    "MAX_DIMS",
    "MAX_NAME_BYTES",
    "MAX_PARTITIONS",
    "MODEL_MAGIC",
    "OPENGE_PARTITION_ORDER",
    "TASK_INFO_HEAD",
    "TASK_INFO_MAGIC",
    "WEIGHTS_FILE_ALIGN",
    "InOutBlock",
    "InOutDesc",
    "InOutInfo",
    "OmHeader",
    "ParsedContainer",
    "Partition",
    "PartitionType",
    "as_byte_view",
    "data_start",
    "pack_container",
    "pack_inout_info",
    "parse_container",
    "parse_inout_info",
    "table_size",
]
