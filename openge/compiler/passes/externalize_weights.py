"""ExternalizeWeightsPass: move constants into external weight files (``ge.externalWeight``).

Mode "1": each constant's bytes go to their own file ``weight_<sha256 of the bytes>`` (equal
constants share one file). Mode "2": all constants go to one file
``<graph name>_weight_combined``, each entry 512-byte aligned. Every Const becomes a
``FileConstant`` naming the file, the byte range and its sha256, so a loader can verify it.
Files are written atomically (temp file + rename) into ``ge.externalWeightDir`` or the folder
the session chose (its temp folder).
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.errors import PARAM_INVALID, GeError
from openge.fileio import write_atomic
from openge.graph import Graph
from openge.weight_folders import register

#: Private option through which a session or builder tells the pass its temp weight folder.
SESSION_WEIGHT_DIR = "_openge.session_weight_dir"
COMBINED_ALIGN = 512


def weight_dir(options: dict[str, str]) -> str:
    """The folder external weight files go to."""
    folder = options.get("ge.externalWeightDir") or options.get(SESSION_WEIGHT_DIR)
    if not folder:
        raise GeError(
            PARAM_INVALID,
            "ge.externalWeight is on but no folder is known for the weight files; set option "
            "ge.externalWeightDir",
        )
    return os.path.abspath(folder)


def _safe_graph_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "graph"


class ExternalizeWeightsPass(GraphPass):
    """Replace Const nodes by FileConstant nodes whose bytes are in external files."""

    name = "ExternalizeWeightsPass"
    required = True  # driven by ge.externalWeight, not switchable by name

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        mode = ctx.options.get("ge.externalWeight", "0")
        if mode == "0":
            return False
        consts = [n for n in graph.topological_order() if n.op_type == "Const"]
        if not consts:
            return False
        folder = weight_dir(ctx.options)
        os.makedirs(folder, exist_ok=True)
        # Trusted later (buffer loads, save_model) only because this process wrote it.
        register(folder, temporary=not ctx.options.get("ge.externalWeightDir"))
        placements: dict[str, tuple[str, int, int, str]] = {}
        if mode == "1":
            for node in consts:
                raw = np.ascontiguousarray(node.attrs["value"].numpy()).tobytes()
                digest = hashlib.sha256(raw).hexdigest()
                location = f"weight_{digest}"
                path = os.path.join(folder, location)
                if not (os.path.isfile(path) and os.path.getsize(path) == len(raw)):
                    write_atomic(path, [raw])
                placements[node.name] = (location, 0, len(raw), digest)
        else:
            location = f"{_safe_graph_name(graph.name)}_weight_combined"
            chunks: list[bytes] = []
            offset = 0
            for node in consts:
                raw = np.ascontiguousarray(node.attrs["value"].numpy()).tobytes()
                pad = (-offset) % COMBINED_ALIGN
                chunks.append(b"\0" * pad)
                offset += pad
                placements[node.name] = (
                    location,
                    offset,
                    len(raw),
                    hashlib.sha256(raw).hexdigest(),
                )
                chunks.append(raw)
                offset += len(raw)
            write_atomic(os.path.join(folder, location), chunks)
        for node in consts:
            location, offset, length, digest = placements[node.name]
            desc = node.output_descs[0]
            replacement = graph.add_node(
                "FileConstant",
                name=graph.unique_name(node.name + "_file"),
                attrs={
                    "shape": list(desc.shape),
                    "dtype": desc.dtype,
                    "location": location,
                    "offset": offset,
                    "length": length,
                    "sha256": digest,
                    "_directory": folder,
                },
                output_descs=[desc],
            )
            graph.replace_all_uses(node.output(0), replacement.output(0))
            graph.remove_node(node)
            graph.rename_node(replacement, node.name)  # the model keeps the user's names
        return True
