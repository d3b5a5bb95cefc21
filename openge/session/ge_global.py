"""GeApi: the process-wide GE initialization (``GEInitializeV2`` / ``GEFinalizeV2``)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from openge.compiler.options import validate_options
from openge.errors import GE_CLI_GE_NOT_INITIALIZED, SUCCESS, GeError

if TYPE_CHECKING:
    from openge.session.session import GeSession


class _GlobalState:
    lock = threading.RLock()
    initialized = False
    options: ClassVar[dict[str, str]] = {}
    sessions: ClassVar[weakref.WeakSet[GeSession]] = weakref.WeakSet()


class GeApi:
    """Process-wide initialization. Methods work on the class or on an instance
    (``GeApi.ge_initialize(opts)`` or ``GeApi().ge_initialize(opts)``, as CANN's scripts do)."""

    @classmethod
    def ge_initialize(cls, options: Mapping[str, str] | None = None) -> int:
        """Initialize GE with global options; calling it again while initialized is a no-op
        that keeps the first options (GE behaviour). Returns SUCCESS (0)."""
        checked = validate_options(options, "global")
        with _GlobalState.lock:
            if not _GlobalState.initialized:
                _GlobalState.options = checked
                _GlobalState.initialized = True
        return int(SUCCESS)

    @classmethod
    def ge_finalize(cls) -> int:
        """Close every open session and end the initialization. Returns SUCCESS (0)."""
        with _GlobalState.lock:
            sessions = list(_GlobalState.sessions)
            _GlobalState.initialized = False
            _GlobalState.options = {}
        for session in sessions:
            session.close()
        return int(SUCCESS)

    @classmethod
    def is_initialized(cls) -> bool:
        """True between ge_initialize and ge_finalize."""
        return _GlobalState.initialized


def global_options() -> dict[str, str]:
    """The options given to ge_initialize (GeError when not initialized)."""
    require_initialized("this call")
    return dict(_GlobalState.options)


def require_initialized(what: str) -> None:
    """Raise GE_CLI_GE_NOT_INITIALIZED unless ge_initialize was called."""
    if not _GlobalState.initialized:
        raise GeError(
            GE_CLI_GE_NOT_INITIALIZED,
            f"{what} needs GE to be initialized: call "
            "openge.ge_global.GeApi.ge_initialize(options) first",
        )


def register_session(session: GeSession) -> None:
    """Track a session so ge_finalize can close it."""
    with _GlobalState.lock:
        _GlobalState.sessions.add(session)


def unregister_session(session: GeSession) -> None:
    """Forget a closed session."""
    with _GlobalState.lock:
        _GlobalState.sessions.discard(session)
