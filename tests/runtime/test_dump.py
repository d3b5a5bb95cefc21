"""Data dump: one file per op execution in GE's layout and binary format (or .npy), the
configuration from options and acl.json, and the reader's checks on untrusted files."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.errors import GeError
from openge.runtime import Model
from openge.runtime.dump import DumpConfig, parse_steps
from openge.runtime.dump_file import read_dump_file
from tests.compiler.models import cnn

# toolkit.dump.DumpData field numbers (GE's dump_task.proto), checked independently of the
# generated module: (message, field) → number.
SCHEMA = {
    ("DumpData", "version"): 1,
    ("DumpData", "dump_time"): 2,
    ("DumpData", "output"): 3,
    ("DumpData", "input"): 4,
    ("DumpData", "buffer"): 5,
    ("DumpData", "op_name"): 6,
    ("DumpData", "attr"): 7,
    ("OpOutput", "data_type"): 1,
    ("OpOutput", "format"): 2,
    ("OpOutput", "shape"): 3,
    ("OpOutput", "original_op"): 4,
    ("OpOutput", "data"): 5,
    ("OpOutput", "size"): 6,
    ("OpOutput", "original_shape"): 7,
    ("OpInput", "data_type"): 1,
    ("OpInput", "format"): 2,
    ("OpInput", "shape"): 3,
    ("OpInput", "data"): 4,
    ("OpInput", "size"): 5,
    ("OpInput", "original_shape"): 6,
}
# dump element types → NumPy (independent table)
DUMP_DTYPES = {1: np.float32, 2: np.float16, 3: np.int8, 4: np.uint8, 7: np.int32, 8: np.int64}


def read_by_size_rule(path) -> tuple[bytes, int, object]:
    """A dump file's bytes, header length and DumpData header, parsed independently of
    openge's reader; asserts GE's rule size = 8 + header_len + Σ tensor sizes."""
    from openge.runtime import dump_data_pb2 as pb

    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = pb.DumpData.FromString(raw[8 : 8 + hlen])
    sizes = [e.size for e in header.input] + [e.size for e in header.output]
    assert len(raw) == 8 + hlen + sum(sizes)
    return raw, hlen, header


def _files(root) -> list[str]:
    return sorted(
        os.path.join(d, f) for d, _, names in os.walk(root) for f in names if not f.endswith("/")
    )


def _model(options=None) -> tuple[Model, list[np.ndarray]]:
    b = cnn()
    return Model(compile_graph(b.g, options or {})), b.feeds()


def test_schema_field_numbers_are_ge_s():
    from openge.runtime import dump_data_pb2 as pb

    for (msg, field), number in SCHEMA.items():
        assert getattr(pb, msg).DESCRIPTOR.fields_by_name[field].number == number


def test_one_file_per_op_and_every_file_follows_the_size_rule(tmp_path):
    model, feeds = _model()
    model.set_dump(DumpConfig(path=str(tmp_path), mode="all"), model_id=7)
    _, values = model.execute(feeds, intermediates=True)
    files = _files(tmp_path)
    assert len(files) == len(model.compiled.tasks)
    stamp_dir = os.listdir(tmp_path)
    assert len(stamp_dir) == 1 and len(stamp_dir[0]) == 14 and stamp_dir[0].isdigit()
    folder = os.path.join(tmp_path, stamp_dir[0], "0", model.name, "7", "0")
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(f) for f in files)
    names = {t.name: t for t in model.compiled.tasks}
    for path in files:
        raw, hlen, header = read_by_size_rule(path)
        assert all(e.data == b"" for e in [*header.input, *header.output])
        op_type, rest = os.path.basename(path).split(".", 1)
        op_name, task_id, stream_id, stamp = rest.rsplit(".", 3)
        assert len(stamp) == 16 and stream_id == "0"
        task = names[op_name]
        assert task.op_type == op_type and model.compiled.tasks[int(task_id)] is task
        assert header.op_name == op_name and len(header.output) == len(task.outputs)
        # the raw output bytes are the task's output values
        offset = 8 + hlen + sum(e.size for e in header.input)
        for k, e in enumerate(header.output):
            value = np.frombuffer(
                raw,
                DUMP_DTYPES[e.data_type],
                offset=offset,
                count=e.size // np.dtype(DUMP_DTYPES[e.data_type]).itemsize,
            )
            np.testing.assert_array_equal(
                value.reshape(tuple(e.shape.dim)), values[f"{op_name}:{k}"]
            )
            offset += e.size
        parsed = read_dump_file(path)
        assert len(parsed.outputs) == len(task.outputs)


def test_output_mode_has_no_inputs_and_input_mode_no_outputs(tmp_path):
    for mode in ("output", "input"):
        model, feeds = _model()
        model.set_dump(DumpConfig(path=str(tmp_path / mode), mode=mode))
        model.execute(feeds)
        for path in _files(tmp_path / mode):
            d = read_dump_file(path)
            assert (len(d.inputs) == 0) == (mode == "output")
            assert (len(d.outputs) == 0) == (mode == "input")


def test_steps_and_layers_select_what_is_dumped(tmp_path):
    model, feeds = _model()
    first = model.compiled.tasks[0].name
    model.set_dump(
        DumpConfig(path=str(tmp_path), steps=parse_steps("1|3-4", "s"), layers=frozenset({first}))
    )
    for _ in range(6):
        model.execute(feeds)
    files = _files(tmp_path)
    steps = sorted(int(os.path.basename(os.path.dirname(f))) for f in files)
    assert steps == [1, 3, 4]
    assert all(f".{first}." in os.path.basename(f) for f in files)


def test_npy_golden_files(tmp_path):
    model, feeds = _model()
    model.set_dump(DumpConfig(path=str(tmp_path), format="npy"))
    _, values = model.execute(feeds, intermediates=True)
    files = _files(tmp_path)
    assert len(files) == sum(len(t.outputs) for t in model.compiled.tasks)
    for t in model.compiled.tasks:
        source = (t.attrs.get("_datadump_original_op_names") or [t.name])[-1]
        for k in range(len(t.outputs)):
            match = [f for f in files if os.path.basename(f).startswith(f"{source}.{k}.")]
            assert len(match) == 1 and match[0].endswith(".npy")
            np.testing.assert_array_equal(np.load(match[0]), values[f"{t.name}:{k}"])


def test_fused_tasks_name_their_source_ops(tmp_path):
    model, feeds = _model()
    fused = [t for t in model.compiled.tasks if t.op_type.startswith("Fused")]
    assert fused
    for t in fused:
        assert len(t.attrs["_datadump_original_op_names"]) >= 2
    model.set_dump(DumpConfig(path=str(tmp_path)))
    model.execute(feeds)
    originals = {read_dump_file(f).outputs[0].original_op for f in _files(tmp_path)}
    relus = {n.name for n in cnn().g if n.op_type in ("Relu", "Relu6")}
    assert relus <= originals  # conv + bias + relu tasks are filed under the source relu


def test_from_options_and_run_graph(tmp_path):
    from openge.ge_global import GeApi
    from openge.session import GeSession

    opts = {
        "ge.exec.enableDump": "1",
        "ge.exec.dumpPath": str(tmp_path),
        "ge.exec.dumpMode": "output",
        "ge.exec.dumpStep": "0",
    }
    b = cnn()
    GeApi.ge_initialize({})
    try:
        with GeSession(opts) as s:
            s.add_graph(3, b.g)
            s.run_graph(3, b.feeds())
            s.run_graph(3, b.feeds())
            files = _files(tmp_path)
            assert files and all(os.sep + "3" + os.sep + "0" + os.sep in f for f in files)
    finally:
        GeApi.ge_finalize()
    assert DumpConfig.from_options({"ge.exec.enableDump": "0"}) is None
    with pytest.raises(GeError, match="dumpPath"):
        DumpConfig.from_options({"ge.exec.enableDump": "1"})


def test_from_acl_json():
    cfg = DumpConfig.from_acl_json(
        {
            "dump_list": [{"model_name": "net", "layer": ["conv1"]}, {"model_name": "other"}],
            "dump_path": "/out",
            "dump_mode": "all",
            "dump_op_switch": "off",
            "dump_step": "0|2-3",
        }
    )
    assert cfg.path == "/out" and cfg.mode == "all"
    assert [cfg.wants_step(i) for i in range(5)] == [True, False, True, True, False]
    assert cfg.layers_for("net") == (True, frozenset({"conv1"}))
    assert cfg.layers_for("other") == (True, None)
    assert cfg.layers_for("third") == (False, None)
    assert DumpConfig.from_acl_json({}) is None
    for bad in (
        {"dump_mode": "all"},
        {"dump_path": "/o", "dump_mode": "some"},
        {"dump_path": "/o", "dump_step": "x"},
        {"dump_path": "/o", "dump_list": {}},
        {"dump_path": "/o", "dump_data": "stats"},
    ):
        with pytest.raises(GeError):
            DumpConfig.from_acl_json(bad)


def test_dump_off_costs_nothing_and_changes_nothing(tmp_path):
    model, feeds = _model()
    before = [o.copy() for o in model.execute(feeds)]
    model.set_dump(DumpConfig(path=str(tmp_path)))
    during = model.execute(feeds)
    model.set_dump(None)
    after = model.execute(feeds)
    for a, b, c in zip(before, during, after):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    assert len(os.listdir(tmp_path)) == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:4],
        lambda raw: struct.pack("<Q", 1 << 40) + raw[8:],
        lambda raw: raw[:-1],
        lambda raw: raw + b"x",
        lambda raw: raw[:8] + b"\xff" * (len(raw) - 8),
    ],
)
def test_broken_files_are_ge_errors(tmp_path, mangle):
    model, feeds = _model()
    model.set_dump(DumpConfig(path=str(tmp_path / "d")))
    model.execute(feeds)
    path = _files(tmp_path / "d")[0]
    bad = tmp_path / "bad.0.0.1"
    with open(path, "rb") as f:
        bad.write_bytes(mangle(f.read()))
    with pytest.raises(GeError):
        read_dump_file(str(bad))


def test_dump_options_are_validated():
    from openge.compiler.options import validate_options

    ok = {
        "ge.exec.enableDump": "1",
        "ge.exec.dumpPath": "/tmp/x",
        "ge.exec.dumpMode": "all",
        "ge.exec.dumpStep": "0|2-4",
        "ge.exec.dumpFormat": "npy",
    }
    assert validate_options(ok, "session") == ok
    for key, bad in (
        ("ge.exec.enableDump", "yes"),
        ("ge.exec.dumpMode", "both"),
        ("ge.exec.dumpStep", "1,2"),
        ("ge.exec.dumpData", "stats"),
    ):
        with pytest.raises(GeError, match=key):
            validate_options({key: bad}, "session")
    cfg = DumpConfig.from_options({**ok, "ge.exec.dumpLayer": "a b"})
    assert cfg.layers == frozenset({"a", "b"}) and cfg.format == "npy"
    assert cfg.steps == ((0, 0), (2, 4))
