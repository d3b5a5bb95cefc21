"""Registry self-test: every schema is consistent, every kernel matches its schema, docs current."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from openge.errors import GeError
from openge.ops import FAMILIES, Trait, all_schemas, get_schema

ROOT = Path(__file__).resolve().parents[2]


def test_every_op_type_is_defined_once():
    names = [s.op_type for f in FAMILIES for s in f.SCHEMAS]
    assert len(names) == len(set(names))
    assert len(all_schemas()) == len(names)


@pytest.mark.parametrize("schema", all_schemas(), ids=lambda s: s.op_type)
def test_kernel_signature_matches_schema(schema):
    assert schema.doc, f"{schema.op_type} has no doc"
    if schema.has(Trait.SOURCE) or schema.has(Trait.SINK):
        return
    params = inspect.signature(schema.kernel).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) == 2
    attr_names = {a.name for a in schema.attrs}
    assert set(schema.kernel_attrs) <= attr_names
    for attr in schema.attrs:
        if attr.choices is not None and not attr.required:
            assert attr.default in attr.choices, f"{schema.op_type}.{attr.name} default"


def test_unknown_op_suggests_close_names():
    with pytest.raises(GeError, match="Did you mean"):
        get_schema("Conv2d")


def test_docs_ops_md_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_ops_doc", ROOT / "tools" / "gen_ops_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "ops.md").read_text() == module.render(), (
        "docs/ops.md is out of date: run python tools/gen_ops_doc.py"
    )
