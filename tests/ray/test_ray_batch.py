"""Batch scoring on a local Ray instance: exact row-for-row results, actor loss, gears, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="the ray extra (pip install 'openge[ray]') is not installed"
)
pa = pytest.importorskip("pyarrow", reason="pyarrow comes with the ray extra")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow comes with the ray extra")

from openge.cli.main import main  # noqa: E402
from openge.ray import OmPredictor, predict  # noqa: E402
from tests.ray.models import (  # noqa: E402
    batches_reference,
    cnn_onnx,
    compile_onnx,
    loop_reference,
    mlp_onnx,
)

pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def mlp_om():
    return compile_onnx(mlp_onnx(batch=64))


@pytest.fixture(scope="module")
def cnn_om():
    return compile_onnx(cnn_onnx(batch=8))


def _tables(x, rows):
    """Arrow blocks of ``rows`` rows: column x (tensor rows) and row (index)."""
    return [
        pa.table({
            "x": pa.FixedShapeTensorArray.from_numpy_ndarray(x[s : s + rows]),
            "row": np.arange(s, min(s + rows, len(x))),
        })
        for s in range(0, len(x), rows)
    ]  # fmt: skip


def _collect(dataset, *columns):
    batches = list(dataset.iter_batches(batch_format="numpy", batch_size=None))
    return [np.concatenate([b[c] for b in batches]) for c in columns]


def test_mlp_20000_rows_equal_the_single_process_loop(ray_cluster, mlp_om):
    x = np.random.default_rng(3).normal(size=(20_000, 16)).astype(np.float32)
    result = predict(
        ray.data.from_arrow(_tables(x, 1000)), mlp_om, actors=2, batch_size=1000,
        passthrough_columns=["row"],
    )  # fmt: skip
    prob, row = _collect(result, "prob", "row")
    np.testing.assert_array_equal(row, np.arange(20_000))
    np.testing.assert_array_equal(prob, batches_reference(mlp_om, x, 1000, 64))


def test_cnn_2000_images_pandas_batches(ray_cluster, cnn_om):
    x = np.random.default_rng(4).normal(size=(2000, 3, 16, 16)).astype(np.float32)
    dataset = ray.data.from_numpy(np.array_split(x, 8))  # 8 blocks, one column named "data"
    result = predict(
        dataset, cnn_om, actors=2, batch_size=100, batch_format="pandas",
        input_columns={"img": "data"},
    )  # fmt: skip
    (scores,) = _collect(result, "scores")
    np.testing.assert_array_equal(scores, loop_reference(cnn_om, x, 8))


def test_a_killed_actor_leaves_the_output_complete_and_exact(ray_cluster, mlp_om, tmp_path):
    marker = str(tmp_path / "crashed")

    class CrashOnce(OmPredictor):  # local class: Ray ships it by value
        def __call__(self, batch):
            if batch["row"][0] >= 3000 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # the actor process dies in the middle of the run
            return super().__call__(batch)

    x = np.random.default_rng(5).normal(size=(6000, 16)).astype(np.float32)
    result = predict(
        ray.data.from_arrow(_tables(x, 500)), mlp_om, actors=2, batch_size=500,
        passthrough_columns=["row"], predictor_class=CrashOnce,
    )  # fmt: skip
    prob, row = _collect(result, "prob", "row")
    assert os.path.exists(marker), "the actor did not crash: the test proves nothing"
    np.testing.assert_array_equal(row, np.arange(6000))
    np.testing.assert_array_equal(prob, batches_reference(mlp_om, x, 500, 64))


def test_batch_gears_are_used(ray_cluster):
    om = compile_onnx(
        mlp_onnx(batch="N"),
        {"ge.inputShape": "x:-1,16", "ge.dynamicBatchSize": "1,2,4,8"},
        {"input_shape": "x:8,16"},
    )
    x = np.random.default_rng(6).normal(size=(203, 16)).astype(np.float32)
    result = predict(
        ray.data.from_numpy([x[:100], x[100:200], x[200:]]), om, actors=1, batch_size=100,
        input_columns={"x": "data"}, gear_column="gear",
    )  # fmt: skip
    prob, gear = _collect(result, "prob", "gear")
    # batches of 100, 100, 3 rows: 8-row runs, then a 4-row run for the last 4 of each 100,
    # and one 4-row run (1 padded row) for the 3-row tail
    assert set(np.unique(gear)) == {4, 8}
    assert (gear[:96] == 8).all() and (gear[96:100] == 4).all() and (gear[200:] == 4).all()
    single = compile_onnx(mlp_onnx(batch=1))
    np.testing.assert_allclose(prob, loop_reference(single, x, 1), rtol=1e-5, atol=1e-7)


def _write_npy_folder(folder, x):
    folder.mkdir()
    for i, row in enumerate(x):
        np.save(folder / f"img_{i:04d}.npy", row)


def test_cli_batch_npy_folder_and_parquet(ray_cluster, cnn_om, tmp_path, capsys):
    om_path = tmp_path / "cnn.om"
    om_path.write_bytes(cnn_om)
    x = np.random.default_rng(8).normal(size=(37, 3, 16, 16)).astype(np.float32)
    _write_npy_folder(tmp_path / "imgs", x)
    out = tmp_path / "scores.parquet"
    args = ["batch", "--model", str(om_path), "--input", str(tmp_path / "imgs")]
    assert main([*args, "--output", str(out), "--actors", "2", "--batch-size", "16"]) == 0
    assert "scored 37 rows" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.column("file").to_pylist() == [f"img_{i:04d}.npy" for i in range(37)]
    scores = table.column("scores").combine_chunks().to_numpy_ndarray()
    np.testing.assert_array_equal(scores, loop_reference(cnn_om, x, 8))

    source = tmp_path / "in.parquet"
    pq.write_table(
        pa.table({"pixels": pa.array(list(x.reshape(37, -1))), "key": np.arange(37) * 10}), source
    )
    out2 = tmp_path / "scores2.parquet"
    code = main([
        "batch", "--model", str(om_path), "--input", str(source), "--output", str(out2),
        "--input-columns", "pixels", "--keep-columns", "key",
    ])  # fmt: skip
    assert code == 0
    table2 = pq.read_table(out2)
    np.testing.assert_array_equal(table2.column("key").to_numpy(), np.arange(37) * 10)
    np.testing.assert_array_equal(
        table2.column("scores").combine_chunks().to_numpy_ndarray(), scores
    )


def test_cli_errors_are_one_line_and_leave_no_output(ray_cluster, cnn_om, tmp_path, capsys):
    om_path = tmp_path / "cnn.om"
    om_path.write_bytes(cnn_om)
    bad_model = tmp_path / "bad.om"
    bad_model.write_bytes(b"not a model at all" * 20)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"pixels": pa.array([[1.0] * 10] * 4)}), source)
    out = tmp_path / "out.parquet"
    cases = [
        (["--model", str(bad_model), "--input", str(source)], "error 1450"),
        (["--model", str(om_path), "--input", str(source)], "no column 'img'"),
        (["--model", str(om_path), "--input", str(source), "--input-columns", "pixels"],
         "per row"),
    ]  # fmt: skip
    for extra, message in cases:
        assert main(["batch", *extra, "--output", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("openge batch: error") and message in err[-1], err
        assert "Traceback" not in "\n".join(err)
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".openge-batch")] == []


def test_cli_starts_its_own_local_ray(cnn_om, tmp_path):
    om_path = tmp_path / "cnn.om"
    om_path.write_bytes(cnn_om)
    x = np.random.default_rng(9).normal(size=(5, 3, 16, 16)).astype(np.float32)
    _write_npy_folder(tmp_path / "imgs", x)
    out = tmp_path / "s.parquet"
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "openge", "batch", "--model", str(om_path), "--input",
         str(tmp_path / "imgs"), "--output", str(out), "--actors", "1"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = pq.read_table(out).column("scores").combine_chunks().to_numpy_ndarray()
    np.testing.assert_array_equal(scores, loop_reference(cnn_om, x, 8))
