"""Compiler tests run with the per-pass verifier on: a pass that leaves the graph broken is
named by the failure. (Every compiled model's memory plan is checked by compile_graph itself.)"""

from __future__ import annotations

import pytest

from openge.compiler import pipeline


@pytest.fixture(autouse=True)
def verify_every_pass(monkeypatch):
    monkeypatch.setattr(pipeline, "VERIFY_PASSES", True)
