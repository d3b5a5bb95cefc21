"""An acllite-style program: a model wrapper that asks the run mode at import, copies numpy
inputs to device buffers, and copies outputs into bytes objects through bytes_to_ptr.
Usage MODEL INPUT.npy."""

import sys

import acl
import numpy as np

RUN_MODE, _ = acl.rt.get_run_mode()  # acllite asks before acl.init
ACL_HOST = 1
COPY_OUT = 2 if RUN_MODE == ACL_HOST else 3
DTYPES = {0: np.float32, 1: np.float16, 3: np.int32, 4: np.uint8, 9: np.int64}


class LiteModel:
    def __init__(self, path):
        self.model_id, ret = acl.mdl.load_from_file(path)
        assert ret == 0, ret
        self.desc = acl.mdl.create_desc()
        assert acl.mdl.get_desc(self.desc, self.model_id) == 0
        self.outputs = acl.mdl.create_dataset()
        for i in range(acl.mdl.get_num_outputs(self.desc)):
            size = acl.mdl.get_output_size_by_index(self.desc, i)
            buf, ret = acl.rt.malloc(size, 2)
            acl.mdl.add_dataset_buffer(self.outputs, acl.create_data_buffer(buf, size))

    def execute(self, arrays):
        _index, ret = acl.mdl.get_input_index_by_name(self.desc, "ascend_mbatch_shape_data")
        assert ret != 0  # a static model has no gear input
        inputs = acl.mdl.create_dataset()
        for array in arrays:
            data = array.tobytes()
            buf, ret = acl.rt.malloc(len(data), 2)
            assert acl.rt.memcpy(buf, len(data), acl.util.bytes_to_ptr(data), len(data), 1) == 0
            acl.mdl.add_dataset_buffer(inputs, acl.create_data_buffer(buf, len(data)))
        assert acl.mdl.execute(self.model_id, inputs, self.outputs) == 0
        results = []
        for i in range(acl.mdl.get_dataset_num_buffers(self.outputs)):
            buf = acl.mdl.get_dataset_buffer(self.outputs, i)
            dims = acl.mdl.get_output_dims(self.desc, i)[0]["dims"]
            dtype = DTYPES[acl.mdl.get_output_data_type(self.desc, i)]
            host = np.zeros(dims, dtype).tobytes()
            assert (
                acl.rt.memcpy(
                    acl.util.bytes_to_ptr(host),
                    len(host),
                    acl.get_data_buffer_addr(buf),
                    acl.get_data_buffer_size(buf),
                    COPY_OUT,
                )
                == 0
            )
            results.append(np.frombuffer(host, dtype).reshape(dims).copy())
        for i in range(acl.mdl.get_dataset_num_buffers(inputs)):
            buf = acl.mdl.get_dataset_buffer(inputs, i)
            acl.rt.free(acl.get_data_buffer_addr(buf))
            acl.destroy_data_buffer(buf)
        acl.mdl.destroy_dataset(inputs)
        return results


if __name__ == "__main__":
    assert acl.init() == 0 and acl.rt.set_device(0) == 0
    model = LiteModel(sys.argv[1])
    (prob,) = model.execute([np.load(sys.argv[2])])
    print("top5:", prob.flatten().argsort()[-1:-6:-1].tolist())
    acl.app_log(1, "done")
    assert acl.mdl.unload(model.model_id) == 0
    assert acl.finalize() == 0
