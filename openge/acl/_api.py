"""Helpers shared by the facade's calls: argument checks (wrong types raise, as pyACL's
argument parsing does), failures as return codes, and the init check."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from openge.acl import _codes as codes
from openge.acl._state import STATE
from openge.errors import GeError

logger = logging.getLogger("openge.acl")

F = TypeVar("F", bound=Callable[..., Any])


def need_int(value: Any, name: str) -> int:
    """``value`` as an int; TypeError otherwise (pyACL's ``PyArg_ParseTuple`` behaviour)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def need_str(value: Any, name: str) -> str:
    """``value`` as a str; TypeError otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def fail(code: int, message: str) -> int:
    """Log ``message``, keep it for ``acl.get_recent_err_msg`` and return ``code``."""
    logger.error("%s (ACL error %d)", message, code)
    STATE.set_error(message)
    return code


def not_initialized(call: str) -> int:
    """The code (and log line) of a call made before ``acl.init``."""
    return fail(codes.UNINITIALIZE, f"{call}: acl.init has not been called")


def acl_call(on_error: Callable[[int], Any] = lambda code: code) -> Callable[[F], F]:
    """Turn a GeError escaping the call into its ACL return value ``on_error(code)``."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except GeError as err:
                return on_error(fail(codes.from_error(err.code), f"{func.__name__}: {err}"))

        return inner  # type: ignore[return-value]

    return wrap


def release(registry: Any, handle: Any, call: str) -> int:
    """Forget ``handle`` in ``registry`` (the ``destroy_*`` calls): ACL_ERROR_INVALID_PARAM for
    an unknown or already destroyed handle."""
    need_int(handle, registry.kind.replace(" ", "_"))
    if registry.pop(handle) is None:
        return fail(codes.INVALID_PARAM, f"{call}: unknown {registry.kind} {handle:#x}")
    return codes.SUCCESS
