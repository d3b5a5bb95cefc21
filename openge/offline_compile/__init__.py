"""Offline compilation: build_initialize, build_model, save_model, build_finalize."""

from openge.offline_compile.builder import (
    ModelBufferData,
    build_finalize,
    build_initialize,
    build_model,
    save_model,
)

__all__ = ["ModelBufferData", "build_finalize", "build_initialize", "build_model", "save_model"]
