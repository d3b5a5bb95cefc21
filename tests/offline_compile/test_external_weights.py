"""External weights (DESIGN §1.3): modes 0/1/2, folders, lifecycle, verification, safety."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from openge.errors import GeError
from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
from openge.runtime import Model
from openge.session import GeSession
from tests.offline_compile.test_workflow import B, W, linear_graph, x_input

EXPECTED = None


def expected() -> np.ndarray:
    return x_input() @ W + B


def compile_in_session(options, *, graph_id=1):
    s = GeSession(options)
    s.add_graph(graph_id, linear_graph())
    s.compile_graph(graph_id)
    return s


def test_mode_0_keeps_weights_inside(ge, work_path):
    s = compile_in_session({"ge.externalWeight": "0"})
    assert s.get_compiled_graph_summary(1).external_weight_paths == []
    assert s.temp_weight_dir is None or not os.path.exists(s.temp_weight_dir)
    s.close()


@pytest.mark.parametrize("mode", ["1", "2"])
def test_session_temp_dir_lifecycle(ge, work_path, mode):
    s = compile_in_session({"ge.externalWeight": mode})
    paths = s.get_compiled_graph_summary(1).external_weight_paths
    temp = s.temp_weight_dir
    assert os.path.basename(temp) == f"tmp_weight_{os.getpid()}_{s.session_id}"
    assert os.path.dirname(temp) == str(work_path)
    assert paths and all(os.path.dirname(p) == temp and os.path.isfile(p) for p in paths)
    if mode == "1":
        assert len(paths) == 2
        for p in paths:
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            assert os.path.basename(p) == f"weight_{digest}"
    else:
        assert [os.path.basename(p) for p in paths] == ["linear_weight_combined"]
    buf = s.get_compiled_model(1)
    np.testing.assert_allclose(s.run_graph(1, [x_input()])[0].numpy(), expected(), rtol=1e-5)
    s.close()
    assert not os.path.exists(temp)
    # The pitfall: a buffer loaded after its session closed names the file, where it looked,
    # and the three fixes.
    with pytest.raises(GeError) as info:
        Model.from_bytes(buf)
    text = str(info.value)
    assert os.path.basename(paths[0]) in text and temp in text
    assert "ge.externalWeightDir" in text and "copy the weight files" in text
    assert "save_model before closing the session" in text


def test_mode_2_entries_are_512_aligned(ge, work_path):
    s = compile_in_session({"ge.externalWeight": "2"})
    offsets = [w.offset for w in s._graphs[1].compiled.external_weights]
    assert offsets == sorted(offsets) and all(o % 512 == 0 for o in offsets)
    s.close()


@pytest.mark.parametrize("mode", ["1", "2"])
def test_external_weight_dir_is_used_and_kept(ge, work_path, tmp_path, mode):
    folder = tmp_path / "weights_here"
    s = compile_in_session({"ge.externalWeight": mode, "ge.externalWeightDir": str(folder)})
    paths = s.get_compiled_graph_summary(1).external_weight_paths
    assert all(os.path.dirname(p) == str(folder) for p in paths)
    buf = s.get_compiled_model(1)
    s.close()
    assert all(os.path.isfile(p) for p in paths)  # never deleted by openge
    with Model.from_bytes(buf) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], expected(), rtol=1e-5)


@pytest.mark.parametrize("mode", ["1", "2"])
def test_save_model_moves_temp_weights_next_to_the_om(ge, work_path, tmp_path, mode):
    s = compile_in_session({"ge.externalWeight": mode})
    buf = s.get_compiled_model(1)
    names = [os.path.basename(p) for p in s.get_compiled_graph_summary(1).external_weight_paths]
    path = save_model(str(tmp_path / "out" / "linear"), buf)
    s.close()
    assert sorted(os.listdir(tmp_path / "out" / "weight")) == sorted(names)
    with Model.from_file(path) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], expected(), rtol=1e-5)


def test_build_model_external_weights_and_finalize(work_path, tmp_path):
    build_initialize({"ge.externalWeight": "1"})
    try:
        buf = build_model(linear_graph())
        path = save_model(str(tmp_path / "m"), buf)
    finally:
        build_finalize()
    with Model.from_file(path) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], expected(), rtol=1e-5)


def test_bad_external_weight_value_is_refused(ge):
    with pytest.raises(GeError, match=r"ge\.externalWeight"):
        GeSession({"ge.externalWeight": "yes"})


def _saved_with_external(ge_tmp, mode="1"):
    s = compile_in_session({"ge.externalWeight": mode})
    path = save_model(str(ge_tmp / "m"), s.get_compiled_model(1))
    s.close()
    return path, ge_tmp / "weight"


def test_altered_weight_file_is_refused(ge, work_path, tmp_path):
    path, folder = _saved_with_external(tmp_path)
    victim = folder / sorted(os.listdir(folder))[0]
    raw = bytearray(victim.read_bytes())
    raw[0] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(GeError, match="sha256"):
        Model.from_file(path)


def test_truncated_weight_file_is_refused(ge, work_path, tmp_path):
    path, folder = _saved_with_external(tmp_path, mode="2")
    victim = folder / os.listdir(folder)[0]
    victim.write_bytes(victim.read_bytes()[:10])
    with pytest.raises(GeError, match="truncated"):
        Model.from_file(path)


def test_missing_weight_file_names_every_place_looked(ge, work_path, tmp_path):
    path, folder = _saved_with_external(tmp_path)
    missing = sorted(os.listdir(folder))[0]
    os.unlink(folder / missing)
    with pytest.raises(GeError) as info:
        Model.from_file(path)
    assert missing in str(info.value) and str(folder) in str(info.value)
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(GeError, match="elsewhere"):
        Model.from_file(path, weight_dir=str(other))


def test_weight_dir_argument_wins(ge, work_path, tmp_path):
    path, folder = _saved_with_external(tmp_path)
    moved = tmp_path / "moved"
    os.rename(folder, moved)
    with Model.from_file(path, weight_dir=str(moved)) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], expected(), rtol=1e-5)


@pytest.mark.parametrize("name", ["../evil", "sub/evil", "..", "", "/etc/passwd"])
def test_weight_names_that_leave_the_folder_are_refused(name, tmp_path):
    from openge.graph import DataType
    from openge.om.plan import ExternalWeight
    from openge.runtime.weights import MappedFiles, resolve_weight

    w = ExternalWeight(name, 0, 4, "", DataType.DT_FLOAT, (1,))
    with pytest.raises(GeError, match="not a plain file name"):
        resolve_weight(w, [str(tmp_path)], MappedFiles())


def test_symlink_escaping_the_folder_is_refused(tmp_path):
    from openge.graph import DataType
    from openge.om.plan import ExternalWeight
    from openge.runtime.weights import MappedFiles, resolve_weight

    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.zeros(1, np.float32).tobytes())
    folder = tmp_path / "weight"
    folder.mkdir()
    os.symlink(outside, folder / "weight_x")
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()  # even with the right digest
    w = ExternalWeight("weight_x", 0, 4, digest, DataType.DT_FLOAT, (1,))
    with pytest.raises(GeError, match="leaves the folder"):
        resolve_weight(w, [str(folder)], MappedFiles())
