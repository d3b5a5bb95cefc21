"""'Device' and host memory of the facade: process memory with real addresses, every
allocation tracked, every copy bounds-checked against the allocations it touches."""

from __future__ import annotations

import bisect
import ctypes
import threading
from collections import OrderedDict

import numpy as np

from openge.acl import _codes as codes

ALIGN = 64  # GE aligns device buffers; 64 bytes also suits SIMD kernels on the CPU
#: Freed blocks stay owned (quarantined, as AddressSanitizer does) up to this many bytes, so a
#: use after free is reported as an error instead of writing into memory Python reused.
QUARANTINE_BYTES = 64 << 20
#: Addresses below this are never valid pointers (the null page and its neighbourhood).
MIN_ADDRESS = 0x10000


class Allocation:
    """One block from ``malloc`` / ``malloc_host``."""

    __slots__ = ("addr", "array", "host", "size")

    def __init__(self, size: int, host: bool) -> None:
        raw = np.empty(size + ALIGN, dtype=np.uint8)
        start = (-raw.ctypes.data) % ALIGN
        self.array = raw[start : start + size]
        self.addr = int(self.array.ctypes.data) if size else int(raw.ctypes.data) + start
        self.size = size
        self.host = host


class MemoryRegistry:
    """Live allocations by address, with lookup of the block containing an address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[int, Allocation] = {}
        self._starts: list[int] = []
        self._freed: OrderedDict[int, Allocation] = OrderedDict()  # the quarantine, oldest first
        self._freed_starts: list[int] = []
        self._freed_bytes = 0

    def allocate(self, size: int, host: bool) -> int:
        """A new block of ``size`` bytes; returns its address."""
        block = Allocation(size, host)
        with self._lock:
            self._blocks[block.addr] = block
            bisect.insort(self._starts, block.addr)
        return block.addr

    def free(self, addr: int, host: bool) -> int:
        """Release the block at ``addr`` (an ACL code: unknown, double or wrong-kind free is
        ACL_ERROR_INVALID_PARAM). The block is quarantined: its memory stays owned for a while
        so that later use of it is reported, never a write into reused memory."""
        with self._lock:
            block = self._blocks.get(addr)
            if block is None or block.host != host:
                return codes.INVALID_PARAM
            del self._blocks[addr]
            self._starts.pop(bisect.bisect_left(self._starts, addr))
            self._freed[addr] = block
            bisect.insort(self._freed_starts, addr)
            self._freed_bytes += block.size
            while self._freed_bytes > QUARANTINE_BYTES and self._freed:
                old_addr, old = self._freed.popitem(last=False)
                self._freed_starts.pop(bisect.bisect_left(self._freed_starts, old_addr))
                self._freed_bytes -= old.size
        return codes.SUCCESS

    def was_freed(self, addr: int) -> bool:
        """Whether ``addr`` lies in a block freed recently (still quarantined)."""
        with self._lock:
            i = bisect.bisect_right(self._freed_starts, addr) - 1
            if i < 0:
                return False
            block = self._freed[self._freed_starts[i]]
        return addr < block.addr + max(block.size, 1)

    def find(self, addr: int) -> Allocation | None:
        """The live block containing ``addr`` (None for memory openge did not allocate)."""
        with self._lock:
            i = bisect.bisect_right(self._starts, addr) - 1
            if i < 0:
                return None
            block = self._blocks[self._starts[i]]
        if addr < block.addr + max(block.size, 1):
            return block
        return None

    def check(self, addr: int, size: int) -> str:
        """Why ``size`` bytes at ``addr`` cannot be used ("" when they can): a null address,
        a freed block, or a range running past the openge block it starts in."""
        if addr < MIN_ADDRESS:
            return f"address {addr:#x} is not a valid pointer"
        if self.was_freed(addr):
            return f"address {addr:#x} was freed"
        block = self.find(addr)
        if block is not None and addr + size > block.addr + block.size:
            return (
                f"{size} bytes at {addr:#x} run past the {block.size}-byte allocation at "
                f"{block.addr:#x} (by {addr + size - block.addr - block.size} bytes)"
            )
        return ""

    def checked_view(self, addr: int, size: int) -> np.ndarray | str:
        """:meth:`check` and :meth:`view` in one lookup (the execute path): the view, or why
        the range cannot be used."""
        block = self.find(addr)
        if block is None:
            why = self.check(addr, size)
            if why:
                return why
            if size == 0:
                return np.empty(0, dtype=np.uint8)
            return np.ctypeslib.as_array((ctypes.c_ubyte * size).from_address(addr))
        start = addr - block.addr
        if start + size > block.size:
            return self.check(addr, size)
        return block.array[start : start + size]

    def view(self, addr: int, size: int) -> np.ndarray:
        """A writable uint8 array over ``size`` bytes at ``addr`` (no copy). The caller has
        checked the range with :meth:`check`."""
        block = self.find(addr)
        if block is not None:
            start = addr - block.addr
            return block.array[start : start + size]
        if size == 0:
            return np.empty(0, dtype=np.uint8)
        return np.ctypeslib.as_array((ctypes.c_ubyte * size).from_address(addr))

    def live(self) -> int:
        """Number of live blocks."""
        return len(self._blocks)


MEMORY = MemoryRegistry()


def copy(dst: int, src: int, count: int) -> None:
    """memmove ``count`` bytes (both ends checked by the caller)."""
    if count:
        ctypes.memmove(dst, src, count)
