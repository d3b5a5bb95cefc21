"""An asynchronous pyACL script: execute_async on a stream, results read in callbacks that run
on a report thread (start_thread / subscribe_report / process_report). Usage MODEL INPUT.npy
[RUNS]; the input dataset is rebuilt for every run."""

import sys

import acl
import numpy as np

ACL_SUCCESS = 0
ACL_MEM_MALLOC_NORMAL_ONLY = 2
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
ACL_CALLBACK_BLOCK = 1


def check(what, ret):
    if ret != ACL_SUCCESS:
        raise RuntimeError(f"{what} failed ret={ret}")


class Net:
    def __init__(self, model_path):
        check("init", acl.init())
        check("set_device", acl.rt.set_device(0))
        self.context, ret = acl.rt.create_context(0)
        check("create_context", ret)
        self.stream, ret = acl.rt.create_stream()
        check("create_stream", ret)
        self.model_id, ret = acl.mdl.load_from_file(model_path)
        check("load", ret)
        self.desc = acl.mdl.create_desc()
        check("get_desc", acl.mdl.get_desc(self.desc, self.model_id))
        self.exit_flag = False
        self.results = []

    def _report_loop(self, args):
        context, timeout = args
        acl.rt.set_context(context)
        while not self.exit_flag:
            acl.rt.process_report(timeout)

    def _dataset(self, sizes, data=None):
        ds = acl.mdl.create_dataset()
        for size in sizes:
            buf, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_NORMAL_ONLY)
            check("malloc", ret)
            if data is not None:
                check(
                    "memcpy",
                    acl.rt.memcpy(
                        buf, size, acl.util.bytes_to_ptr(data), size, ACL_MEMCPY_HOST_TO_DEVICE
                    ),
                )
            acl.mdl.add_dataset_buffer(ds, acl.create_data_buffer(buf, size))
        return ds

    def callback(self, output):
        buf = acl.mdl.get_dataset_buffer(output, 0)
        size = acl.get_data_buffer_size_v2(buf)
        host, ret = acl.rt.malloc_host(size)
        check("malloc_host", ret)
        check(
            "memcpy",
            acl.rt.memcpy(
                host, size, acl.get_data_buffer_addr(buf), size, ACL_MEMCPY_DEVICE_TO_HOST
            ),
        )
        vals = np.frombuffer(acl.util.ptr_to_bytes(host, size), np.float32)
        self.results.append(vals.argsort()[-1:-6:-1].tolist())
        acl.rt.free_host(host)

    def run(self, image, runs):
        tid, ret = acl.util.start_thread(self._report_loop, [self.context, 50])
        check("start_thread", ret)
        check("subscribe_report", acl.rt.subscribe_report(tid, self.stream))
        data = image.tobytes()
        in_size = acl.mdl.get_input_size_by_index(self.desc, 0)
        out_size = acl.mdl.get_output_size_by_index(self.desc, 0)
        for _ in range(runs):
            inputs = self._dataset([in_size], data)
            outputs = self._dataset([out_size])
            check(
                "execute_async", acl.mdl.execute_async(self.model_id, inputs, outputs, self.stream)
            )
            check(
                "launch_callback",
                acl.rt.launch_callback(self.callback, outputs, ACL_CALLBACK_BLOCK, self.stream),
            )
        check("synchronize_stream", acl.rt.synchronize_stream(self.stream))
        check("unsubscribe_report", acl.rt.unsubscribe_report(tid, self.stream))
        self.exit_flag = True
        check("stop_thread", acl.util.stop_thread(tid))
        for top in self.results:
            print("top5:", top)

    def release(self):
        check("unload", acl.mdl.unload(self.model_id))
        check("destroy_desc", acl.mdl.destroy_desc(self.desc))
        check("destroy_stream", acl.rt.destroy_stream(self.stream))
        check("destroy_context", acl.rt.destroy_context(self.context))
        check("finalize", acl.finalize())


if __name__ == "__main__":
    net = Net(sys.argv[1])
    net.run(np.load(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    net.release()
