"""A quick-start style pyACL script (own acl calls, own constants): usage MODEL INPUT.npy."""

import sys

import acl
import numpy as np

ACL_SUCCESS = 0
ACL_MEM_MALLOC_HUGE_FIRST = 0
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2


def check(what, ret):
    if ret != ACL_SUCCESS:
        raise RuntimeError(f"{what} failed ret={ret}")


def main(model_path, input_path):
    check("init", acl.init())
    check("set_device", acl.rt.set_device(0))
    context, ret = acl.rt.create_context(0)
    check("create_context", ret)
    model_id, ret = acl.mdl.load_from_file(model_path)
    check("load", ret)
    desc = acl.mdl.create_desc()
    check("get_desc", acl.mdl.get_desc(desc, model_id))
    datasets = []
    for count, size_of in (
        (acl.mdl.get_num_inputs(desc), acl.mdl.get_input_size_by_index),
        (acl.mdl.get_num_outputs(desc), acl.mdl.get_output_size_by_index),
    ):
        ds = acl.mdl.create_dataset()
        for i in range(count):
            size = size_of(desc, i)
            buf, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_HUGE_FIRST)
            check("malloc", ret)
            acl.mdl.add_dataset_buffer(ds, acl.create_data_buffer(buf, size))
        datasets.append(ds)
    inputs, outputs = datasets
    data = np.load(input_path).tobytes()
    in_buf = acl.mdl.get_dataset_buffer(inputs, 0)
    size = acl.get_data_buffer_size(in_buf)
    check(
        "memcpy",
        acl.rt.memcpy(
            acl.get_data_buffer_addr(in_buf),
            size,
            acl.util.bytes_to_ptr(data),
            size,
            ACL_MEMCPY_HOST_TO_DEVICE,
        ),
    )
    check("execute", acl.mdl.execute(model_id, inputs, outputs))
    out_buf = acl.mdl.get_dataset_buffer(outputs, 0)
    out_size = acl.get_data_buffer_size_v2(out_buf)
    host, ret = acl.rt.malloc_host(out_size)
    check("malloc_host", ret)
    check(
        "memcpy",
        acl.rt.memcpy(
            host, out_size, acl.get_data_buffer_addr(out_buf), out_size, ACL_MEMCPY_DEVICE_TO_HOST
        ),
    )
    dims, ret = acl.mdl.get_cur_output_dims(desc, 0)
    check("get_cur_output_dims", ret)
    vals = np.frombuffer(acl.util.ptr_to_bytes(host, out_size), np.float32).reshape(dims["dims"])
    print("top5:", vals.flatten().argsort()[-1:-6:-1].tolist())
    check("free_host", acl.rt.free_host(host))
    for ds in datasets:
        for i in range(acl.mdl.get_dataset_num_buffers(ds)):
            buf = acl.mdl.get_dataset_buffer(ds, i)
            check("free", acl.rt.free(acl.get_data_buffer_addr(buf)))
            check("destroy_data_buffer", acl.destroy_data_buffer(buf))
        check("destroy_dataset", acl.mdl.destroy_dataset(ds))
    check("unload", acl.mdl.unload(model_id))
    check("destroy_desc", acl.mdl.destroy_desc(desc))
    check("destroy_context", acl.rt.destroy_context(context))
    check("reset_device", acl.rt.reset_device(0))
    check("finalize", acl.finalize())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
