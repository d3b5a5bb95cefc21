"""``openge compare``: a force_fp16 dump against the float32 golden stays above cosine 0.99 at
every layer; a planted bug (one convolution's weights perturbed) is the first divergence; CSV,
HTML chart and .npy sides work; metrics equal hand-computed values."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
from onnx import numpy_helper

from openge.cli.compare import compare_dumps, first_divergence, metrics
from openge.cli.main import main
from openge.compiler import compile_graph
from openge.errors import GeError
from openge.parser import parse_onnx
from openge.runtime import Model
from openge.runtime.dump import DumpConfig
from tests.e2e.test_precision_models import small_resnet

# one xdist worker runs this file: with an empty kernel cache (CI) two workers would each
# compile the dumped models' kernels at once (20-50 s each)
pytestmark = pytest.mark.xdist_group("dump_compare")
FEED = np.random.default_rng(5).normal(size=(1, 3, 32, 32)).astype(np.float32)


def _dump(model, folder, options=None, fmt="ge") -> Model:
    compiled = Model(compile_graph(parse_onnx(model), options or {}))
    compiled.set_dump(DumpConfig(path=str(folder), format=fmt))
    compiled.execute([FEED])
    return compiled


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    root = tmp_path_factory.mktemp("dumps")
    model = small_resnet(seed=4)
    _dump(model, root / "fp32")
    fp16 = _dump(model, root / "fp16", {"ge.exec.precision_mode": "force_fp16"})
    # the planted bug: the weights of one convolution in the middle, perturbed
    conv = [n for n in model.graph.node if n.op_type == "Conv"][4]
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init)
    noise = np.random.default_rng(0).normal(size=w.shape).astype(np.float32)
    init.CopyFrom(numpy_helper.from_array(w + 0.5 * np.std(w) * noise, init.name))
    _dump(model, root / "bug", {"ge.exec.precision_mode": "force_fp16"})
    _dump(small_resnet(seed=4), root / "golden_npy", fmt="npy")
    return root, conv.name, fp16


def test_metrics_are_the_documented_formulas():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([1.0, 2.5, 2.0], np.float32)
    cos, max_abs, acc, red = metrics(a, b)
    assert cos == pytest.approx(float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert max_abs == pytest.approx(1.0)
    assert acc == pytest.approx((0 + 0.5 + 1.0) / (1 + 2.5 + 2))
    assert red == pytest.approx(math.sqrt(0.25 + 1.0) / math.sqrt(1 + 6.25 + 4))


def test_force_fp16_against_the_fp32_golden_stays_above_099(dumps):
    root, _, fp16 = dumps
    rows = compare_dumps(str(root / "fp16"), str(root / "fp32"))
    compared = [r for r in rows if math.isfinite(r.cosine)]
    assert len(compared) >= len(fp16.compiled.tasks) - 2  # all but the inserted input Cast
    assert min(r.cosine for r in compared) >= 0.99
    assert first_divergence(rows) is None
    assert all(r.max_abs > 0 for r in compared if r.op_type != "MaxPoolV3")


def test_a_perturbed_convolution_is_the_first_divergence(dumps):
    root, conv, fp16 = dumps
    rows = compare_dumps(str(root / "bug"), str(root / "fp32"))
    first = first_divergence(rows)
    assert first is not None
    task = next(
        t
        for t in fp16.compiled.tasks
        if (t.attrs.get("_datadump_original_op_names") or [t.name])[-1] == first.op_name
    )
    assert conv in task.attrs["_datadump_original_op_names"]
    before = [r for r in rows if r.index < first.index and math.isfinite(r.cosine)]
    assert before and all(r.cosine >= 0.99 for r in before)


def test_cli_table_csv_and_html_chart(dumps, tmp_path, capsys):
    root, _, _ = dumps
    out_csv, chart = tmp_path / "t.csv", tmp_path / "c.html"
    code = main(
        [
            "compare",
            str(root / "bug"),
            str(root / "fp32"),
            "--csv",
            str(out_csv),
            "--chart",
            str(chart),
        ]
    )
    text = capsys.readouterr().out
    assert code == 1 and "first divergent op:" in text
    with open(out_csv, newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["first_divergent"]) for r in table].count(1) == 1
    assert {"cosine", "max_abs", "acc_rel", "rel_euclid"} <= set(table[0])
    page = chart.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "polyline" in page
    code = main(["compare", str(root / "fp16"), str(root / "fp32")])
    assert code == 0 and "no divergence" in capsys.readouterr().out


def test_png_chart_needs_matplotlib_or_says_how(dumps, tmp_path):
    root, _, _ = dumps
    rows = compare_dumps(str(root / "fp16"), str(root / "fp32"))
    from openge.cli.compare import write_chart

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(GeError, match="openge\\[plot\\]"):
            write_chart(rows, str(tmp_path / "c.png"), 0.99)
    else:
        write_chart(rows, str(tmp_path / "c.png"), 0.99)
        assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_npy_golden_side(dumps):
    root, _, _ = dumps
    rows = compare_dumps(str(root / "fp32"), str(root / "golden_npy"))
    compared = [r for r in rows if math.isfinite(r.cosine)]
    assert compared and all(r.max_abs == 0.0 and r.cosine == pytest.approx(1.0) for r in compared)


def test_empty_or_missing_dump_is_a_ge_error(tmp_path):
    with pytest.raises(GeError, match="no dump files"):
        compare_dumps(str(tmp_path), str(tmp_path))
    with pytest.raises(GeError, match="does not exist"):
        compare_dumps(str(tmp_path / "nope"), str(tmp_path))


def test_atc_precision_flags(tmp_path):
    import onnx

    from openge.runtime import Model as Loaded

    model = small_resnet(seed=4)
    src = tmp_path / "m.onnx"
    onnx.save(model, src)
    keep = tmp_path / "keep.cfg"
    keep.write_text("OpType::SoftmaxV2\n")
    mix = tmp_path / "mix.json"
    mix.write_text('{"black-list": {"to-add": ["MaxPoolV3"]}}')
    args = [
        "atc",
        f"--model={src}",
        "--framework=5",
        f"--output={tmp_path / 'fp16'}",
        "--precision_mode=allow_mix_precision",
        f"--keep_dtype={keep}",
        f"--modify_mixlist={mix}",
    ]
    assert main(args) == 0
    with Loaded.from_file(str(tmp_path / "fp16.om")) as m:
        kinds = {t.op_type: t.outputs[0].dtype.name for t in m.compiled.tasks}
        assert kinds["SoftmaxV2"] == "DT_FLOAT" and kinds["MaxPoolV3"] == "DT_FLOAT"
        assert kinds["FusedConv2D"] == "DT_FLOAT16"
    bad = [
        "atc",
        f"--model={src}",
        "--framework=5",
        f"--output={tmp_path / 'x'}",
        "--precision_mode=force_fp16",
        "--precision_mode_v2=fp16",
    ]
    assert main(bad) == 1


@pytest.mark.slow
def test_resnet50_dump_compare_and_planted_bug(tmp_path):
    """The acceptance figures of docs/dump.md on bench's ResNet-50 (seeded weights, 224×224):
    one dump file per task, each obeying size = 8 + header_len + Σ tensor sizes; the
    force_fp16 dump against the float32 golden ≥ 0.99 cosine at every layer with no
    divergence; one convolution's weights perturbed is the first divergence."""
    from bench.models import light_model
    from tests.runtime.test_dump import read_by_size_rule

    feed = np.random.default_rng(3).normal(size=(1, 3, 224, 224)).astype(np.float32)

    def dump(model, folder, options=None) -> Model:
        compiled = Model(compile_graph(parse_onnx(model), options or {}))
        compiled.set_dump(DumpConfig(path=str(folder)))
        compiled.execute([feed])
        return compiled

    model = light_model("resnet50")
    fp32 = dump(model, tmp_path / "fp32")
    fp16 = dump(model, tmp_path / "fp16", {"ge.exec.precision_mode": "force_fp16"})
    for folder, built in ((tmp_path / "fp32", fp32), (tmp_path / "fp16", fp16)):
        files = [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]
        assert len(files) == len(built.compiled.tasks)
        for path in files:
            read_by_size_rule(path)  # asserts size = 8 + header_len + Σ sizes
    rows = compare_dumps(str(tmp_path / "fp16"), str(tmp_path / "fp32"))
    compared = [r for r in rows if math.isfinite(r.cosine)]
    worst = min(r.cosine for r in compared)
    print(
        f"resnet50: {len(fp32.compiled.tasks)} / {len(fp16.compiled.tasks)} files, "
        f"worst cosine {worst:.7f}"
    )
    assert worst >= 0.99 and first_divergence(rows) is None

    conv = [n for n in model.graph.node if n.op_type == "Conv"][20]
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init)
    noise = np.random.default_rng(0).normal(size=w.shape).astype(np.float32)
    init.CopyFrom(numpy_helper.from_array(w + 0.5 * np.std(w) * noise, init.name))
    buggy = dump(model, tmp_path / "bug", {"ge.exec.precision_mode": "force_fp16"})
    first = first_divergence(compare_dumps(str(tmp_path / "bug"), str(tmp_path / "fp32")))
    assert first is not None
    task = next(
        t
        for t in buggy.compiled.tasks
        if (t.attrs.get("_datadump_original_op_names") or [t.name])[-1] == first.op_name
    )
    print(
        f"planted bug in {conv.name}: first divergence {first.op_name}, cosine {first.cosine:.4f}"
    )
    assert conv.name in task.attrs["_datadump_original_op_names"]
