"""VariableStore: variable values by name, shared by the models of one session."""

from __future__ import annotations

import threading

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.om.plan import VariableDef


class VariableStore:
    """Named variable arrays. A model binds its VARIABLE slots to the arrays in a store, so
    models that share a store (the graphs of one session) share variable state."""

    def __init__(self) -> None:
        self._values: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def bind(self, var: VariableDef, initial: np.ndarray) -> np.ndarray:
        """The array of ``var``, created from ``initial`` on first use; GeError when an existing
        variable of that name has another dtype or shape."""
        with self._lock:
            existing = self._values.get(var.name)
            if existing is None:
                array = np.array(initial, dtype=var.dtype.np_dtype, copy=True).reshape(var.shape)
                self._values[var.name] = array
                return array
            if existing.dtype != var.dtype.np_dtype or existing.shape != tuple(var.shape):
                raise GeError(
                    PARAM_INVALID,
                    f"variable {var.name!r} exists as {existing.dtype}{list(existing.shape)} but "
                    f"a graph declares it {var.dtype.short_name}{list(var.shape)}; graphs that "
                    "share a variable must agree on its type and shape",
                )
            return existing

    def replace(self, name: str, value: np.ndarray) -> None:
        """Store a new array for ``name`` (its format changed); models bound to the old array
        must be reloaded."""
        with self._lock:
            self._values[name] = np.ascontiguousarray(value).copy()

    def names(self) -> list[str]:
        """Variable names, sorted."""
        return sorted(self._values)

    def get(self, name: str) -> np.ndarray | None:
        """The live array of variable ``name`` (None when absent)."""
        return self._values.get(name)

    def snapshot(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Copies of the values, by name (all when ``names`` is None)."""
        with self._lock:
            if names is None:
                names = sorted(self._values)
            missing = [n for n in names if n not in self._values]
            if missing:
                raise GeError(
                    PARAM_INVALID,
                    f"no variable named {', '.join(map(repr, missing))}; known: "
                    + (", ".join(sorted(self._values)) or "none"),
                )
            return {n: self._values[n].copy() for n in names}

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)
