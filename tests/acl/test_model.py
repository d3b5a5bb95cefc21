"""acl.mdl on models made by ``openge atc``: descriptions, execution through device buffers
(compared with ONNX Runtime), ATC's boundary flags, and misuse answered with codes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import openge.acl as acl
from tests.acl.conftest import INPUT, SHAPE

# one xdist worker runs this file: with an empty kernel cache (CI) two workers would each
# compile the one model's kernels at once (20-50 s each)
pytestmark = pytest.mark.xdist_group("acl_model")
H2D, D2H = 1, 2


def _dataset(sizes):
    ds = acl.mdl.create_dataset()
    ptrs = []
    for size in sizes:
        ptr, ret = acl.rt.malloc(size, 0)
        assert ret == 0
        ptrs.append(ptr)
        assert acl.mdl.add_dataset_buffer(ds, acl.create_data_buffer(ptr, size))[1] == 0
    return ds, ptrs


def _load(path):
    model_id, ret = acl.mdl.load_from_file(path)
    assert ret == 0
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, model_id) == 0
    return model_id, desc


def _run(model_id, desc, x):
    n_in, n_out = acl.mdl.get_num_inputs(desc), acl.mdl.get_num_outputs(desc)
    ins, in_ptrs = _dataset([acl.mdl.get_input_size_by_index(desc, i) for i in range(n_in)])
    outs, out_ptrs = _dataset([acl.mdl.get_output_size_by_index(desc, i) for i in range(n_out)])
    data = x.tobytes()
    assert acl.rt.memcpy(in_ptrs[0], len(data), acl.util.bytes_to_ptr(data), len(data), H2D) == 0
    assert acl.mdl.execute(model_id, ins, outs) == 0
    results = []
    for i, ptr in enumerate(out_ptrs):
        dims, ret = acl.mdl.get_cur_output_dims(desc, i)
        assert ret == 0
        dtype = {0: np.float32, 1: np.float16}[acl.mdl.get_output_data_type(desc, i)]
        raw = acl.util.ptr_to_bytes(ptr, acl.mdl.get_output_size_by_index(desc, i))
        results.append(np.frombuffer(raw, dtype).reshape(dims["dims"]))
    return results


def test_describe_and_execute_match_onnxruntime(models, reference):
    assert acl.init() == 0
    assert acl.rt.set_device(0) == 0
    model_id, desc = _load(models["om"])
    assert acl.mdl.get_input_dims(desc, 0) == (
        {"name": INPUT, "dimCount": 4, "dims": list(SHAPE)},
        0,
    )
    assert acl.mdl.get_input_data_type(desc, 0) == 0  # ACL_FLOAT
    assert acl.mdl.get_input_format(desc, 0) == 0  # NCHW (--input_format default)
    assert acl.mdl.get_input_size_by_index(desc, 0) == 4 * int(np.prod(SHAPE))
    assert acl.mdl.get_output_name_by_index(desc, 0) == "prob"
    assert acl.mdl.get_input_index_by_name(desc, INPUT) == (0, 0)
    assert acl.mdl.get_input_index_by_name(desc, "ascend_mbatch_shape_data")[1] != 0
    assert acl.mdl.get_dynamic_batch(desc) == ({"batchCount": 0, "batch": []}, 0)
    x = np.random.default_rng(1).normal(size=SHAPE).astype(np.float32)
    (got,) = _run(model_id, desc, x)
    np.testing.assert_allclose(got, reference(x)[0], rtol=1e-5, atol=1e-6)
    assert acl.mdl.unload(model_id) == 0
    assert acl.mdl.destroy_desc(desc) == 0


def test_load_from_mem_and_with_mem(models, reference):
    assert acl.init() == 0
    with open(models["om"], "rb") as f:
        blob = f.read()
    model_id, ret = acl.mdl.load_from_mem(acl.util.bytes_to_ptr(blob), len(blob))
    assert ret == 0
    work, weight, ret = acl.mdl.query_size(models["om"])
    assert ret == 0 and weight > 0
    wptr, _ = acl.rt.malloc(max(work, 1), 0)
    gptr, _ = acl.rt.malloc(weight, 0)
    model2, ret = acl.mdl.load_from_file_with_mem(models["om"], wptr, max(work, 1), gptr, weight)
    assert ret == 0
    x = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32)
    for mid in (model_id, model2):
        desc = acl.mdl.create_desc()
        acl.mdl.get_desc(desc, mid)
        np.testing.assert_allclose(_run(mid, desc, x)[0], reference(x)[0], rtol=1e-5, atol=1e-6)


def test_fp16_input_and_fp32_output(models, reference):
    assert acl.init() == 0
    model_id, desc = _load(models["om_fp16"])
    assert acl.mdl.get_input_data_type(desc, 0) == 1  # ACL_FLOAT16
    assert acl.mdl.get_output_data_type(desc, 0) == 0  # ACL_FLOAT
    assert acl.mdl.get_input_size_by_index(desc, 0) == 2 * int(np.prod(SHAPE))
    x = np.random.default_rng(3).normal(size=SHAPE).astype(np.float16)
    (got,) = _run(model_id, desc, x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference(x.astype(np.float32))[0], rtol=1e-3, atol=1e-4)


def test_out_nodes_expose_an_intermediate_tensor(models, reference, tmp_path):
    src = onnx.load(models["onnx"])
    relu = onnx.helper.make_tensor_value_info("relu", onnx.TensorProto.FLOAT, None)
    src.graph.output.insert(0, relu)
    path = str(tmp_path / "with_relu.onnx")
    onnx.save(src, path)
    assert acl.init() == 0
    model_id, desc = _load(models["om_out"])
    assert acl.mdl.get_num_outputs(desc) == 2
    assert acl.mdl.get_output_name_by_index(desc, 0) == "relu1:0"
    assert acl.mdl.get_output_data_type(desc, 0) == 1  # "relu1:0:FP16"
    assert acl.mdl.get_output_data_type(desc, 1) == 0
    x = np.random.default_rng(4).normal(size=SHAPE).astype(np.float32)
    relu_out, prob = _run(model_id, desc, x)
    ref_relu, ref_prob = reference(x, ["relu", "prob"], path=path)
    np.testing.assert_allclose(relu_out, ref_relu.astype(np.float16), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(prob, ref_prob, rtol=1e-5, atol=1e-6)


def test_misuse_returns_codes(models):
    x_size = 4 * int(np.prod(SHAPE))
    assert acl.mdl.execute(1, 2, 3) == 100001  # before init
    assert acl.mdl.load_from_file(models["om"]) == (0, 100001)
    assert acl.init() == 0
    assert acl.mdl.load_from_file("/nonexistent/model.om")[1] != 0
    model_id, desc = _load(models["om"])
    ins, in_ptrs = _dataset([x_size])
    outs, _ = _dataset([40])
    two, _ = _dataset([x_size, x_size])
    small, _ = _dataset([x_size - 4])
    small_out, _ = _dataset([36])
    assert acl.mdl.execute(model_id, two, outs) == 100017  # wrong input count
    assert acl.mdl.execute(model_id, small, outs) == 100017  # input buffer too small
    assert acl.mdl.execute(model_id, ins, two) == 100018  # wrong output count
    assert acl.mdl.execute(model_id, ins, small_out) == 100018  # output buffer too small
    assert acl.mdl.execute(model_id, ins, outs) == 0
    assert acl.rt.memcpy(in_ptrs[0], x_size + 4, in_ptrs[0], x_size + 4, 3) == 100000
    assert acl.mdl.set_dynamic_batch_size(model_id, ins, 0, 2) == 100019  # not dynamic
    assert acl.mdl.unload(model_id) == 0
    assert acl.mdl.execute(model_id, ins, outs) == 100011  # use after unload
    assert acl.mdl.unload(model_id) == 100011
    assert acl.mdl.get_desc(desc, model_id) == 100011
    assert acl.mdl.execute(model_id + 1000, ins, outs) == 100011


def test_finalize_unloads(models):
    assert acl.init() == 0
    model_id, _ = _load(models["om"])
    assert acl.finalize() == 0
    assert acl.init() == 0
    assert acl.mdl.unload(model_id) == 100011


@pytest.mark.parametrize("flag", ["--output_type=FP64", "--out_nodes=nosuch:0"])
def test_bad_boundary_flags_fail_with_a_message(models, tmp_path, flag, capsys):
    from openge.cli.main import main

    assert main(["atc", f"--model={models['onnx']}", f"--output={tmp_path}/x", flag]) != 0
    err = capsys.readouterr().err
    assert "output_type" in err or "out_nodes" in err


def test_tensor_descs_and_dataset_dims(models, reference):
    desc = acl.create_tensor_desc(0, list(SHAPE), 0)
    assert acl.get_tensor_desc_num_dims(desc) == 4
    assert acl.get_tensor_desc_dim_v2(desc, 1) == (3, 0)
    assert acl.get_tensor_desc_dim_v2(desc, 4)[1] == 100000
    assert acl.get_tensor_desc_size(desc) == 4 * int(np.prod(SHAPE))
    assert acl.get_tensor_desc_element_count(desc) == int(np.prod(SHAPE))
    acl.set_tensor_desc_name(desc, "images")
    assert acl.get_tensor_desc_name(desc) == "images"
    assert acl.init() == 0
    model_id, _ = _load(models["om"])
    x_size = 4 * int(np.prod(SHAPE))
    ins, _ = _dataset([x_size])
    outs, _ = _dataset([40])
    assert acl.mdl.set_dataset_tensor_desc(ins, desc, 0) == 0
    assert acl.mdl.get_dataset_tensor_desc(ins, 0) == desc
    assert acl.mdl.execute(model_id, ins, outs) == 0
    wrong = acl.create_tensor_desc(0, [1, 3, 8, 8], 0)
    assert acl.mdl.set_dataset_tensor_desc(ins, wrong, 0) == 0
    assert acl.mdl.execute(model_id, ins, outs) == 145021  # a static model: shape mismatch
    acl.destroy_tensor_desc(desc)
    assert acl.get_tensor_desc_num_dims(desc) == 0


def test_dynamic_output_dims_are_recorded_in_the_dataset():
    """A model whose outputs have dynamic dims: results are copied into the buffers and their
    actual dims recorded as the output dataset's tensor descs."""
    from openge.acl._models import MODELS, ModelEntry
    from openge.graph import DataType
    from openge.om.plan import IODesc

    class Stub:
        def __init__(self):
            self.inputs = [IODesc("x", DataType.DT_FLOAT, (2,))]
            self.outputs = [IODesc("y", DataType.DT_FLOAT, (-1,))]

        def execute(self, inputs, outputs=None):
            assert outputs is None
            return [np.concatenate([inputs[0], inputs[0] * 2])]

        def close(self):
            pass

    assert acl.init() == 0
    model_id = MODELS.add(ModelEntry(Stub()))  # type: ignore[arg-type]
    ins, (in_ptr,) = _dataset([8])
    outs, (out_ptr,) = _dataset([64])
    x = np.array([1.5, -2.0], np.float32)
    assert acl.rt.memcpy(in_ptr, 8, x.ctypes.data, 8, H2D) == 0
    assert acl.mdl.execute(model_id, ins, outs) == 0
    tdesc = acl.mdl.get_dataset_tensor_desc(outs, 0)
    assert acl.get_tensor_desc_dim_v2(tdesc, 0) == (4, 0)
    got = np.frombuffer(acl.util.ptr_to_bytes(out_ptr, 16), np.float32)
    np.testing.assert_array_equal(got, [1.5, -2.0, 3.0, -4.0])
    small, _ = _dataset([8])
    assert acl.mdl.execute(model_id, ins, small) == 100018
    assert acl.mdl.unload(model_id) == 0


def test_gear_model_through_the_runtime_gear_methods():
    """A dynamic-batch model as the runtime's gear methods present it (stub): the facade
    reports the gears, writes the batch through set_dynamic_batch_size, runs the inputs at
    that gear's shape and records the outputs' actual dims."""
    from dataclasses import dataclass

    from openge.acl._models import MODELS, ModelEntry
    from openge.graph import DataType

    @dataclass
    class Desc:
        name: str
        dtype: DataType
        shape: tuple
        range: tuple
        format: int = 2

    class GearStub:
        def __init__(self):
            self.inputs = [
                Desc("x", DataType.DT_FLOAT, (-1, 2), ((1, 4), (2, 2))),
                Desc("ascend_mbatch_shape_data", DataType.DT_INT32, (1,), ((1, 1),)),
            ]
            self.outputs = [Desc("y", DataType.DT_FLOAT, (-1, 2), ((1, 4), (2, 2)))]
            self.seen = []

        def get_dynamic_batch(self):
            return [1, 2, 4]

        def set_dynamic_batch_size(self, inputs, index, batch):
            inputs[index][...] = batch

        def execute(self, inputs, outputs=None):
            self.seen.append(inputs[0].shape)
            return [inputs[0] * 2]

        def close(self):
            pass

    assert acl.init() == 0
    stub = GearStub()
    model_id = MODELS.add(ModelEntry(stub))  # type: ignore[arg-type]
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, model_id) == 0
    assert acl.mdl.get_dynamic_batch(desc) == ({"batchCount": 3, "batch": [1, 2, 4]}, 0)
    assert acl.mdl.get_input_size_by_index(desc, 0) == 4 * 2 * 4  # the largest gear
    index, ret = acl.mdl.get_input_index_by_name(desc, "ascend_mbatch_shape_data")
    assert (index, ret) == (1, 0)
    ins, (x_ptr, _) = _dataset([32, 4])
    outs, (y_ptr,) = _dataset([32])
    x = np.arange(4, dtype=np.float32)
    assert acl.rt.memcpy(x_ptr, 32, x.ctypes.data, 16, H2D) == 0
    assert acl.mdl.set_dynamic_batch_size(model_id, ins, index, 2) == 0
    assert acl.mdl.execute(model_id, ins, outs) == 0
    assert stub.seen == [(2, 2)]
    tdesc = acl.mdl.get_dataset_tensor_desc(outs, 0)
    assert [acl.get_tensor_desc_dim(tdesc, i) for i in range(2)] == [2, 2]
    np.testing.assert_array_equal(
        np.frombuffer(acl.util.ptr_to_bytes(y_ptr, 16), np.float32), x * 2
    )
    assert acl.mdl.unload(model_id) == 0


def test_input_format_flag_sets_the_reported_format(models, tmp_path):
    from tests.acl.conftest import atc

    om = atc(models["onnx"], str(tmp_path / "nd"), "--input_format=ND")
    assert acl.init() == 0
    _, desc = _load(om)
    assert acl.mdl.get_input_format(desc, 0) == 2  # ACL_FORMAT_ND
    _, desc = _load(models["om"])
    assert acl.mdl.get_input_format(desc, 0) == 0  # ATC's default: NCHW


def test_buffers_over_host_memory(models, reference):
    """Data buffers may point at any process memory (a bytes object, a NumPy array)."""
    assert acl.init() == 0
    model_id, _ = _load(models["om"])
    x = np.random.default_rng(9).normal(size=SHAPE).astype(np.float32)
    data = x.tobytes()
    out = np.zeros((1, 10), np.float32)
    ins = acl.mdl.create_dataset()
    acl.mdl.add_dataset_buffer(ins, acl.create_data_buffer(acl.util.bytes_to_ptr(data), len(data)))
    outs = acl.mdl.create_dataset()
    acl.mdl.add_dataset_buffer(outs, acl.create_data_buffer(out.ctypes.data, out.nbytes))
    assert acl.mdl.execute(model_id, ins, outs) == 0
    np.testing.assert_allclose(out, reference(x)[0], rtol=1e-5, atol=1e-6)
