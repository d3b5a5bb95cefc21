"""External weight files: confined name resolution, size and sha256 checks, zero-copy mapping.

Confinement (DESIGN §1.3, docs/security.md): a weight is looked up by its file name only, in
the folders the caller chose — ``weight_dir``, else ``<om dir>/weight/`` for a file — and, for a
buffer only, in the folder the model records when this process wrote weights there (a session
temp folder or ``ge.externalWeightDir`` of a compile in this process; see
:mod:`openge.weight_folders`). A name with a separator or ``..``, or a link leading out of its
folder, is refused; so is a weight without a sha256, and a file whose size or sha256 differs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import numpy as np

from openge.errors import LOAD_MODEL, MODEL_PATH_INVALID, GeError
from openge.om.plan import ExternalWeight
from openge.runtime.files import MappedFile
from openge.weight_folders import is_known

#: Session temp weight folders are named tmp_weight_<pid>_<session id> (DESIGN §1.3).
SESSION_TEMP_DIR = re.compile(r"^tmp_weight_\d+_\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_weight_name(name: str) -> None:
    """Refuse a weight file name that could leave its folder (separators, ``..``, empty)."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or ".." in name.split(os.sep)
        or os.path.isabs(name)
    ):
        raise GeError(
            LOAD_MODEL,
            f"external weight name {name!r} is not a plain file name; a model may only name "
            "files inside its weight folder",
        )


def _inside(folder: str, name: str) -> str | None:
    """The real path of ``folder/name`` when it exists and stays inside ``folder``."""
    path = os.path.join(folder, name)
    if not os.path.lexists(path):
        return None
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.dirname(real) != real_folder:
        raise GeError(
            LOAD_MODEL,
            f"external weight {name!r} in {folder} is a link that leaves the folder "
            f"(to {real}); refusing to read it",
        )
    return real


def _check_record(weight: ExternalWeight) -> None:
    """The parts of a weight record that need no file: name, digest, byte range vs type."""
    check_weight_name(weight.location)
    if not _SHA256.match(weight.sha256 or ""):
        raise GeError(
            LOAD_MODEL,
            f"external weight {weight.location!r} has no valid sha256 (got "
            f"{weight.sha256[:80]!r}); openge reads an external weight only when the model "
            "records the sha256 of its bytes: re-export the model with openge",
        )
    try:
        need = weight.dtype.itemsize
    except GeError:
        raise GeError(
            LOAD_MODEL, f"external weight {weight.location!r} has type {weight.dtype.name}"
        ) from None
    for d in weight.shape:
        need *= d
    if weight.offset < 0 or weight.length != need:
        raise GeError(
            LOAD_MODEL,
            f"external weight {weight.location!r} records {weight.length} bytes at offset "
            f"{weight.offset}; its type {weight.dtype.name}{list(weight.shape)} needs {need}",
        )


class MappedFiles:
    """Read-only memory maps of weight files, opened once and shared by every weight in them."""

    def __init__(self) -> None:
        self._maps: dict[str, MappedFile] = {}
        self._verified: set[tuple[str, int, int, str]] = set()

    def view(self, path: str) -> memoryview:
        """A read-only view of the whole regular file at ``path``."""
        mapped = self._maps.get(path)
        if mapped is None:
            mapped = self._maps[path] = MappedFile(path, "external weight file")
        return mapped.view()

    def check_unchanged(self) -> None:
        """GeError when a mapped weight file shrank (one fstat per file)."""
        for mapped in self._maps.values():
            mapped.check_unchanged()

    def close(self) -> None:
        """Drop the maps (views handed out keep their pages alive until released)."""
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()


def weight_places(weight: ExternalWeight, places: Sequence[str], buffer: bool) -> list[str]:
    """Where ``weight`` may be read: ``places``, then — for a buffer without ``weight_dir`` —
    the recorded folder when this process wrote weights there."""
    found = [p for p in places if p]
    if buffer and not found and weight.directory and is_known(weight.directory):
        found.append(weight.directory)
    return found


def resolve_weight(
    weight: ExternalWeight,
    places: Sequence[str],
    files: MappedFiles,
) -> np.ndarray:
    """Find ``weight``'s file in ``places`` (in order), check size and sha256, return a read-only
    array viewing the mapped bytes. GeError naming the file, every place looked and the fix."""
    _check_record(weight)
    looked: list[str] = []
    for folder in places:
        if not folder:
            continue
        looked.append(folder)
        path = _inside(folder, weight.location)
        if path is None:
            continue
        data = files.view(path)
        end = weight.offset + weight.length
        if end > len(data):
            raise GeError(
                LOAD_MODEL,
                f"external weight file {path} has {len(data)} bytes; the model needs bytes "
                f"{weight.offset}..{end}. The file was changed or truncated: re-export the model",
            )
        chunk = data[weight.offset : end]
        key = (path, weight.offset, weight.length, weight.sha256)
        if key not in files._verified:
            digest = hashlib.sha256(chunk).hexdigest()
            if digest != weight.sha256:
                raise GeError(
                    LOAD_MODEL,
                    f"external weight file {path} (bytes {weight.offset}..{end}) has sha256 "
                    f"{digest}, the model expects {weight.sha256}: the file was altered or "
                    "belongs to another model",
                )
            files._verified.add(key)
        array = np.frombuffer(chunk, dtype=weight.dtype.np_dtype)
        return array.reshape(weight.shape)
    message = f"external weight file {weight.location!r} not found; looked in: " + (
        ", ".join(looked) or "nowhere (no folder known)"
    )
    recorded = weight.directory
    if (
        recorded
        and SESSION_TEMP_DIR.match(os.path.basename(os.path.normpath(recorded)))
        and (not os.path.isdir(recorded))
    ):
        message += (
            f". It was written to the session temp folder {recorded}, which was removed when "
            "the session closed. Fix: set option ge.externalWeightDir to a folder you keep, or "
            "copy the weight files before closing the session and pass weight_dir=, or call "
            "save_model before closing the session (it moves them next to the .om)"
        )
    elif recorded and recorded not in looked:
        message += (
            f". The model records the folder {recorded!r}, which openge does not search for a "
            "model file (only <om dir>/weight/) nor for a buffer this process did not compile: "
            "pass weight_dir= with the folder holding the model's weight files if you trust it"
        )
    else:
        message += ". Pass weight_dir= with the folder holding the model's weight files"
    raise GeError(MODEL_PATH_INVALID, message)


__all__ = [
    "SESSION_TEMP_DIR",
    "MappedFiles",
    "check_weight_name",
    "resolve_weight",
    "weight_places",
]
