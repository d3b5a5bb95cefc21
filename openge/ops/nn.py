"""Op family: nn (filled in by its owner)."""

from __future__ import annotations

SCHEMAS: list = []
