"""``openge atc``: ONNX to .om (--mode=0), a model as JSON (--mode=1), its info (--mode=6)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from openge.cli.files import check_output_file, write_file
from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Format

#: ATC flags that name precision files → the GE options carrying them (docs/precision.md).
PRECISION_FILE_FLAGS = {
    "modify_mixlist": "ge.exec.modify_mixlist",
    "keep_dtype": "ge.keepDtype",
    "customize_dtypes": "ge.customizeDtypes",
}


def _with_om(path: str, read: Any) -> Any:
    """``read(view)`` of the mapped regular file ``path``; the mapping is closed after, and a
    failure to close it (views still alive in a traceback) never hides ``read``'s error."""
    from openge.om.limits import default_limits
    from openge.runtime.files import MappedFile, as_path

    source = MappedFile(as_path(path, "--om"), "model file", default_limits().max_model_bytes)
    view = source.view()
    try:
        return read(view)
    finally:
        with contextlib.suppress(BufferError):
            view.release()
        source.close()


def _is_onnx(path: str) -> bool:
    return path.lower().endswith(".onnx")


def _enum_name(enum: type, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def om_to_dict(view: memoryview) -> dict[str, Any]:
    """Header, partitions, io, model attrs, graph and weights summary of any .om."""
    from google.protobuf import json_format

    from openge.om.reader import read_info, read_model_def

    info = read_info(view)
    md = read_model_def(view)
    header = asdict(info.header)
    header["checksum"] = bytes(info.header.checksum).hex()
    header["userdefineinfo"] = bytes(info.header.userdefineinfo).hex()
    graph = json_format.MessageToDict(md, preserving_proto_field_name=True)

    def io(descs):
        return [
            {
                "name": d.name,
                "dtype": _enum_name(DataType, d.dtype),
                "format": _enum_name(Format, d.format),
                "shape": list(d.dims),
                "size": d.size,
                **({"range": [list(r) for r in d.shape_range]} if _range_text(d) else {}),
            }
            for d in descs
        ]

    consts = [op for g in md.graph for op in g.op if op.type in ("Const", "FileConstant")]
    return {
        "header": header,
        "partitions": [
            {"type": p.type_name, "offset": p.offset, "size": p.size} for p in info.partitions
        ],
        "openge": {
            "openge_model": not info.foreign,
            "producer": info.producer,
            "format": None if info.format is None else f"{info.format[0]}.{info.format[1]}",
            "online": info.online,
            "memory_size": info.memory_size,
            "weight_size": info.weight_size,
            "soc_version": info.soc_version,
        },
        "inputs": io(info.inputs),
        "outputs": io(info.outputs),
        "weights": {"constants": len(consts), "bytes": info.weight_size},
        **(
            {"gears": {"kind": info.gears[0], "values": [list(v) for v in info.gears[1]]}}
            if info.gears is not None
            else {}
        ),
        "model_def": graph,
    }


def onnx_to_dict(path: str) -> dict[str, Any]:
    """The ONNX model as JSON (raw tensor bytes left out, sizes kept)."""
    import onnx
    from google.protobuf import json_format

    from openge.runtime.files import open_regular

    os.close(open_regular(path, "ONNX model"))  # a FIFO or a folder would hang or confuse onnx
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:
        raise GeError(PARAM_INVALID, f"cannot read ONNX model {path}: {err}") from err
    for init in model.graph.initializer:
        if init.raw_data:
            size = len(init.raw_data)
            init.ClearField("raw_data")
            init.doc_string = f"raw_data: {size} bytes (left out)"
    return json_format.MessageToDict(model, preserving_proto_field_name=True)


def _range_text(d: Any) -> str:
    """ " range [1~8,3,224,224]" for an io desc whose dims vary ("" when static)."""
    if not any(lo != hi for lo, hi in d.shape_range):
        return ""
    parts = [str(lo) if lo == hi else f"{lo}~{'' if hi < 0 else hi}" for lo, hi in d.shape_range]
    return f" range [{','.join(parts)}]"


def _info_text(view: memoryview) -> str:
    from openge.om.reader import read_info

    info = read_info(view)
    fmt = "-" if info.format is None else f"{info.format[0]}.{info.format[1]}"
    lines = [
        f"name:            {info.name}",
        f"openge model:    {'yes' if not info.foreign else 'no (inspect only)'}",
        f"producer:        {info.producer or info.platform_version or '-'}",
        f"format:          {fmt} ({'online buffer' if info.online else 'offline'})",
        f"soc_version:     {info.soc_version or '-'}",
        f"work memory:     {info.memory_size} bytes",
        f"weight memory:   {info.weight_size} bytes",
        f"ops (tasks):     {info.num_ops}",
        f"dynamic shape:   {'yes' if info.is_dynamic else 'no'}",
    ]
    if info.gears is not None:
        kind, values = info.gears
        listing = " | ".join(",".join(map(str, v)) for v in values)
        lines.append(f"{f'gears ({kind}):':<17}{len(values)}: {listing}")
    for kind, descs in (("input", info.inputs), ("output", info.outputs)):
        for i, d in enumerate(descs):
            ranged = _range_text(d)
            lines.append(
                f"{kind} {i}: {d.name} {_enum_name(DataType, d.dtype)} {list(d.dims)} "
                f"{_enum_name(Format, d.format)} ({d.size} bytes){ranged}"
            )
    return "\n".join(lines)


class _Progress:
    """Prints elapsed time on stderr while a long compile runs (only on a terminal)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(1.0):
            sys.stderr.write(f"\r{self._label} ... {time.perf_counter() - start:.0f} s")
            sys.stderr.flush()

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            sys.stderr.write("\n")


def _convert(args: argparse.Namespace) -> int:
    from openge.compiler import CompileReport, compile_graph
    from openge.compiler.passes.externalize_weights import SESSION_WEIGHT_DIR
    from openge.om.writer import serialize
    from openge.parser import parse_onnx

    if not args.model or not args.output:
        raise GeError(PARAM_INVALID, "--mode=0 needs --model=FILE and --output=PREFIX")
    if args.framework != 5:
        raise GeError(
            PARAM_INVALID,
            f"--framework={args.framework} is not supported; openge reads ONNX (--framework=5)",
        )
    out_path = check_output_file(args.output + ".om", "--output")  # before compiling
    from openge.runtime.files import as_path, open_regular

    os.close(open_regular(as_path(args.model, "--model"), "--model"))  # never hang on a FIFO
    input_format = args.input_format or "NCHW"
    parser_options = {"input_shape": args.input_shape, "input_format": input_format}
    start = time.perf_counter()
    spec = _gear_spec(args)
    graph = parse_onnx(args.model, parser_options) if spec is None else None
    options = {
        "ge.externalWeight": args.external_weight,
        "ge.exec.disableReuseMemory": args.disable_reuse_memory,
        "ge.socVersion": args.soc_version,
    }
    if args.precision_mode:
        options["ge.exec.precision_mode"] = args.precision_mode
    if args.precision_mode_v2:
        options["ge.exec.precision_mode_v2"] = args.precision_mode_v2
    for flag, key in (
        *PRECISION_FILE_FLAGS.items(),
        ("out_nodes", "ge.outputNodeName"),
        ("input_fp16_nodes", "ge.INPUT_NODES_SET_FP16"),
        ("output_type", "ge.outputDatatype"),
        ("insert_op_conf", "ge.insertOpFile"),
    ):
        if getattr(args, flag, None):
            options[key] = getattr(args, flag)
    from openge.compiler.options import validate_options

    options = validate_options(options, "atc")
    if args.external_weight != "0":
        options["ge.externalWeightDir"] = os.path.join(os.path.dirname(out_path), "weight")
    options.pop(SESSION_WEIGHT_DIR, None)
    report = CompileReport()
    with _Progress(f"compiling {os.path.basename(args.model)}"):
        if spec is None:
            compiled = compile_graph(graph, options, report=report)
        else:
            compiled = _compile_gears(args.model, spec, options, input_format)
            report = compiled.stats.get("report") or report
    data = serialize(compiled, online=False)
    write_file(out_path, [data], "--output")
    if args.log in ("info", "debug"):
        print(report.format(compiled))
    print(
        f"ATC run success: {out_path} ({len(data)} bytes, {len(compiled.tasks)} tasks, "
        f"{time.perf_counter() - start:.2f} s)"
    )
    return 0


def _gear_spec(args: argparse.Namespace) -> Any:
    """The gears of --dynamic_batch_size / --dynamic_image_size / --dynamic_dims (None: none)."""
    from openge.compiler.gears import gear_spec

    flags = {
        "ge.dynamicBatchSize": args.dynamic_batch_size,
        "ge.dynamicImageSize": args.dynamic_image_size,
        "ge.dynamicDims": args.dynamic_dims,
    }
    options = {k: v for k, v in flags.items() if v}
    if not options:
        return None
    options["ge.inputShape"] = args.input_shape
    options["ge.inputFormat"] = args.input_format or ("ND" if args.dynamic_dims else "NCHW")
    return gear_spec(options)


def _compile_gears(model: str, spec: Any, options: dict[str, str], input_format: str) -> Any:
    """One parse and one static compilation per gear (the ONNX model read with the gear's
    input shapes), joined into one gear model (openge.compiler.multi_batch)."""
    from openge.compiler import compile_graph
    from openge.compiler.multi_batch import compile_gears
    from openge.parser import parse_onnx

    def make(_: int, shapes: dict[str, tuple[int, ...]]) -> Any:
        text = ";".join(f"{name}:{','.join(map(str, dims))}" for name, dims in shapes.items())
        return parse_onnx(model, {"input_shape": text, "input_format": input_format})

    return compile_gears(spec, options, make, compile_graph)


def _device_command(args: argparse.Namespace, source: str) -> bool:
    """--mode=1/6 on anything but a well-formed openge om (a device om made by Ascend ATC, or
    a file that is no valid om: the device reader names what is wrong); False otherwise."""
    from openge.cli.device_om import info_text, json_doc, mapped
    from openge.om.device.reader import is_openge_om

    with mapped(source) as view:
        if is_openge_om(view):
            return False
        if args.mode == 6:
            print(info_text(view))
            return True
        doc = json_doc(view, shapes=getattr(args, "dump_mode", 0) == 1)
    json_path = check_output_file(args.json, "--json")
    write_file(json_path, [json.dumps(doc, indent=2).encode()], "--json")
    print(f"wrote {args.json}")
    return True


def atc_command(args: argparse.Namespace) -> int:
    """Execute ``openge atc``."""
    if args.mode == 0:
        return _convert(args)
    source = args.om or args.model
    if not source:
        raise GeError(PARAM_INVALID, f"--mode={args.mode} needs --om=FILE")
    if args.mode == 1 and not args.json:
        raise GeError(PARAM_INVALID, "--mode=1 needs --json=OUT.json")
    if not _is_onnx(source) and _device_command(args, source):
        return 0
    if args.mode == 1:
        json_path = check_output_file(args.json, "--json")  # before reading the model
        result = onnx_to_dict(source) if _is_onnx(source) else _with_om(source, om_to_dict)
        write_file(json_path, [json.dumps(result, indent=2).encode()], "--json")
        print(f"wrote {args.json}")
        return 0
    if _is_onnx(source):
        raise GeError(
            PARAM_INVALID,
            f"--mode=6 describes an .om; {source} is an ONNX model (dump it with --mode=1, or "
            "convert it with --mode=0)",
        )
    print(_with_om(source, _info_text))
    return 0
