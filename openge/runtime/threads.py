"""openge's intra-op thread setting: one number for the compiled kernels and, when the user
sets it, NumPy's BLAS (runtime layer).

Default (never called): the compiled kernels use the cores this process may run on and NumPy's
BLAS keeps its own setting (openge never changes it behind the user's back). An explicit
:func:`set_num_threads` sets both: the kernels' count, and the BLAS count through threadpoolctl
when it is installed (a process-wide change the caller asked for; without threadpoolctl the
BLAS count is left alone and a warning says so).
"""

from __future__ import annotations

import logging

from openge import kernels

logger = logging.getLogger(__name__)

_blas_limiter: list = []


def set_num_threads(n: int | None) -> None:
    """Use ``n`` intra-op threads (None: the cores this process may use) for openge's compiled
    kernels and for NumPy's BLAS. Applies to every Model, from the next kernel on."""
    kernels.set_num_threads(n)
    count = kernels.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.warning(
            "threadpoolctl is not installed: NumPy's BLAS threads are left as they are "
            "(set OPENBLAS_NUM_THREADS before importing NumPy, or pip install threadpoolctl)"
        )
        return
    _blas_limiter[:] = [threadpool_limits(count, user_api="blas")]


def get_num_threads() -> int:
    """The intra-op thread count of openge's compiled kernels (see :func:`set_num_threads`)."""
    return kernels.get_num_threads()


__all__ = ["get_num_threads", "set_num_threads"]
