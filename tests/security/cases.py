"""The hostile .om files of the test suite: name → bytes (each under 1 MB unless it says so).

Each is a real model openge wrote, then changed on the wire and re-packed with a valid
checksum (tests/security/craft.py). They cover every case of issue 15 on the .om / runtime side
and the classes around them: sizes, attrs the kernels read, slots, io descriptors, the three
descriptions of the interface, nesting, counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from openge.graph import DataType
from openge.om import task_pb2 as tp
from tests.security.craft import edit, seed, set_attr

_TASK_TAG = bytes([(14 << 3) | 2])  # TaskList.tasks, length-delimited


def _conv(name: str, value: object) -> Callable[[], bytes]:
    return lambda: edit(seed(), tasks=lambda tl: set_attr(tl, "Conv2D", name, value))


def _fused(name: str, value: object) -> Callable[[], bytes]:
    return lambda: edit(seed(), tasks=lambda tl: set_attr(tl, "FusedConv2D", name, value))


def _memory(size: int) -> bytes:
    def tasks(tl: tp.TaskList) -> None:
        tl.memory_size = size

    def model_def(md) -> None:
        md.attr["memory_size"].i = size

    return edit(seed(), tasks=tasks, model_def=model_def)


def _slot(index: int, side: str, **changes: object) -> Callable[[], bytes]:
    def tasks(tl: tp.TaskList) -> None:
        slot = getattr(tl.tasks[index], side)[0]
        for key, value in changes.items():
            if key == "shape":
                del slot.shape[:]
                slot.shape.extend(value)  # type: ignore[arg-type]
            else:
                setattr(slot, key, value)

    return lambda: edit(seed(), tasks=tasks)


def _output_shape(shape: list[int]) -> Callable[[], bytes]:
    def tasks(tl: tp.TaskList) -> None:
        del tl.outputs[0].shape[:]
        tl.outputs[0].shape.extend(shape)
        slot = tl.tasks[-1].outputs[0]
        del slot.shape[:]
        slot.shape.extend(max(d, 0) for d in shape)

    def inout(info) -> None:
        from dataclasses import replace

        info.outputs[0] = replace(info.outputs[0], dims=tuple(shape), dims_v2=tuple(shape))

    return lambda: edit(seed(), tasks=tasks, inout=inout)


def _unwritten_output() -> bytes:
    def tasks(tl: tp.TaskList) -> None:
        tl.tasks[-1].outputs[0].kind = 1  # Softmax writes the arena, not output 0
        tl.tasks[-1].outputs[0].offset = 0

    return edit(seed(), tasks=tasks)


def _empty_tasks(count: int) -> bytes:
    tl = tp.TaskList()
    tl.CopyFrom(_seed_tasks())
    body = tl.SerializeToString() + (_TASK_TAG + b"\x00") * count
    return edit(seed(), task_body=body, keep_op_count=True)


def _seed_tasks() -> tp.TaskList:
    from tests.security.craft import task_list

    return task_list(seed())


def _deep_attr(depth: int) -> bytes:
    def tasks(tl: tp.TaskList) -> None:
        entry = tl.tasks[0].attrs.add()
        entry.name = "deep"
        value = entry.value
        for _ in range(depth):
            value.list.kind = tp.AttrList.VALUE
            value = value.list.v.add()
        value.i = 1

    return edit(seed(), tasks=tasks)


def _external(
    location: str, directory: str, sha256: str, length: int = 4, count: int = 4
) -> Callable[[], bytes]:
    def tasks(tl: tp.TaskList) -> None:
        w = tl.external_weights.add()
        w.location = location
        w.directory = directory
        w.sha256 = sha256
        w.offset = 0
        w.length = length
        w.dtype = int(DataType.DT_UINT8)
        w.shape.append(count)

    return lambda: edit(seed(), tasks=tasks)


def _inout_dims() -> bytes:
    def inout(info) -> None:
        from dataclasses import replace

        info.outputs[0] = replace(info.outputs[0], dims=(1, 1000), dims_v2=(1, 1000))

    return edit(seed(), inout=inout)


def _inout_extra_input() -> bytes:
    def inout(info) -> None:
        info.inputs.append(info.inputs[0])

    return edit(seed(), inout=inout)


def _modeldef_dangling_input() -> bytes:
    def model_def(md) -> None:
        op = next(op for op in md.graph[0].op if len(op.input))
        op.input[0] = "no_such_node:0"

    return edit(seed(), model_def=model_def)


def _modeldef_data_shape() -> bytes:
    def model_def(md) -> None:
        for op in md.graph[0].op:
            if op.type == "Data":
                op.output_desc[0].shape.dim[0] = 7

    return edit(seed(), model_def=model_def)


def _modeldef_bad_index() -> bytes:
    def model_def(md) -> None:
        for op in md.graph[0].op:
            if op.type == "Data":
                op.attr["index"].s = b"abc"

    return edit(seed(), model_def=model_def)


def _many_ops(count: int, nested: bool) -> bytes:
    def model_def(md) -> None:
        graph = md.graph[0]
        if nested:
            holder = next(op for op in graph.op if op.type == "Data")
            graph = holder.attr["_sub"].g
            graph.name = "sub"
        for i in range(count):
            op = graph.op.add()
            op.name = f"n{i}"
            op.type = "Identity"

    return edit(seed(), model_def=model_def)


def _op_type(name: str) -> Callable[[], bytes]:
    def tasks(tl: tp.TaskList) -> None:
        tl.tasks[2].op_type = name

    return lambda: edit(seed(), tasks=tasks)


def _task_count_lie() -> bytes:
    def tasks(tl: tp.TaskList) -> None:
        del tl.tasks[3]

    return edit(seed(), tasks=tasks, keep_op_count=True)


def _program(text: str) -> Callable[[], bytes]:
    return _fused("epilogue", text)


def _const(name: str, task: int, index: int, values: list[int]) -> Callable[[], bytes]:
    """Overwrite the weight bytes of input ``index`` of task ``task`` of seed ``name``."""
    import numpy as np

    def build() -> bytes:
        from tests.security.craft import task_list

        slot = task_list(seed(name)).tasks[task].inputs[index]
        raw = np.array(values, DataType(slot.dtype).np_dtype).tobytes()
        return edit(seed(name), weights={slot.offset: raw})

    return build


def _seed_task(name: str, change: Callable[[tp.TaskList], None]) -> Callable[[], bytes]:
    return lambda: edit(seed(name), tasks=change)


def _set(task: int, attr: str, value: object) -> Callable[[tp.TaskList], None]:
    def change(tl: tp.TaskList) -> None:
        set_attr(tl, tl.tasks[task].op_type, attr, value)

    return change


def _variable_huge(tl: tp.TaskList) -> None:
    tl.variables[0].shape[0] = 1 << 40


def _assign_elsewhere(tl: tp.TaskList) -> None:
    tl.tasks[0].outputs[0].kind = 1  # AssignAdd writes the arena, not its variable


def _weight_slot_shape(shape: list[int]) -> Callable[[], bytes]:
    """The first WEIGHT slot (kind 2) of the task list given ``shape``."""

    def tasks(tl: tp.TaskList) -> None:
        slot = next(s for t in tl.tasks for s in t.inputs if s.kind == 2)
        del slot.shape[:]
        slot.shape.extend(shape)

    return lambda: edit(seed(), tasks=tasks)


_STEP = '{"op":"Relu","attrs":{},"args":[%d],"dtype":0,"shape":[1,4,8,8]}'

#: name → builder of the hostile file's bytes.
CASES: dict[str, Callable[[], bytes]] = {
    # sizes checked before allocating
    "arena_2_40": lambda: _memory(1 << 40),
    "arena_2_63": lambda: _memory((1 << 63) - 1),
    "output_dims_huge": _output_shape([1 << 40, 1 << 20]),
    "output_dims_negative": _output_shape([-1, 5]),
    "zero_size_slot_2_62": _slot(4, "outputs", shape=[0, 1 << 62]),
    "slot_dims_overflow": _slot(4, "outputs", shape=[1 << 40, 1 << 40, 1 << 40]),
    # fuzz finding (from_bytes): an empty weight whose other dim no array can have
    "weight_slot_empty_2_63": _weight_slot_shape([(1 << 63) - 1, 0, 3, 3]),
    "input_slot_empty_2_62": _slot(0, "inputs", shape=[0, 3, 1 << 62]),
    "empty_tasks_400k": lambda: _empty_tasks(400_000),
    "task_count_lie": _task_count_lie,
    "attr_nesting_90": lambda: _deep_attr(90),
    "attr_nesting_2000": lambda: _deep_attr(2000),
    # attrs a kernel's prepare / run reads
    "conv_groups_0": _conv("groups", 0),
    "conv_groups_str": _conv("groups", "x"),
    "conv_groups_not_dividing": _conv("groups", 3),
    "conv_groups_negative": _conv("groups", -4),
    "conv_strides_short": _conv("strides", [1]),
    "conv_strides_zero": _conv("strides", [1, 1, 0, 0]),
    "conv_pads_negative": _conv("pads", [-5, -5, -5, -5]),
    "conv_pads_huge": _conv("pads", [1 << 40, 0, 0, 0]),
    "conv_dilations_huge": _fused("dilations", [1, 1, 1 << 62, 1]),
    "conv_data_format_bad": _conv("data_format", "NDHW"),
    "conv_strides_float": _conv("strides", 1.5),
    "fused_groups_0": _fused("groups", 0),
    "epilogue_nested_json": _program("[" * 100_000),
    "epilogue_not_json": _program("{not json"),
    "epilogue_unknown_op": _program(
        '{"steps":[{"op":"Nope","attrs":{},"args":[0],"dtype":0,"shape":[1,4,8,8]}]}'
    ),
    "epilogue_many_steps": _program(
        '{"steps":[' + ",".join(_STEP % (-j if j else 0) for j in range(5000)) + "]}"
    ),
    "epilogue_wrong_shape": _program(
        '{"steps":[{"op":"Relu","attrs":{},"args":[0],"dtype":0,"shape":[1,4,8,9]}]}'
    ),
    "maxpool_ksize_0": lambda: edit(
        seed(), tasks=lambda tl: set_attr(tl, "MaxPoolV3", "ksize", [1, 1, 0, 0])
    ),
    "softmax_axes_out_of_range": lambda: edit(
        seed(), tasks=lambda tl: set_attr(tl, "SoftmaxV2", "axes", [99])
    ),
    "reducemean_keep_dims_str": lambda: edit(
        seed(), tasks=lambda tl: set_attr(tl, "ReduceMean", "keep_dims", "yes")
    ),
    # values the inference reads from the weights (constant inputs)
    "transpose_perm_not_a_permutation": _const("transformer", 1, 1, [0, 0, 0, 0]),
    "transpose_perm_out_of_range": _const("transformer", 1, 1, [0, 9, 1, 3]),
    "split_sizes_negative": _const("transformer", 2, 1, [100, -98]),
    "layernorm_axis_out_of_range": _seed_task("transformer", _set(4, "begin_norm_axis", 99)),
    "layernorm_epsilon_str": _seed_task("transformer", _set(4, "epsilon", "tiny")),
    "program_missing_operand": _seed_task(
        "transformer",
        _set(
            5,
            "program",
            '{"steps":[{"op":"Relu","attrs":{},"args":[5],"dtype":0,"shape":[2,4,8]}]}',
        ),
    ),
    # variables
    "variable_huge": _seed_task("counter", _variable_huge),
    "assign_not_in_place": _seed_task("counter", _assign_elsewhere),
    # slots
    "slot_arena_outside": _slot(0, "outputs", offset=1 << 40),
    "slot_weight_outside": _slot(3, "inputs", kind=2, offset=1 << 30),
    "slot_wrong_shape": _slot(3, "outputs", shape=[1, 6, 3, 3]),
    "slot_wrong_dtype": _slot(3, "outputs", dtype=int(DataType.DT_INT8)),
    "slot_string_dtype": _slot(3, "outputs", dtype=int(DataType.DT_STRING)),
    "slot_unknown_kind": _slot(3, "outputs", kind=9),
    "slot_writes_input": _slot(3, "outputs", kind=3, offset=0),
    "slot_writes_weight": _slot(3, "outputs", kind=2, offset=0),
    "slot_missing_variable": _slot(3, "inputs", kind=5, offset=3),
    "unwritten_output": _unwritten_output,
    "unknown_op": _op_type("NoSuchOp"),
    "source_op_as_task": _op_type("Const"),
    # the three descriptions of the interface
    "inout_disagrees": _inout_dims,
    "inout_extra_input": _inout_extra_input,
    "modeldef_dangling_input": _modeldef_dangling_input,
    "modeldef_data_shape": _modeldef_data_shape,
    "modeldef_bad_index": _modeldef_bad_index,
    "modeldef_40k_ops": lambda: _many_ops(40_000, nested=False),
    "modeldef_40k_nested_ops": lambda: _many_ops(40_000, nested=True),
    # external weights recorded by the file
    "ext_etc_passwd_no_sha": _external("passwd", "/etc", ""),
    "ext_etc_passwd_sha": _external("passwd", "/etc", hashlib.sha256(b"root").hexdigest()),
    "ext_dotdot": _external("../../etc/passwd", "", "0" * 64),
    # found by the fuzzer: a recorded folder with a NUL byte raised ValueError in realpath
    "ext_dir_nul_byte": _external("w", "/tmp/\x00x", "0" * 64),
    "ext_length_mismatch": _external("w", "", "0" * 64, length=4, count=1 << 40),
}


def hostile(name: str) -> bytes:
    """The bytes of hostile case ``name``."""
    data = CASES[name]()
    return data


__all__ = ["CASES", "hostile"]
