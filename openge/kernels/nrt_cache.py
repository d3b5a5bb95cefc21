"""numba's runtime (NRT) started from machine code kept in openge's kernel cache (kernels
layer).

numba's runtime compiles a small LLVM module (its atomic reference counts) the first time
any compiled function is loaded or compiled in a process, and keeps it in no cache: 35-40 ms
of every process's start, and the optimizer and code generator it runs map about 48 MiB of
libllvmlite's code (Linux), the largest single step of a small compiled model's peak RSS.
:func:`start` does what numba's ``rtsys.initialize`` does, with the module's object code and
bitcode saved beside the kernels (numba's own form for cached code, ``'object'``) on the
first start and loaded on later ones. The file is keyed by numba's and llvmlite's versions
and numba's code-generation target (triple, CPU, features); it carries a SHA-256 of its
contents, and anything that does not match is compiled again and replaced. Where numba's
internals differ from what this relies on (checked on 0.68), numba starts its runtime
itself, as before.

File layout (little-endian): ``MAGIC``, the object code's and the bitcode's byte counts
(uint32 each), the SHA-256 of the two, the object code, the bitcode.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import tempfile
from typing import Any

logger = logging.getLogger(__name__)

MAGIC = b"OGNRT\x00\x01\x00"
_HEAD = struct.Struct("<8sII32s")
#: Larger files are not read (the module's code is ~2 KB, its bitcode ~4 KB).
MAX_BYTES = 1 << 20


def start(context: Any, folder: str) -> bool:
    """Start numba's runtime for ``context`` (numba's CPU target context), from
    ``folder``'s saved module when it matches, else compiling it and saving it there. True
    when this function started it; False when numba's internals differ or the runtime was
    already started (numba then starts it as it always does)."""
    try:
        import llvmlite
        import llvmlite.binding as ll
        import numba
        from numba.core import config
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.runtime import nrt, nrtdynmod, rtsys

        helpers = nrt._nrt.c_helpers
        codegen = context.codegen()
        key = _key(numba.__version__, llvmlite.__version__, codegen.magic_tuple())
    except Exception as err:  # numba's internals moved
        logger.debug("numba's runtime started by numba: %s", err)
        return False
    path = os.path.join(folder, f"openge-nrt-{key}.bin")
    with global_compiler_lock:
        if getattr(rtsys, "_init", True):
            return False
        try:
            if config.NRT_STATS:
                nrt._nrt.memsys_enable_stats()
            for py_name, address in helpers.items():
                ll.add_symbol(py_name if py_name.startswith("_") else "NRT_" + py_name, address)
            saved = read(path)
            if saved is not None:
                library = codegen.unserialize_library(("nrt", "object", saved))
            else:
                module, library = nrtdynmod.create_nrt_module(context)
                library.enable_object_caching()
                library.add_ir_module(module)
                library.finalize()
                _, _, (code, bitcode) = library.serialize_using_object_code()
                write(path, code, bitcode)
            rtsys._library = library
            rtsys._init = True
        except Exception as err:  # numba's internals moved: numba starts it
            logger.debug("numba's runtime started by numba: %s", err)
            return False
    return True


def _key(numba_version: str, llvmlite_version: str, target: Any) -> str:
    text = repr((numba_version, llvmlite_version, tuple(target)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read(path: str) -> tuple[bytes, bytes] | None:
    """(object code, bitcode) from ``path``, or None when it is missing, too large or does
    not match its header and checksum."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_BYTES or len(data) < _HEAD.size:
        return None
    magic, code_size, bitcode_size, digest = _HEAD.unpack_from(data)
    body = data[_HEAD.size :]
    if magic != MAGIC or code_size + bitcode_size != len(body):
        return None
    if hashlib.sha256(body).digest() != digest:
        return None
    return body[:code_size], body[code_size:]


def write(path: str, code: bytes, bitcode: bytes) -> bool:
    """Save the module to ``path`` atomically (a temporary file renamed over it); False when
    the folder is not writable (the next start compiles again)."""
    body = bytes(code) + bytes(bitcode)
    head = _HEAD.pack(MAGIC, len(code), len(bitcode), hashlib.sha256(body).digest())
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".openge-nrt-")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + body)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


__all__ = ["MAGIC", "MAX_BYTES", "read", "start", "write"]
