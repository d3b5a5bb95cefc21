"""Pass base class and the context passes share (options, compile-time constant values)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from openge.graph import Graph, Port

logger = logging.getLogger(__name__)


@dataclass
class PassContext:
    """State shared along one compilation: the options and known constant values."""

    options: dict[str, str] = field(default_factory=dict)
    const_values: dict[Port, np.ndarray] = field(default_factory=dict)
    #: Variable name → VariableFormat: formats already changed in the session (in and out).
    variable_formats: dict[str, Any] = field(default_factory=dict)
    #: Variables whose format this compilation changed.
    changed_variables: set[str] = field(default_factory=set)
    #: Bytes constant folding may still add (fixed on first use; see passes/fold_limits.py).
    fold_budget: int | None = None
    #: Bytes constant folding added so far.
    folded_bytes: int = 0


class GraphPass:
    """A graph rewrite. Subclasses set ``name`` and implement ``run``, returning True on change."""

    name: ClassVar[str] = ""
    #: Option key that switches the pass off when false (GE's ge.oo.* keys), if any.
    option_key: ClassVar[str | None] = None
    #: True for passes the compiler cannot do without (they ignore ge.disableOptimizations).
    required: ClassVar[bool] = False

    def run(self, graph: Graph, ctx: PassContext) -> bool:  # pragma: no cover - abstract
        """Rewrite ``graph`` in place; return whether anything changed."""
        raise NotImplementedError
