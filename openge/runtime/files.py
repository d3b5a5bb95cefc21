"""Opening untrusted model and weight files safely: regular files only, mapped read-only,
guarded against truncation (docs/security.md).

Layer: runtime. A path given to openge may name a FIFO, a device or a folder: reading a FIFO
blocks forever, so anything that is not a regular file is refused before it is opened, and the
open itself is non-blocking and re-checked with ``fstat`` (the path may be swapped in between).
A mapped file that shrinks under a loaded model would kill the process with SIGBUS at the next
read of a vanished page: :class:`MappedFile` keeps its descriptor and ``check_unchanged`` (one
``fstat``) raises a GeError instead; the runtime calls it before every execute.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from typing import Any

from openge.errors import MODEL_DATA_SIZE_INVALID, MODEL_PATH_INVALID, PARAM_INVALID, GeError


def as_path(path: Any, what: str) -> str:
    """``path`` as a str (GeError for None, a non-path or an empty or NUL-containing one)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise GeError(
            MODEL_PATH_INVALID, f"{what} must be a path (str or os.PathLike), got {path!r}"
        )
    try:
        text = os.fsdecode(os.fspath(path))
    except (TypeError, UnicodeError) as err:
        raise GeError(MODEL_PATH_INVALID, f"{what} {path!r} is not a valid path") from err
    if not text or "\0" in text:
        raise GeError(MODEL_PATH_INVALID, f"{what} {text!r} is not a valid path")
    return text


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str, what: str) -> int:
    """A read-only descriptor of the regular file at ``path`` (GeError for anything else)."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise GeError(MODEL_PATH_INVALID, f"cannot open {what} {path!r}: {err.strerror}") from err
    if not stat.S_ISREG(st.st_mode):
        raise GeError(
            MODEL_PATH_INVALID, f"{what} {path!r} is {_kind(st.st_mode)}; a regular file is needed"
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise GeError(MODEL_PATH_INVALID, f"cannot open {what} {path!r}: {err.strerror}") from err
    try:
        mode = os.fstat(fd).st_mode
    except OSError as err:
        os.close(fd)
        raise GeError(MODEL_PATH_INVALID, f"cannot open {what} {path!r}: {err.strerror}") from err
    if not stat.S_ISREG(mode):  # swapped for something else between stat and open
        os.close(fd)
        raise GeError(
            MODEL_PATH_INVALID, f"{what} {path!r} is {_kind(mode)}; a regular file is needed"
        )
    return fd


class MappedFile:
    """A regular file mapped read-only, with its descriptor kept to detect truncation."""

    __slots__ = ("fd", "mapping", "path", "size", "what")

    def __init__(self, path: str, what: str, max_bytes: int | None = None) -> None:
        self.path = path
        self.what = what
        self.mapping: mmap.mmap | None = None
        self.fd = open_regular(path, what)
        try:
            self.size = os.fstat(self.fd).st_size
            if max_bytes is not None and self.size > max_bytes:
                raise GeError(
                    PARAM_INVALID,
                    f"{what} {path!r} has {self.size} bytes, over the load limit "
                    f"max_model_bytes = {max_bytes} (see openge.om.limits)",
                )
            if self.size:
                self.mapping = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        except OSError as err:
            os.close(self.fd)
            raise GeError(MODEL_PATH_INVALID, f"cannot map {what} {path!r}: {err}") from err
        except BaseException:
            os.close(self.fd)
            raise

    def view(self) -> memoryview:
        """A read-only view of the whole file (empty for an empty file)."""
        return memoryview(self.mapping) if self.mapping is not None else memoryview(b"")

    def check_unchanged(self) -> None:
        """GeError when the file has shrunk since it was mapped (reading would raise SIGBUS)."""
        try:
            now = os.fstat(self.fd).st_size
        except (OSError, ValueError) as err:
            raise GeError(
                MODEL_DATA_SIZE_INVALID, f"{self.what} {self.path!r} is no longer readable"
            ) from err
        if now < self.size:
            raise GeError(
                MODEL_DATA_SIZE_INVALID,
                f"{self.what} {self.path!r} shrank from {self.size} to {now} bytes while "
                "loaded: it was truncated or overwritten in place. Reload the model; replace "
                "model files by renaming a new file over them, never by rewriting them",
            )

    def close(self) -> None:
        """Unmap and close. Arrays still viewing the mapping keep it alive until freed (a
        BufferError from closing it then is expected, never raised)."""
        if self.mapping is not None:
            with contextlib.suppress(BufferError):
                self.mapping.close()
            self.mapping = None
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


__all__ = ["MappedFile", "as_path", "open_regular"]
