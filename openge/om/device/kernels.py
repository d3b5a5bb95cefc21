"""Kernel stores (TBE_KERNELS, CUST_AICPU_KERNELS, CUSTOM_OPS): listed, never executed.

Layer: om. A store is a run of items ``u32 magic, u32 name_len, u32 bin_len, name, bin``
(magic 0x5D776EFD; CUSTOM_OPS uses 0x4B43534B). The bins are device ELF files: openge lists
their names and sizes (and whether a bin looks like ELF) and never loads or runs them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openge.om.device.binio import Cursor, invalid
from openge.om.device.partitions import PartType

KERNEL_MAGIC = 0x5D776EFD
CUSTOM_KERNEL_MAGIC = 0x4B43534B
_ITEM = struct.Struct("<III")
MAX_KERNELS = 1 << 16
MAX_KERNEL_NAME = 4096


@dataclass(frozen=True)
class KernelBin:
    """One kernel of a store: its name, binary size and where the binary starts."""

    store: str
    name: str
    size: int
    offset: int
    is_elf: bool


def parse_kernel_store(data: memoryview, ptype: int, base: int = 0) -> list[KernelBin]:
    """The kernels of one store partition; ``base`` is the partition's file offset."""
    magic = CUSTOM_KERNEL_MAGIC if ptype == PartType.CUSTOM_OPS else KERNEL_MAGIC
    store = PartType(ptype).name
    cur = Cursor(data, store)
    out: list[KernelBin] = []
    while cur.left:
        if len(out) >= MAX_KERNELS:
            raise invalid(f"{store}: more than {MAX_KERNELS} kernels")
        item_magic, name_len, bin_len = cur.unpack(_ITEM)
        if item_magic != magic:
            raise invalid(
                f"{store}: kernel {len(out)} has magic 0x{item_magic:08X}, expected 0x{magic:08X}"
            )
        name = cur.text(name_len, "kernel name", MAX_KERNEL_NAME)
        start = cur.pos
        binary = cur.take(bin_len)
        is_elf = bytes(binary[:4]) == b"\x7fELF"
        out.append(KernelBin(store, name, bin_len, base + start, is_elf))
    return out


__all__ = ["CUSTOM_KERNEL_MAGIC", "KERNEL_MAGIC", "KernelBin", "parse_kernel_store"]
