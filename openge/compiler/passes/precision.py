"""PrecisionPass: compute ops in the dtype the precision mode asks for, inserting Casts.

Each op with float inputs of one origin type (float32, float16 or bfloat16) gets a compute
dtype from the mode (``openge.compiler.precision_config``) and the op lists
(``openge.compiler.precision_lists``):

* ``force_fp16``: every op in float16; ``allow_fp32_to_fp16`` / ``allow_fp32_to_bf16``: the
  cube ops (convolution, matrix products) in float16 / bfloat16, the rest keeps float32;
* ``force_fp32`` / ``cube_fp16in_fp32out``: cube ops read float16-rounded inputs and write
  float32 (a Cast pair fp32→fp16→fp32 on each input — exactly "fp16 in, fp32 accumulate, fp32
  out"), float16 vector ops compute in float32;
* ``allow_mix_precision*``: white ops lowered, black ops in float32, gray ops follow their
  non-constant inputs (lowered when one of them is).

Cube ops keep a float32 accumulator in every mode: the pass marks each cube op that computes
in float16 / bfloat16 (or reads float16-rounded inputs) with ``_exact_accumulation``, and it
then computes the exactly accumulated, correctly rounded float32 result of its products before
rounding to its output dtype (``openge.ops.exact_cube``; results independent of the CPU, BLAS
and thread count). Graph inputs and outputs keep their dtypes: Casts are
inserted after the inputs and before the outputs (an output's producer keeps its name through
a rename, so the model's output names stay). Constant inputs are converted at compile time
(weights are stored in the lowered dtype, as GE does). An op that cannot compute in the chosen
dtype keeps its origin dtype. ``--keep_dtype`` ops keep theirs; ``--customize_dtypes`` ops use
the given one.
"""

from __future__ import annotations

import logging

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.fuse_bias_activation import LOWERED_FROM_ATTR
from openge.compiler.passes.rules import (
    ORIGINAL_NAMES_ATTR,
    add_const,
    add_inferred,
    const_value,
    original_names,
    remove_if_dead,
)
from openge.compiler.precision_config import DEFAULT_MODE, PrecisionPolicy, resolve_policy
from openge.compiler.precision_lists import CUBE
from openge.errors import GeError
from openge.graph import DataType, Graph, Node, Port
from openge.ops import Trait, get_schema, infer_node
from openge.ops.exact_cube import EXACT_ACCUMULATION_ATTR

logger = logging.getLogger(__name__)

F16, F32, BF16 = DataType.DT_FLOAT16, DataType.DT_FLOAT, DataType.DT_BF16
LOWERABLE = frozenset({F32, F16, BF16})


def compute_dtypes(
    policy: PrecisionPolicy, node: Node, origin: DataType, lowered_input: bool
) -> tuple[DataType, DataType | None]:
    """(compute dtype, dtype inputs are first rounded to or None) for ``node`` whose float
    inputs are of ``origin``; ``lowered_input``: one non-constant float input already is."""
    op = node.op_type
    if node.name in policy.keep_names or op in policy.keep_types:
        return origin, None
    custom = policy.custom_names.get(node.name) or policy.custom_types.get(op)
    if custom is not None:
        return custom, None
    mode = policy.mode
    if mode == "force_fp16":
        return (F16 if origin == F32 else origin), None
    if mode in ("allow_fp32_to_fp16", "allow_fp32_to_bf16"):
        low = F16 if mode == "allow_fp32_to_fp16" else BF16
        return (low if op in CUBE and origin == F32 else origin), None
    if mode in ("force_fp32", "cube_fp16in_fp32out"):
        if op in CUBE:
            return F32, F16
        return (F32 if origin == F16 else origin), None
    low = policy.mix_dtype
    if low is not None:
        kind = policy.op_list(op)
        if kind == "white":
            return (low if origin == F32 else origin), None
        if kind == "black":
            return F32, None
        return (low if lowered_input else origin), None
    return origin, None


class PrecisionPass(GraphPass):
    """Insert Casts so every op computes in its precision-mode dtype."""

    name = "PrecisionPass"

    def skip_reason(self, options: dict[str, str]) -> str | None:
        """Skipped under must_keep_origin_dtype (openge's default) without customized ops."""
        if resolve_policy(options).changes_nothing:
            return "precision mode must_keep_origin_dtype"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        policy = resolve_policy(ctx.options)
        if policy.changes_nothing:
            return False
        return _Rewriter(graph, policy).run()


class _Rewriter:
    def __init__(self, graph: Graph, policy: PrecisionPolicy) -> None:
        self.graph = graph
        self.policy = policy
        self.origin: dict[Port, DataType] = {}
        self.casts: dict[tuple[Port, DataType], Port] = {}
        self.changed = False

    def run(self) -> bool:
        graph = self.graph
        order = graph.topological_order()
        for node in order:
            for i, d in enumerate(node.output_descs):
                self.origin[node.output(i)] = d.dtype
        for node in order:
            self._visit(node)
        self._restore_outputs()
        for port in list({p for p, _ in self.casts}):
            remove_if_dead(graph, port.node)
        return self.changed

    def _float_inputs(self, node: Node) -> tuple[list[int], DataType | None]:
        idx = [
            i
            for i, p in enumerate(node.inputs)
            if p is not None and self.origin.get(p, p.desc.dtype) in LOWERABLE
        ]
        kinds = {self.origin.get(node.inputs[i], node.inputs[i].desc.dtype) for i in idx}  # type: ignore[union-attr]
        return idx, (kinds.pop() if len(kinds) == 1 else None)

    def _visit(self, node: Node) -> None:
        schema = get_schema(node.op_type)
        if (
            self.policy.op_list(node.op_type) is None
            or schema.has(Trait.SOURCE)
            or schema.has(Trait.SINK)
            or schema.has(Trait.STATEFUL)
        ):
            self._restore_inputs(node)
            return
        idx, origin = self._float_inputs(node)
        if origin is None:
            self._restore_inputs(node)
            return
        lowered = any(
            node.inputs[i].desc.dtype != origin  # type: ignore[union-attr]
            and const_value(node.inputs[i]) is None
            for i in idx
        )
        compute, round_to = compute_dtypes(self.policy, node, origin, lowered)
        if compute == origin and round_to is None:
            self._restore_inputs(node)
            if self._exact(node, compute, round_to, origin):
                node.attrs[EXACT_ACCUMULATION_ATTR] = True
                self.changed = True
            return
        before = list(node.inputs)
        old_descs = list(node.output_descs)
        for i in idx:
            port = node.inputs[i]
            if round_to is not None:
                port = self._convert(port, round_to)  # type: ignore[arg-type]
            self.graph.set_input(node, i, self._convert(port, compute))  # type: ignore[arg-type]
        try:
            known = {p: v for p in node.inputs for v in (const_value(p),) if v is not None}
            descs = infer_node(node, known)[1]
        except GeError as err:
            descs = None
            logger.debug("PrecisionPass: %s keeps %s: %s", node.name, origin.name, err.message)
        expected = [compute if d.dtype == origin else d.dtype for d in old_descs]
        if descs is None or [d.dtype for d in descs] != expected:
            for i, port in enumerate(before):
                self.graph.set_input(node, i, port)
            self._restore_inputs(node)
            return
        node.output_descs = descs
        if compute != origin:
            node.attrs[LOWERED_FROM_ATTR] = origin
        if self._exact(node, compute, round_to, origin):
            node.attrs[EXACT_ACCUMULATION_ATTR] = True
        self.changed = True

    def _exact(
        self, node: Node, compute: DataType, round_to: DataType | None, origin: DataType
    ) -> bool:
        """True for a cube op that multiplies float16 / bfloat16 values in a precision mode:
        it accumulates exactly (openge.ops.exact_cube). Under must_keep_origin_dtype only the
        ops whose dtype the pass changed (--customize_dtypes), so that the default mode's
        results stay those of a build without the pass."""
        if node.op_type not in CUBE:
            return False
        if compute not in (F16, BF16) and round_to not in (F16, BF16):
            return False
        return self.policy.mode != DEFAULT_MODE or compute != origin or round_to is not None

    def _restore_inputs(self, node: Node) -> None:
        """Inputs a changed producer lowered go back to their origin dtype for ``node``."""
        for i, port in enumerate(node.inputs):
            if port is None:
                continue
            origin = self.origin.get(port)
            if origin is not None and port.desc.dtype != origin:
                self.graph.set_input(node, i, self._convert(port, origin))

    def _convert(self, port: Port, dtype: DataType) -> Port:
        """``port``'s value in ``dtype``: itself, a converted constant or a (shared) Cast."""
        if port.desc.dtype == dtype:
            return port
        key = (port, dtype)
        if key not in self.casts:
            value = const_value(port)
            if value is not None:
                converted = np.asarray(value).astype(dtype.np_dtype)
                new = add_const(
                    self.graph, converted, f"{port.node.name}_{dtype.short_name}", port.desc
                )
            else:
                cast = add_inferred(
                    self.graph,
                    "Cast",
                    [port],
                    {"dst_type": dtype},
                    f"{port.node.name}_cast_{dtype.short_name}",
                )
                new = cast.output(0)
            self.casts[key] = new
            self.changed = True
        return self.casts[key]

    def _restore_outputs(self) -> None:
        """Graph outputs keep their dtypes: a Cast back, named as the producer was."""
        graph = self.graph
        outputs = graph.outputs
        for k, port in enumerate(outputs):
            origin = self.origin.get(port)
            if origin is None or port.desc.dtype == origin:
                continue
            producer = port.node
            name = producer.name
            if port.index == 0 and producer.op_type not in ("Data", "Const"):
                names = original_names(producer)
                graph.rename_node(
                    producer, graph.unique_name(f"{name}_{port.desc.dtype.short_name}")
                )
                producer.attrs[ORIGINAL_NAMES_ATTR] = names
                cast = graph.add_node("Cast", [port], name=name, attrs={"dst_type": origin})
                cast.output_descs = infer_node(cast)[1]
                outputs[k] = cast.output(0)
            else:
                outputs[k] = self._convert(port, origin)
        graph.set_outputs(outputs)
