"""Nothing is read, moved or copied outside the folders the contract names (DESIGN §1.3)."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.graph import DataType
from openge.offline_compile import save_model
from openge.om.writer import serialize
from openge.runtime import Model
from openge.session import GeSession
from tests.offline_compile.test_workflow import B, W, linear_graph, x_input
from tests.security.craft import edit, seed, task_list


def _reference(x: np.ndarray) -> np.ndarray:
    return x @ W + B


def _external_om(folder, mode="1") -> tuple[str, str]:
    """An .om in ``folder`` whose weights are files in ``folder/weight`` (as atc writes it)."""
    weight = os.path.join(folder, "weight")
    compiled = compile_graph(
        linear_graph(), {"ge.externalWeight": mode, "ge.externalWeightDir": weight}
    )
    path = os.path.join(folder, "m.om")
    with open(path, "wb") as f:
        f.write(serialize(compiled, online=False))
    return path, weight


def test_a_file_records_etc_but_is_looked_up_only_next_to_it(tmp_path):
    """The model names /etc and passwd, with the right sha256 even: never read."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd").write_bytes(b"root:x:0:0")
    digest = hashlib.sha256(b"root:x:0:0").hexdigest()

    def add(tl):
        w = tl.external_weights.add()
        w.location, w.directory, w.sha256 = "passwd", str(secret), digest
        w.length, w.dtype = 10, int(DataType.DT_UINT8)
        w.shape.append(10)

    om = tmp_path / "om"
    om.mkdir()
    path = om / "m.om"
    path.write_bytes(edit(seed(), tasks=add))
    with pytest.raises(GeError) as info:
        Model.from_file(str(path))
    text = str(info.value)
    assert "not found" in text and str(om / "weight") in text and "does not search" in text
    with pytest.raises(GeError, match="not found"):
        Model.from_bytes(path.read_bytes())  # a buffer: the folder was not compiled here
    # The caller may choose the folder explicitly.
    with Model.from_file(str(path), weight_dir=str(secret)) as model:
        assert model.compiled.external_weights[0].location == "passwd"


def test_a_copied_om_never_falls_back_to_its_original_folder(tmp_path):
    first = tmp_path / "a"
    first.mkdir()
    path, weight = _external_om(str(first))
    with Model.from_file(path) as model:  # next to its weights: loads
        np.testing.assert_allclose(model.execute([x_input()])[0], _reference(x_input()), 1e-5)
    second = tmp_path / "b"
    second.mkdir()
    shutil.copy(path, second / "m.om")
    assert os.listdir(weight)  # the original weights are still there...
    with pytest.raises(GeError) as info:  # ...but the copy does not read them
        Model.from_file(str(second / "m.om"))
    assert str(second / "weight") in str(info.value)


def test_a_deleted_weight_file_is_refused_not_found_elsewhere(tmp_path):
    path, weight = _external_om(str(tmp_path))
    victim = sorted(os.listdir(weight))[0]
    os.unlink(os.path.join(weight, victim))
    with pytest.raises(GeError, match=victim):
        Model.from_file(path)


def test_a_buffer_reads_its_recorded_folder_only_when_compiled_in_this_process(tmp_path):
    compiled_here = tmp_path / "here"
    compiled = compile_graph(
        linear_graph(), {"ge.externalWeight": "1", "ge.externalWeightDir": str(compiled_here)}
    )
    buf = serialize(compiled, online=True)
    with Model.from_bytes(buf) as model:  # this process wrote that folder: trusted
        np.testing.assert_allclose(model.execute([x_input()])[0], _reference(x_input()), 1e-5)
    # The same bytes naming another folder holding the same files: not read.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(compiled_here, elsewhere)

    def move(tl):
        for w in tl.external_weights:
            w.directory = str(elsewhere)

    moved = edit(buf, tasks=move)
    with pytest.raises(GeError, match="does not search"):
        Model.from_bytes(moved)
    with Model.from_bytes(moved, weight_dir=str(elsewhere)) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], _reference(x_input()), 1e-5)


@pytest.mark.parametrize("mode", ["1", "2"])
def test_a_weight_without_sha256_is_refused(tmp_path, mode):
    path, _ = _external_om(str(tmp_path), mode)

    def strip(tl):
        tl.external_weights[0].sha256 = ""

    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(edit(data, tasks=strip))
    with pytest.raises(GeError, match="no valid sha256"):
        Model.from_file(path)


def test_a_weight_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    path, weight = _external_om(str(tmp_path))
    victim = os.path.join(weight, sorted(os.listdir(weight))[0])
    os.unlink(victim)
    os.mkfifo(victim)
    with pytest.raises(GeError, match="FIFO"):
        Model.from_file(path)


def test_a_weight_link_leaving_the_folder_is_refused(tmp_path):
    path, weight = _external_om(str(tmp_path))
    victim = os.path.join(weight, sorted(os.listdir(weight))[0])
    outside = tmp_path / "outside.bin"
    shutil.move(victim, outside)
    os.symlink(outside, victim)
    with pytest.raises(GeError, match="leaves the folder"):
        Model.from_file(path)


# ----- save_model ---------------------------------------------------------------------------


def test_save_model_never_moves_a_foreign_file(tmp_path):
    """Issue 15 case 2: a buffer naming /elsewhere/tmp_weight_1_1/precious.db."""
    foreign = tmp_path / "elsewhere" / "tmp_weight_1_1"
    foreign.mkdir(parents=True)
    precious = foreign / "precious.db"
    precious.write_bytes(b"precious data")
    digest = hashlib.sha256(b"precious data").hexdigest()

    def add(tl):
        w = tl.external_weights.add()
        w.location, w.directory, w.sha256 = "precious.db", str(foreign), digest
        w.length, w.dtype = 13, int(DataType.DT_UINT8)
        w.shape.append(13)

    with pytest.raises(GeError, match="will not move or copy"):
        save_model(str(tmp_path / "out" / "m"), edit(seed(), tasks=add))
    assert precious.read_bytes() == b"precious data"
    assert not (tmp_path / "out" / "weight" / "precious.db").exists()


def test_save_model_refuses_a_link_in_its_own_temp_folder(ge, work_path, tmp_path):
    s = GeSession({"ge.externalWeight": "1"})
    s.add_graph(1, linear_graph())
    s.compile_graph(1)
    buf = s.get_compiled_model(1)
    victim = s.get_compiled_graph_summary(1).external_weight_paths[0]
    outside = tmp_path / "keep.bin"
    shutil.move(victim, outside)
    os.symlink(outside, victim)
    with pytest.raises(GeError, match="not a regular file"):
        save_model(str(tmp_path / "out" / "m"), buf)
    assert outside.exists() and os.path.islink(victim)
    s.close()


def test_save_model_copies_from_external_weight_dir_and_keeps_the_originals(tmp_path):
    kept = tmp_path / "kept"
    compiled = compile_graph(
        linear_graph(), {"ge.externalWeight": "2", "ge.externalWeightDir": str(kept)}
    )
    before = sorted(os.listdir(kept))
    path = save_model(str(tmp_path / "out" / "m"), serialize(compiled, online=True))
    assert sorted(os.listdir(kept)) == before  # openge never deletes ge.externalWeightDir files
    assert sorted(os.listdir(tmp_path / "out" / "weight")) == before
    shutil.rmtree(kept)  # the saved model is self-contained
    with Model.from_file(path) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], _reference(x_input()), 1e-5)


def test_save_model_accepts_weights_the_user_put_next_to_the_om(tmp_path):
    """A buffer from elsewhere: its files are used when already in <om dir>/weight/."""
    source = tmp_path / "src"
    compiled = compile_graph(
        linear_graph(), {"ge.externalWeight": "2", "ge.externalWeightDir": str(source)}
    )
    data = serialize(compiled, online=True)
    name = task_list(data).external_weights[0].location

    def move(tl):
        for w in tl.external_weights:
            w.directory = "/nonexistent/somewhere"

    foreign = edit(data, tasks=move)
    with pytest.raises(GeError, match="Copy the file"):
        save_model(str(tmp_path / "out" / "m"), foreign)
    (tmp_path / "out" / "weight").mkdir(parents=True)
    shutil.copy(source / name, tmp_path / "out" / "weight" / name)
    path = save_model(str(tmp_path / "out" / "m"), foreign)
    with Model.from_file(path) as model:
        np.testing.assert_allclose(model.execute([x_input()])[0], _reference(x_input()), 1e-5)
