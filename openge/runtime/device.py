"""Loading a device .om (made by Ascend ATC): rebuild its graph and compile it for openge.

Layer: runtime. A device om holds Ascend kernels openge cannot run; when its graph is
complete (unfused ops with their attributes), ``compile_device_om`` rebuilds it in origin
layouts (openge.om.device.to_graph) and compiles it with openge's normal compiler, so it runs
on the one execution path. Otherwise the GeError lists every node that cannot run and why.
"""

from __future__ import annotations

import logging
from typing import Any

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.om.device.reader import read_device_om
from openge.om.device.summary import describe_model
from openge.om.device.to_graph import refusals, to_graph
from openge.om.plan import CompiledModel

logger = logging.getLogger(__name__)


def compile_device_om(buffer: Any, *, source: str) -> CompiledModel:
    """The CompiledModel of a device om whose graph openge can run (GeError otherwise)."""
    om = read_device_om(buffer)
    try:
        graph = to_graph(om)
    except GeError as err:
        raise GeError(err.code, f"cannot load {source}: {err.message}") from None
    finally:
        om.release()
    logger.info("device om %s: compiling its %d-node graph with openge", source, len(graph))
    return compile_graph(graph, {})


def device_compatibility(buffer: Any) -> Any:
    """``check_compatibility``'s answer for a device om: loadable when its graph is complete."""
    from openge.runtime.compat import Compatibility

    om = read_device_om(buffer)
    try:
        problems = refusals(om)
        producer = describe_model(om, 0)["producer"] if om.has_model_def() else ""
    finally:
        om.release()
    if problems:
        reason = (
            f"a device om made by Ascend ATC whose graph openge cannot rebuild: "
            f"{len(problems)} node(s) need the Ascend device:\n{problems.text(20)}"
        )
    else:
        reason = "ok (a device om made by Ascend ATC: its graph is rebuilt and compiled)"
    return Compatibility(not problems, reason, "device", f"ATC {producer}".strip(), False)


__all__ = ["compile_device_om", "device_compatibility"]
