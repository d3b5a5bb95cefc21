"""``save_model``'s external weights: into ``<om dir>/weight/``, touching only openge's own files.

Layer: offline_compile. A buffer is untrusted: the folder and file name each weight records
must never make ``save_model`` move or copy a file that openge did not write. A file is taken
only from a folder this process compiled weights into (:mod:`openge.weight_folders`, compared by
real path), only when it is a regular file (not a link) directly inside that folder:

* from a session or builder temp folder it is moved (the folder is deleted with the session);
* from a ``ge.externalWeightDir`` it is copied (openge never deletes that folder's files);
* a weight whose recorded folder is neither must already be in ``<om dir>/weight/`` (the user
  copied it there), else ``save_model`` refuses with the fix.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import replace

from openge.errors import MODEL_PATH_INVALID, GeError
from openge.om.plan import ExternalWeight
from openge.runtime.weights import check_weight_name
from openge.weight_folders import is_known, is_temporary


def _regular_inside(folder: str, name: str) -> str | None:
    """``folder/name`` when it is a regular file (not a link) directly inside ``folder``."""
    path = os.path.join(folder, name)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise GeError(
            MODEL_PATH_INVALID,
            f"save_model: external weight {path} is not a regular file (a link or a special "
            "file); refusing to move or copy it",
        )
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(folder):
        raise GeError(MODEL_PATH_INVALID, f"save_model: {path} resolves outside {folder}")
    return path


def _copy(source: str, destination: str) -> None:
    folder = os.path.dirname(destination)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o600)
        os.replace(tmp, destination)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _move(source: str, destination: str) -> None:
    try:
        os.replace(source, destination)  # same file system: atomic
    except OSError:
        _copy(source, destination)
        os.unlink(source)


def _place_one(weight: ExternalWeight, target: str) -> None:
    name, folder = weight.location, weight.directory
    destination = os.path.join(target, name)
    if folder and is_known(folder):
        if os.path.realpath(folder) == os.path.realpath(target):
            source = None  # already in place
        else:
            source = _regular_inside(folder, name)
        if source is not None:
            os.makedirs(target, exist_ok=True)
            if is_temporary(folder):
                _move(source, destination)
            else:
                _copy(source, destination)
            return
    if os.path.isfile(destination) and not os.path.islink(destination):
        return  # the user put it there
    if folder and is_temporary(folder):
        raise GeError(
            MODEL_PATH_INVALID,
            f"save_model: external weight file {name!r} is in neither {folder} nor {target}; "
            "the session that made the buffer was closed (its temp folder is removed). Save "
            "the model before closing the session, or set ge.externalWeightDir",
        )
    raise GeError(
        MODEL_PATH_INVALID,
        f"save_model: external weight file {name!r} is not in {target}, and the folder the "
        f"buffer records ({folder or 'none'}) is not one this process compiled weights into, "
        "so openge will not move or copy anything from it. Copy the file into "
        f"{target} yourself and save again",
    )


def place_weights(weights: Sequence[ExternalWeight], om_dir: str) -> list[ExternalWeight]:
    """Put each weight file in ``<om_dir>/weight/`` and return the records pointing there."""
    target = os.path.join(om_dir, "weight")
    placed: set[str] = set()
    out = []
    for weight in weights:
        check_weight_name(weight.location)
        if weight.location not in placed:
            try:
                _place_one(weight, target)
            except OSError as err:
                raise GeError(
                    MODEL_PATH_INVALID,
                    f"save_model: cannot put external weight {weight.location!r} into "
                    f"{target}: {err.strerror or err}",
                ) from err
            placed.add(weight.location)
        out.append(replace(weight, directory=target))
    return out


__all__ = ["place_weights"]
