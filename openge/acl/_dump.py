"""acl.json's "dump" section → the runtime's data dump (``openge.runtime.dump.DumpConfig``),
attached to every model loaded while it is on. A runtime without the dump module leaves the
section parsed and unused (logged)."""

from __future__ import annotations

import logging
from typing import Any

from openge.acl import _api
from openge.acl import _codes as codes
from openge.acl._state import STATE
from openge.errors import GeError

logger = logging.getLogger(__name__)


def configure(section: Any) -> int:
    """Build the dump config of ``section`` (an ACL code: a bad section is 100000)."""
    STATE.dump = None
    if section is None:
        return codes.SUCCESS
    try:
        from openge.runtime.dump import DumpConfig
    except ImportError:
        logger.info("acl.json has a dump section; this openge runtime has no data dump")
        return codes.SUCCESS
    try:
        STATE.dump = DumpConfig.from_acl_json(section, device_id=0)
    except GeError as err:
        return _api.fail(codes.INVALID_PARAM, f"acl.init: acl.json dump section: {err}")
    return codes.SUCCESS


def attach(model: Any, model_id: int) -> None:
    """Turn the configured dump on for a model just loaded (no-op when none)."""
    if STATE.dump is not None and hasattr(model, "set_dump"):
        model.set_dump(STATE.dump, model_id=model_id)
