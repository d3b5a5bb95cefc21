"""``acl.media``: only the DVPP memory calls (as plain memory); DVPP image processing is not
implemented (returns ACL_ERROR_API_NOT_SUPPORT where acllite would call it)."""

from __future__ import annotations

from openge.acl import rt


def dvpp_malloc(size: int) -> tuple[int, int]:
    """``acldvppMalloc`` → ``(ptr, ret)``: ordinary memory."""
    return rt.malloc(size, 0)


def dvpp_free(ptr: int) -> int:
    """``acldvppFree``."""
    return rt.free(ptr)
