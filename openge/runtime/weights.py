"""External weight files: safe name resolution, size and sha256 checks, zero-copy mapping."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
from collections.abc import Sequence

import numpy as np

from openge.errors import LOAD_MODEL, MODEL_PATH_INVALID, GeError
from openge.om.plan import ExternalWeight

#: Session temp weight folders are named tmp_weight_<pid>_<session id> (DESIGN §1.3).
SESSION_TEMP_DIR = re.compile(r"^tmp_weight_\d+_\d+$")


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
    if not os.path.isfile(path):
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


class MappedFiles:
    """Read-only memory maps of weight files, opened once and shared by every weight in them."""

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}
        self._verified: set[tuple[str, int, int, str]] = set()

    def view(self, path: str) -> memoryview:
        """A read-only view of the whole file at ``path``."""
        mm = self._maps.get(path)
        if mm is None:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    return memoryview(b"")
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[path] = mm
        return memoryview(mm)

    def close(self) -> None:
        """Drop the maps (views handed out keep their pages alive until released)."""
        for mm in self._maps.values():
            with contextlib.suppress(BufferError):  # arrays still view it: freed with them
                mm.close()
        self._maps.clear()


def resolve_weight(
    weight: ExternalWeight,
    places: Sequence[str],
    files: MappedFiles,
) -> np.ndarray:
    """Find ``weight``'s file in ``places`` (in order), check size and sha256, return a read-only
    array viewing the mapped bytes. GeError naming the file, every place looked and the fix."""
    check_weight_name(weight.location)
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
        if weight.offset < 0 or end > len(data):
            raise GeError(
                LOAD_MODEL,
                f"external weight file {path} has {len(data)} bytes; the model needs bytes "
                f"{weight.offset}..{end}. The file was changed or truncated: re-export the model",
            )
        chunk = data[weight.offset : end]
        key = (path, weight.offset, weight.length, weight.sha256)
        if weight.sha256 and key not in files._verified:
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
    else:
        message += ". Pass weight_dir= with the folder holding the model's weight files"
    raise GeError(MODEL_PATH_INVALID, message)
