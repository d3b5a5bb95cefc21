"""``openge.ge_global.GeApi``: GE's process-wide initialize/finalize (lives in openge.session)."""

from openge.session.ge_global import GeApi

__all__ = ["GeApi"]
