"""Atomic file writing (bottom layer, next to errors.py): never a half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable


def write_atomic(
    path: str, chunks: Iterable[bytes | bytearray | memoryview], mode: int = 0o600
) -> None:
    """Write ``chunks`` to ``path`` through a temp file in the same folder and a rename.

    The parent folders are created; the file gets ``mode`` (0600 by default, as GE's saved
    models). A failure leaves no partial file behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
