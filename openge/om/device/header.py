"""The 256-byte header of a device .om, versions 1.0 and 2.0 (ref/device_om.md).

Layer: om. Version 2.0 is the layout openge itself writes; version 1.0 (older ATC) has no
``model_num`` and keeps ``platform_version`` at 0x9C. ``model_size`` applies GE's rule:
``model_length`` when non-zero, else ``length``; it must equal the bytes after the header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from openge.om.device.binio import cstr, invalid, size_error

MAGIC = 0x444F4D49
HEADER_SIZE = 256
VERSION_1 = 0x10000000
VERSION_2 = 0x20000000

_COMMON = struct.Struct("<III64sIBBBB32sI32sI")  # up to om_ir_version (0x9C)
_V2_TAIL = struct.Struct("<I20sB3xQBB")  # model_num .. is_unknow_model
_V1_TAIL = struct.Struct("<20sB")  # platform_version, platform_type


class ModelType(IntEnum):
    """The header's ``modeltype`` byte."""

    IR = 0
    STANDARD = 1
    OM_TINY = 2
    FLOW = 3
    LITE = 4
    BUNDLE = 5


@dataclass(frozen=True)
class DeviceHeader:
    """A device om header, both versions (fields a version lacks are 0 / "")."""

    version: int
    length: int
    is_encrypt: int
    is_checksum: int
    modeltype: int
    genmode: int
    name: str
    ops: int
    om_ir_version: int
    model_num: int
    platform_version: str
    platform_type: int
    model_length: int
    need_check_os_cpu_info: int
    is_unknow_model: int
    checksum_set: bool

    @property
    def version_text(self) -> str:
        """``"1.0"``, ``"2.0"`` or the raw hex value."""
        return {VERSION_1: "1.0", VERSION_2: "2.0"}.get(self.version, f"0x{self.version:08X}")

    @property
    def modeltype_name(self) -> str:
        """GE's name of ``modeltype`` (``IR``, ``FLOW``, ``BUNDLE`` …)."""
        try:
            return ModelType(self.modeltype).name
        except ValueError:
            return f"TYPE_{self.modeltype}"

    @property
    def model_size(self) -> int:
        """Bytes after the header according to the header (GE's rule)."""
        return self.model_length if self.model_length else self.length


def is_device_magic(view: memoryview) -> bool:
    """True when ``view`` starts like an om file (``IMOD``)."""
    return len(view) >= 4 and struct.unpack_from("<I", view, 0)[0] == MAGIC


def parse_header(view: memoryview) -> DeviceHeader:
    """Read and check the header of a device om held in ``view`` (GeError when malformed)."""
    if len(view) < HEADER_SIZE:
        if len(view) >= 4 and not is_device_magic(view):
            raise size_error(f"{len(view)} bytes and no 'IMOD' magic: not an .om file")
        raise size_error(f"{len(view)} bytes is shorter than the {HEADER_SIZE}-byte om header")
    (magic, headsize, version, checksum, length, enc, chk, mtype, gen, name, ops, _udi, irv) = (
        _COMMON.unpack_from(view, 0)
    )
    if magic != MAGIC:
        raise size_error(f"magic 0x{magic:08X} is not 0x{MAGIC:08X} ('IMOD'): not an .om file")
    if headsize != HEADER_SIZE:
        raise invalid(f"header size {headsize}; an om header has {HEADER_SIZE} bytes")
    if version == VERSION_1:
        platform, ptype = _V1_TAIL.unpack_from(view, _COMMON.size)
        model_num, model_length, check_os, unknown = 1, 0, 0, 0
    elif version >= VERSION_2:  # GE reads every version from 2.0 on with the 2.0 layout
        model_num, platform, ptype, model_length, check_os, unknown = _V2_TAIL.unpack_from(
            view, _COMMON.size
        )
    else:
        raise invalid(
            f"header version 0x{version:08X}; openge reads 1.0 (0x{VERSION_1:08X}) and 2.0 "
            f"(0x{VERSION_2:08X}) and later"
        )
    header = DeviceHeader(
        version=version,
        length=length,
        is_encrypt=enc,
        is_checksum=chk,
        modeltype=mtype,
        genmode=gen,
        name=cstr(name),
        ops=ops,
        om_ir_version=irv,
        model_num=model_num,
        platform_version=cstr(platform),
        platform_type=ptype,
        model_length=model_length,
        need_check_os_cpu_info=check_os,
        is_unknow_model=unknown,
        checksum_set=any(bytes(checksum)),
    )
    total = len(view) - HEADER_SIZE
    size = header.model_size
    # GE's bundle writer records the whole buffer, header included, in model_length.
    if size != total and not (mtype == ModelType.BUNDLE and size == len(view)):
        raise size_error(
            f"the header says the model has {size} bytes after the header "
            f"({'model_length' if header.model_length else 'length'}) but the file has "
            f"{total} (truncated or padded file?)"
        )
    if enc:
        raise invalid("the model is encrypted; openge reads only unencrypted models")
    return header


__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "VERSION_1",
    "VERSION_2",
    "DeviceHeader",
    "ModelType",
    "is_device_magic",
    "parse_header",
]
