"""ModelBufferData: a compiled model's bytes, owned (GE's ``ge::ModelBufferData``)."""

from __future__ import annotations


class ModelBufferData(bytes):
    """The serialized model returned by ``get_compiled_model`` / ``build_model``.

    It owns its bytes (an immutable ``bytes``), so it stays valid after the session that made it
    is closed. ``.data`` and ``.length`` mirror GE's struct; the buffer protocol, ``bytes(buf)``
    and ``memoryview(buf)`` work as for bytes.
    """

    __slots__ = ()

    @property
    def data(self) -> bytes:
        """The model bytes (this object)."""
        return self

    @property
    def length(self) -> int:
        """Number of bytes."""
        return len(self)

    def __repr__(self) -> str:
        return f"ModelBufferData(length={len(self)})"
