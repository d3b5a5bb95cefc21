"""CLI for device .om files: ``atc --mode=6/1`` on them and ``openge om weights``.

Layer: cli. Files are memory-mapped; every view into the mapping is released before the
mapping is closed (a live view would make ``mmap.close`` raise BufferError and hide the real
error), and a mapping still referenced is left to the garbage collector instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from openge.errors import MODEL_PATH_INVALID, PARAM_INVALID, GeError

logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILE_NAME = 200


@contextlib.contextmanager
def mapped(path: str) -> Iterator[memoryview]:
    """A read-only byte view of the regular file at ``path`` (a FIFO, folder or device is
    refused without blocking), safely unmapped afterwards."""
    from openge.om.limits import default_limits
    from openge.runtime.files import MappedFile, as_path

    source = MappedFile(as_path(path, "model file"), "model file", default_limits().max_model_bytes)
    view = source.view()
    try:
        yield view
    finally:
        with contextlib.suppress(BufferError):
            view.release()
        source.close()


def info_text(view: memoryview) -> str:
    """The --mode=6 text of a device om, with whether openge can run it."""
    from openge.om.device.reader import read_device_om
    from openge.om.device.summary import describe, describe_text
    from openge.om.device.to_graph import refusals

    om = read_device_om(view)
    try:
        text = describe_text(describe(om))
        problems = refusals(om)
    finally:
        om.release()
    if problems:
        run = f"no: {len(problems)} node(s) need the Ascend device\n{problems.text(20)}"
    else:
        run = "yes (rebuilt in origin layouts and compiled by openge)"
    return f"{text}\nruns on openge:  {run}"


def json_doc(view: memoryview, shapes: bool) -> dict[str, Any]:
    """The --mode=1 document of a device om."""
    from openge.om.device.reader import read_device_om
    from openge.om.device.summary import to_json

    om = read_device_om(view)
    try:
        return to_json(om, shapes)
    finally:
        om.release()


def safe_file_name(name: str, taken: set[str]) -> str:
    """A file name for a node name: only ``[A-Za-z0-9._-]``, no leading dot, unique."""
    base = _UNSAFE.sub("_", name).lstrip(".")[:MAX_FILE_NAME] or "const"
    candidate, n = base, 0
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate.lower())
    return candidate + ".npy"


def _save_atomic(folder: str, file_name: str, array: np.ndarray) -> str:
    path = os.path.join(folder, file_name)
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(folder):
        raise GeError(PARAM_INVALID, f"refusing to write {file_name!r} outside {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def weights_command(args: argparse.Namespace) -> int:
    """``openge om weights MODEL.om --out DIR``: one .npy per Const, origin layout."""
    from openge.om.device.reader import read_device_om
    from openge.om.device.weights import iter_consts

    folder = os.path.abspath(args.out)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise GeError(MODEL_PATH_INVALID, f"cannot create {folder!r}: {err.strerror}") from None
    taken: set[str] = set()
    count = 0
    with mapped(args.model) as view:
        om = read_device_om(view)
        try:
            for prefix, sub in _all_models(om, ""):
                for i in range(len(sub.models)):
                    if not sub.has_model_def(i):
                        continue
                    for const in iter_consts(sub.model_def(i), sub.weights(i), lenient=True):
                        name = safe_file_name(prefix + const.name, taken)
                        _save_atomic(folder, name, const.array)
                        print(
                            f"{name}: {const.array.dtype} {list(const.origin_shape)} "
                            f"{const.origin_format} (device {const.device_format} "
                            f"{list(const.device_shape)} {const.device_dtype})"
                            + (f" kept in the device layout: {const.note}" if const.note else "")
                        )
                        del const
                        count += 1
        finally:
            om.release()
    print(f"wrote {count} weight file(s) to {folder}")
    return 0


def _all_models(om: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    yield prefix, om
    for n in om.nested:
        if n.om is not None:
            yield from _all_models(n.om, f"{prefix}{n.name}__")


def om_command(args: argparse.Namespace) -> int:
    """Execute ``openge om <action>``."""
    if args.action == "weights":
        return weights_command(args)
    raise GeError(PARAM_INVALID, f"unknown om action {args.action!r}")


def add_om_parser(sub: argparse._SubParsersAction, log_levels: tuple[str, ...]) -> None:
    """The ``openge om`` subcommand."""
    p = sub.add_parser("om", help="work with .om files (weights: export a device om's weights)")
    actions = p.add_subparsers(dest="action", required=True)
    w = actions.add_parser("weights", help="write each Const of an .om as DIR/<name>.npy")
    w.add_argument("model", help="the .om file (a device om made by Ascend ATC)")
    w.add_argument("--out", required=True, help="folder for the .npy files")
    w.add_argument("--log", default="warning", choices=log_levels)


__all__ = ["add_om_parser", "info_text", "json_doc", "mapped", "om_command", "safe_file_name"]
