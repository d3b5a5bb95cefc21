"""ONNX backend conformance: every node case of the installed onnx and the pytorch-converted,
pytorch-operator and simple model folders, through parse → compile → serialize → load → execute;
node cases with shape-deciding inputs also run with every input fed at run time (``runtime``).

A case on ``expected_pass.txt`` must pass; any other case must pass or be refused with a clean
GeError — a wrong result or another exception fails, whatever the list says. Regenerate the list
and docs/conformance.md with ``python tools/gen_conformance_doc.py --update-expected``.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_harness():
    name = "openge_conformance_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(_HERE, "harness.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()
_CASES = {harness.case_id(c): c for c in harness.all_cases()}
_EXPECTED = harness.read_expected()


_RUNTIME = {harness.runtime_id(c): c for c in _CASES.values() if harness.runtime_differs(c)}


def _check(case_id: str, mode: str = "bound") -> None:
    case = _CASES[case_id] if mode == "bound" else _RUNTIME[case_id]
    outcome = harness.run_case(case, mode)
    if outcome.status in ("wrong", "crash"):
        pytest.fail(f"{case_id}: {outcome.status}: {outcome.detail}")
    if case_id in _EXPECTED:
        assert outcome.status == "pass", (
            f"{case_id} is on expected_pass.txt but was {outcome.status}: {outcome.detail}"
        )


@pytest.mark.parametrize("case_id", sorted(k for k in _CASES if k.startswith("node/")))
def test_node_case(case_id: str) -> None:
    """One onnx node test case."""
    _check(case_id)


@pytest.mark.parametrize("case_id", sorted(_RUNTIME))
def test_node_case_runtime(case_id: str) -> None:
    """One onnx node case with inputs that decide shapes, every input fed at run time (as the
    ONNX backend runner runs it): a dynamic-shape model. Cases without such inputs run the same
    way in both modes and are covered by test_node_case."""
    _check(case_id, "runtime")


@pytest.mark.parametrize("case_id", sorted(k for k in _CASES if not k.startswith("node/")))
def test_model_case(case_id: str) -> None:
    """One model folder (pytorch-converted, pytorch-operator, simple)."""
    _check(case_id)


def test_expected_list_names_known_cases() -> None:
    """Every entry of expected_pass.txt names a case of the installed onnx (no stale ids)."""
    stale = sorted(_EXPECTED - set(_CASES) - set(_RUNTIME))
    if stale:
        import onnx

        pytest.skip(
            f"{len(stale)} expected ids are not cases of onnx {onnx.__version__} "
            f"(e.g. {stale[:3]}); regenerate expected_pass.txt for this onnx version"
        )
