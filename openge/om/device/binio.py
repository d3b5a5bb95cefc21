"""Bounds-checked little-endian reads from an untrusted device .om (every failure a GeError).

Layer: om. ``Cursor`` reads fixed structs, byte runs and int arrays from a memoryview; each
read is checked against the bytes present before it happens, so no struct.error or
IndexError ever escapes. Errors name what was being read.
"""

from __future__ import annotations

import struct
from typing import Any

from openge.errors import MODEL_DATA_SIZE_INVALID, PARAM_INVALID, GeError

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


def size_error(message: str) -> GeError:
    """A 145006 (model data size invalid) error about a device om."""
    return GeError(MODEL_DATA_SIZE_INVALID, f"invalid device om: {message}")


def invalid(message: str) -> GeError:
    """A 145000 (invalid model) error about a device om."""
    return GeError(PARAM_INVALID, f"invalid device om: {message}")


class Cursor:
    """Sequential reads from ``data`` (a byte memoryview); ``what`` names it in errors."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: memoryview, what: str, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.what = what

    @property
    def left(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        """The next ``n`` bytes (a view)."""
        if n < 0 or n > self.left:
            raise size_error(
                f"{self.what}: {n} bytes needed at offset {self.pos}, {max(self.left, 0)} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct) -> tuple[Any, ...]:
        """The next struct."""
        return st.unpack(self.take(st.size))

    def u32(self) -> int:
        """The next u32."""
        return self.unpack(U32)[0]

    def ints(self, nbytes: int, code: str, label: str, limit: int) -> tuple[int, ...]:
        """``nbytes`` of little-endian ints of struct ``code`` (``q``/``Q``), at most ``limit``."""
        width = struct.calcsize(code)
        if nbytes % width:
            raise invalid(f"{self.what}: {label} length {nbytes} is not a multiple of {width}")
        if nbytes // width > limit:
            raise invalid(f"{self.what}: {nbytes // width} {label}; at most {limit}")
        return struct.unpack(f"<{nbytes // width}{code}", self.take(nbytes))

    def text(self, n: int, label: str, limit: int) -> str:
        """``n`` bytes of UTF-8 text (invalid bytes replaced), at most ``limit`` bytes."""
        if n > limit:
            raise invalid(f"{self.what}: {label} of {n} bytes; at most {limit}")
        return bytes(self.take(n)).decode("utf-8", errors="replace")


def cstr(raw: bytes) -> str:
    """A NUL-terminated fixed-size field as text."""
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", errors="replace")


__all__ = ["U32", "U64", "Cursor", "cstr", "invalid", "size_error"]
