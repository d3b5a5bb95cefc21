"""The external-weight folders this process wrote (bottom layer, next to errors.py).

A model records the folder its weight files were written to, and a model is untrusted: that
record alone must never make openge read, move or copy a file. The compiler registers here every
folder it writes weight files into (a session or builder temp folder, or ``ge.externalWeightDir``),
by its real path; the runtime trusts a recorded folder only when it is registered (for a buffer
loaded in the process that compiled it), and ``save_model`` moves files only out of a registered
temp folder (docs/security.md).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_temporary: set[str] = set()
_kept: set[str] = set()


def _real(folder: str) -> str | None:
    """The resolved path, or None for one that cannot name a folder (a NUL byte, ...)."""
    try:
        return os.path.realpath(os.path.abspath(folder))
    except (ValueError, OSError):
        return None


def register(folder: str, *, temporary: bool) -> None:
    """Record that this process writes weight files into ``folder`` (``temporary``: a session or
    builder temp folder that openge deletes; else a ``ge.externalWeightDir``, never deleted)."""
    real = _real(folder)
    if real is None:
        return
    with _lock:
        (_temporary if temporary else _kept).add(real)


def is_temporary(folder: str) -> bool:
    """True when ``folder`` (resolved) is a temp weight folder made by this process."""
    real = _real(folder) if folder else None
    if real is None:
        return False
    with _lock:
        return real in _temporary


def is_known(folder: str) -> bool:
    """True when this process wrote weight files into ``folder`` (resolved)."""
    real = _real(folder) if folder else None
    if real is None:
        return False
    with _lock:
        return real in _temporary or real in _kept


__all__ = ["is_known", "is_temporary", "register"]
