"""ONNX op → catalog mapping tables: one module per op group, registered in one table.

A mapping is ``fn(node, ctx) -> [Port per ONNX output]``: it emits catalog nodes through the
``ParseContext``. ``onnx_op`` registers one for a (domain, op type) from an opset on;
``needs`` names the catalog ops it always emits (an op whose needs are missing is reported as
unsupported up front); ``shape_inputs`` lists the ONNX input indexes whose values must be known
at compile time (they decide output shapes), per opset; ``attrs`` lists the ONNX attributes the
mapping understands and ``inputs`` the most inputs it takes — a node with any other attribute
or more inputs (as newer opsets add) is refused rather than converted wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from openge.ops import has_op

ShapeInputs = tuple[int, ...] | Callable[[int], tuple[int, ...]]


@dataclass
class OpMapping:
    """Every registered version of one ONNX op's mapping."""

    domain: str
    op_type: str
    versions: list[
        tuple[int, int | None, Callable, tuple[str, ...], ShapeInputs, frozenset[str], int | None]
    ] = field(default_factory=list)

    def entry(self, opset: int):
        """The (since, until, fn, needs, shape_inputs) entry for ``opset``, or None."""
        best = None
        for ver in self.versions:
            since, until = ver[0], ver[1]
            if (
                since <= opset
                and (until is None or opset <= until)
                and (best is None or since > best[0])
            ):
                best = ver
        return best

    def fn_for(self, opset: int) -> Callable | None:
        """The mapping function for ``opset`` when its catalog needs are met, else None."""
        entry = self.entry(opset)
        if entry is None or not all(has_op(op) for op in entry[3]):
            return None
        return entry[2]


_TABLE: dict[tuple[str, str], OpMapping] = {}


def onnx_op(
    *op_types: str,
    since: int = 1,
    until: int | None = None,
    domain: str = "",
    needs: tuple[str, ...] = (),
    shape_inputs: ShapeInputs = (),
    attrs: tuple[str, ...] = (),
    inputs: int | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator registering a mapping for ONNX ``op_types`` from opset ``since`` on."""

    def register(fn: Callable) -> Callable:
        for op_type in op_types:
            entry = _TABLE.setdefault((domain, op_type), OpMapping(domain, op_type))
            entry.versions.append(
                (since, until, fn, tuple(needs), shape_inputs, frozenset(attrs), inputs)
            )
        return fn

    return register


def _ensure_loaded() -> None:
    if _TABLE:
        return
    from openge.parser.mappings import (  # noqa: F401  (imported for registration)
        control,
        data_dependent,
        detection,
        elementwise,
        image,
        math,
        nn,
        optional,
        reduce,
        rnn,
        shape,
        text,
        training,
    )


def lookup(domain: str, op_type: str, opset: int) -> Callable | None:
    """The mapping for ``op_type`` at ``opset`` (None when unsupported or catalog ops lack)."""
    _ensure_loaded()
    entry = _TABLE.get((domain, op_type))
    return None if entry is None else entry.fn_for(opset)


def missing_needs(domain: str, op_type: str, opset: int) -> list[str]:
    """Catalog ops the mapping of ``op_type`` needs that the catalog lacks."""
    _ensure_loaded()
    entry = _TABLE.get((domain, op_type))
    ver = None if entry is None else entry.entry(opset)
    return [] if ver is None else [op for op in ver[3] if not has_op(op)]


def shape_inputs(domain: str, op_type: str, opset: int) -> tuple[int, ...]:
    """ONNX input indexes of ``op_type`` whose values must be compile-time constants."""
    _ensure_loaded()
    entry = _TABLE.get((domain, op_type))
    ver = None if entry is None else entry.entry(opset)
    if ver is None:
        return ()
    spec = ver[4]
    return tuple(spec(opset)) if callable(spec) else tuple(spec)


def known_interface(domain: str, op_type: str, opset: int) -> tuple[frozenset[str], int | None]:
    """(attributes understood, most inputs taken) by the mapping of ``op_type`` at ``opset``."""
    _ensure_loaded()
    entry = _TABLE.get((domain, op_type))
    ver = None if entry is None else entry.entry(opset)
    if ver is None:
        return frozenset(), 0
    return ver[5], ver[6]


def registered() -> dict[tuple[str, str], OpMapping]:
    """The whole table, by (domain, op type)."""
    _ensure_loaded()
    return dict(_TABLE)


__all__ = [
    "OpMapping",
    "known_interface",
    "lookup",
    "missing_needs",
    "onnx_op",
    "registered",
    "shape_inputs",
]
