"""A hand-built CompiledModel that uses every part of the .om format (shared by the om tests)."""

from __future__ import annotations

import hashlib

import numpy as np

from openge.graph import DataType, Format, Graph, Tensor, TensorDesc
from openge.om.plan import (
    CompiledModel,
    ExternalWeight,
    IODesc,
    Slot,
    SlotKind,
    Task,
    VariableDef,
)

F32 = DataType.DT_FLOAT


def build_model(name: str = "round_trip_graph") -> CompiledModel:
    """Data → Add(Const) → Relu, a Variable updated by AssignAdd from a FileConstant.

    Tasks use every SlotKind; one Const is placed by the compiler (const_offsets), the other
    is left for the writer to add; the Variable's initial value is in the weights.
    """
    c_val = np.arange(6, dtype=np.float32).reshape(2, 3)
    c2_val = np.array([[1.5, -2.0, 3.25]], dtype=np.float32)
    var_val = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    ext_bytes = np.ones((1, 3), np.float32).tobytes()

    g = Graph(name)
    g.attrs["_note"] = "hand built"
    x = g.add_node(
        "Data",
        name="x",
        attrs={"index": 0},
        output_descs=[TensorDesc(F32, (2, 3), Format.FORMAT_NCHW, name="x")],
    )
    c = g.add_node(
        "Const", name="c", attrs={"value": Tensor(c_val)}, output_descs=[TensorDesc(F32, (2, 3))]
    )
    c2 = g.add_node(
        "Const", name="c2", attrs={"value": Tensor(c2_val)}, output_descs=[TensorDesc(F32, (1, 3))]
    )
    add = g.add_node(
        "Add",
        [x.output(), c.output()],
        name="add",
        output_descs=[TensorDesc(F32, (2, 3), origin_shape=(2, 3))],
    )
    add2 = g.add_node(
        "Add", [add.output(), c2.output()], name="add2", output_descs=[TensorDesc(F32, (2, 3))]
    )
    sub = Graph("sub")
    sc = sub.add_node(
        "Const",
        name="sc",
        attrs={"value": Tensor(np.array([7], np.int64))},
        output_descs=[TensorDesc(DataType.DT_INT64, (1,))],
    )
    sub.set_outputs([sc.output()])
    relu = g.add_node(
        "Relu",
        [add2.output()],
        name="relu",
        output_descs=[TensorDesc(F32, (2, 3))],
        control_inputs=[c2],
        attrs={  # GE-private annotations of every storable type
            "_alpha": 0.1,
            "_floats": [0.5, 1e-5, -3.0],
            "_ints": [1, -2],
            "_bools": [True],
            "_strs": ["a", "ü"],
            "_bytes": b"\x00\x01",
            "_types": [DataType.DT_FLOAT, DataType.DT_BF16],
            "_type": DataType.DT_UINT64,
            "_none": None,
            "_empty": [],
            "_cfg": {"k": 1, "s": "v"},
            "_sub": sub,
            "_tensors": [Tensor(np.zeros((2,), np.float16))],
            "_array": np.array([[1, 2]], np.uint8),
        },
    )
    var = g.add_node(
        "Variable",
        name="v",
        attrs={"index": 0, "value": Tensor(var_val)},
        output_descs=[TensorDesc(F32, (3,))],
    )
    fc = g.add_node(
        "FileConstant",
        name="fc",
        attrs={
            "shape": [1, 3],
            "dtype": F32,
            "location": "weight_ext",
            "file_path": "",
            "offset": 0,
            "length": len(ext_bytes),
            "sha256": hashlib.sha256(ext_bytes).hexdigest(),
        },
        output_descs=[TensorDesc(F32, (1, 3))],
    )
    upd = g.add_node(
        "AssignAdd",
        [var.output(), fc.output()],
        name="upd",
        attrs={"use_locking": False},
        output_descs=[TensorDesc(F32, (3,))],
    )
    g.set_outputs([relu.output(), upd.output()])

    weights = bytearray(256)
    weights[0:24] = c_val.tobytes()
    weights[64:76] = var_val.tobytes()
    arena = (2, 3)
    tasks = [
        Task(
            "add",
            "Add",
            (Slot(SlotKind.INPUT, 0, F32, arena), Slot(SlotKind.WEIGHT, 0, F32, arena)),
            (Slot(SlotKind.ARENA, 0, F32, arena),),
            {
                "i": -7,
                "f": 0.1,
                "b": True,
                "s": "text ü",
                "bt": b"\x00\xff",
                "dt": DataType.DT_INT64,
                "t": Tensor(np.array([1, 2], dtype=np.int32)),
                "li": [1, 2, 3],
                "lf": [0.5, 1e-7],
                "lb": [True, False],
                "ls": ["a", "b"],
                "ldt": [DataType.DT_FLOAT16, DataType.DT_BF16],
                "tup": (1, "x"),
                "none": None,
                "empty": [],
            },
        ),
        Task(
            "add2",
            "Add",
            (Slot(SlotKind.ARENA, 0, F32, arena), Slot(SlotKind.NONE)),
            (Slot(SlotKind.ARENA, 512, F32, arena),),
        ),
        Task(
            "relu",
            "Relu",
            (Slot(SlotKind.ARENA, 512, F32, arena),),
            (Slot(SlotKind.OUTPUT, 0, F32, arena),),
        ),
        Task(
            "upd",
            "AssignAdd",
            (Slot(SlotKind.VARIABLE, 0, F32, (3,)), Slot(SlotKind.EXTERNAL, 0, F32, (1, 3))),
            (Slot(SlotKind.VARIABLE, 0, F32, (3,)), Slot(SlotKind.OUTPUT, 1, F32, (3,))),
            {"use_locking": False},
        ),
    ]
    return CompiledModel(
        name=name,
        graph=g,
        tasks=tasks,
        inputs=[IODesc("x", F32, (2, 3), Format.FORMAT_NCHW)],
        outputs=[IODesc("relu", F32, (2, 3)), IODesc("upd", F32, (3,))],
        weights=weights,
        variables=[VariableDef("v", F32, (3,), Format.FORMAT_ND, 64)],
        external_weights=[
            ExternalWeight(
                "weight_ext",
                0,
                len(ext_bytes),
                hashlib.sha256(ext_bytes).hexdigest(),
                F32,
                (1, 3),
                "/tmp/openge_session_1",
            )
        ],
        memory_size=1024,
        options={"ge.exec.precision_mode": "force_fp32", "ge.graphRunMode": "0"},
        producer="openge-0.1.0",
        online=True,
        is_dynamic=False,
        stats={"const_offsets": {"c": [0, 24]}, "passes": ["fold", "dce"], "fused": 2},
    )
