"""Dynamic AIPP: the ``ascend_dynamic_aipp_data`` input filled by ``acl.mdl.set_aipp_*`` /
``set_input_aipp``, checked against the NumPy implementation of GE's formulas."""

from __future__ import annotations

import numpy as np

import openge.acl as acl
from tests.compiler.test_aipp import _compile, _csc, _normalise_and_pad

CFG = "aipp_op {\n  aipp_mode: dynamic\n  max_src_image_size: 1000\n}\n"


def test_dynamic_aipp_rgb(tmp_path):
    om = _compile(tmp_path, CFG, 8, 8)
    img = np.random.default_rng(5).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    assert acl.init() == 0
    model_id, ret = acl.mdl.load_from_file(om)
    assert ret == 0
    desc = acl.mdl.create_desc()
    acl.mdl.get_desc(desc, model_id)
    index, ret = acl.mdl.get_input_index_by_name(desc, "ascend_dynamic_aipp_data")
    assert (index, ret) == (1, 0)
    assert acl.mdl.get_input_size_by_index(desc, 1) == 64 + 96
    assert acl.mdl.get_aipp_type(model_id, 0) == (2, 1, 0)
    assert acl.mdl.get_aipp_type(model_id, 1) == (3, -1, 0)
    assert acl.mdl.get_first_aipp_info(model_id, 0)[1] == 145016
    ins = acl.mdl.create_dataset()
    ptrs = []
    for i in range(2):
        size = acl.mdl.get_input_size_by_index(desc, i)
        ptr, _ = acl.rt.malloc(size, 0)
        ptrs.append(ptr)
        acl.mdl.add_dataset_buffer(ins, acl.create_data_buffer(ptr, size))
    data = img.tobytes()
    assert acl.rt.memcpy(ptrs[0], 1000, acl.util.bytes_to_ptr(data), len(data), 1) == 0
    aipp = acl.mdl.create_aipp(1)
    m = [66, 129, 25, -38, -74, 112, 112, -94, -18]
    assert acl.mdl.set_aipp_input_format(aipp, 3) == 0
    assert acl.mdl.set_aipp_src_image_size(aipp, 10, 10) == 0
    assert acl.mdl.set_aipp_csc_params(aipp, 1, *m, 16, 128, 128, 0, 0, 0) == 0
    assert acl.mdl.set_aipp_rbuv_swap_switch(aipp, 1) == 0
    assert acl.mdl.set_aipp_crop_params(aipp, 1, 2, 1, 6, 8, 0) == 0
    assert acl.mdl.set_aipp_padding_params(aipp, 1, 0, 0, 1, 1, 0) == 0
    assert acl.mdl.set_aipp_dtc_pixel_mean(aipp, 100, 110, 120, 0, 0) == 0
    assert acl.mdl.set_aipp_dtc_pixel_min(aipp, 0.5, 1.25, -2.0, 0.0, 0) == 0
    assert acl.mdl.set_aipp_pixel_var_reci(aipp, 0.0171, 0.0175, 0.0174, 1.0, 0) == 0
    assert acl.mdl.set_aipp_crop_params(aipp, 1, 2, 1, 6, 8, 1) == 100000  # batch 1 of 1
    assert acl.mdl.set_aipp_scf_params(aipp, 1, 10, 10, 8, 8, 0) == 200001
    assert acl.mdl.set_input_aipp(model_id, ins, 0, aipp) == 100000  # not the aipp input
    assert acl.mdl.set_input_aipp(model_id, ins, 1, aipp) == 0
    out_ptr, _ = acl.rt.malloc(768, 0)
    outs = acl.mdl.create_dataset()
    acl.mdl.add_dataset_buffer(outs, acl.create_data_buffer(out_ptr, 768))
    assert acl.mdl.execute(model_id, ins, outs) == 0
    got = np.frombuffer(acl.util.ptr_to_bytes(out_ptr, 768), np.float32).reshape(1, 3, 8, 8)
    pix = img[:, :, ::-1][1:9, 2:8].astype(np.int64)
    yuv = np.clip(_csc(pix, np.reshape(m, (3, 3))) + np.array([16, 128, 128]), 0, 255)
    ref = _normalise_and_pad(
        yuv, [100, 110, 120], [0.5, 1.25, -2.0], [0.0171, 0.0175, 0.0174], (0, 0, 1, 1), 0.0, 8, 8
    )
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    # parameters that do not give the model's size: an error code, the interpreter lives on
    assert acl.mdl.set_aipp_crop_params(aipp, 1, 2, 1, 5, 8, 0) == 0
    assert acl.mdl.set_aipp_by_input_index(model_id, ins, 0, aipp) == 0
    assert acl.mdl.execute(model_id, ins, outs) != 0
    assert acl.mdl.destroy_aipp(aipp) == 0
    assert acl.mdl.destroy_aipp(aipp) == 100000
