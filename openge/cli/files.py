"""The CLI's file handling: outputs checked before any work, written atomically; inputs opened
only when they are regular files (docs/security.md).

Every problem is a GeError with one clear line (the top-level handler in main.py prints it):
an output that is a folder, whose parent is a file, or that cannot be written is reported
before a model is compiled or run, and every output is written through a temp file and a
rename, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable

import numpy as np

from openge.errors import MODEL_PATH_INVALID, PARAM_INVALID, GeError
from openge.runtime.files import as_path, open_regular


def _writable_folder(folder: str, what: str) -> None:
    """GeError unless ``folder`` is (or can be created as) a folder we can write into."""
    probe = folder
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise GeError(MODEL_PATH_INVALID, f"{what}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise GeError(MODEL_PATH_INVALID, f"{what}: folder {probe} is not writable")


def check_output_file(path: str, what: str) -> str:
    """The absolute path of an output file that can be written (checked before any work)."""
    path = os.path.abspath(as_path(path, what))
    if os.path.isdir(path):
        raise GeError(MODEL_PATH_INVALID, f"{what} {path} is a folder; give a file name")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise GeError(MODEL_PATH_INVALID, f"{what} {path} exists and is not a regular file")
    _writable_folder(os.path.dirname(path), f"{what} {path}")
    return path


def check_output_folder(path: str, what: str) -> str:
    """The absolute path of an output folder, created now (before any work) and writable."""
    path = os.path.abspath(as_path(path, what))
    if os.path.lexists(path) and not os.path.isdir(path):
        raise GeError(MODEL_PATH_INVALID, f"{what} {path} exists and is not a folder")
    _writable_folder(path, f"{what} {path}")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise GeError(
            MODEL_PATH_INVALID, f"cannot create {what} {path}: {err.strerror or err}"
        ) from err
    return path


def write_file(path: str, chunks: Iterable[bytes | bytearray | memoryview], what: str) -> None:
    """Write ``chunks`` to ``path`` atomically (temp file in the same folder, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".part")
    except OSError as err:
        raise GeError(
            MODEL_PATH_INVALID, f"cannot write {what} {path}: {err.strerror or err}"
        ) from err
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        _unlink(tmp)
        raise GeError(
            MODEL_PATH_INVALID, f"cannot write {what} {path}: {err.strerror or err}"
        ) from err
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def save_array(path: str, array: np.ndarray, what: str) -> None:
    """``np.save`` to ``path``, atomically."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_file(path, [buf.getbuffer()], what)


def load_array(path: str, what: str) -> np.ndarray:
    """The array of a ``.npy`` file (a regular file; no pickles; one array, not an .npz)."""
    fd = open_regular(as_path(path, what), what)
    try:
        with os.fdopen(fd, "rb") as f:
            try:
                value = np.load(f, allow_pickle=False)
            except (OSError, ValueError, EOFError, MemoryError) as err:
                raise GeError(PARAM_INVALID, f"cannot read {what} {path}: {err}") from err
            if not isinstance(value, np.ndarray):
                if hasattr(value, "close"):
                    value.close()
                raise GeError(
                    PARAM_INVALID,
                    f"{what} {path} is not a .npy array (an .npz archive?); give one .npy file "
                    "per input",
                )
            return value
    except OSError as err:
        raise GeError(PARAM_INVALID, f"cannot read {what} {path}: {err.strerror or err}") from err


__all__ = [
    "check_output_file",
    "check_output_folder",
    "load_array",
    "save_array",
    "write_file",
]
