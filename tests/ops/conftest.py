"""Fixtures shared by the ops tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """openge's compiled-kernel threads set to 1, then 2, for the test; restored after."""
    from openge import kernels

    before = kernels.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(before)
