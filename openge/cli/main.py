"""The ``openge`` command: atc (convert / dump / info), run, batch, compare, om, demo."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from openge.errors import GeError

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "null": logging.CRITICAL + 1,
}


def _add_atc(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "atc",
        help="convert a model to .om (--mode=0), dump as JSON (--mode=1), print info (--mode=6)",
        description="ATC-compatible model conversion. Flags use ATC's names: --model=M "
        "--framework=5 --output=PREFIX writes PREFIX.om.",
    )
    p.add_argument("--mode", type=int, default=0, choices=(0, 1, 6))
    p.add_argument("--model", help="source model (ONNX for --framework=5)")
    p.add_argument("--framework", type=int, default=5, help="5 = ONNX (the one openge reads)")
    p.add_argument("--output", help="output prefix: writes PREFIX.om")
    p.add_argument("--om", help="model to dump (--mode=1) or describe (--mode=6)")
    p.add_argument("--json", help="JSON output file (--mode=1)")
    p.add_argument("--dump_mode", type=int, default=0, choices=(0, 1), help="1: JSON with shapes")
    p.add_argument("--input_shape", default="", help='"name:1,3,224,224;name2:..."')
    p.add_argument("--input_format", default=None, help="NCHW (default), NHWC or ND")
    p.add_argument("--dynamic_batch_size", default="", help='batch gears, "1,2,4,8"')
    p.add_argument("--dynamic_image_size", default="", help='H,W gears, "416,416;832,832"')
    p.add_argument("--dynamic_dims", default="", help='gears of every -1, "20,20;40,40"')
    p.add_argument("--precision_mode", default=None)
    p.add_argument("--precision_mode_v2", default=None)
    p.add_argument("--modify_mixlist", default=None, help="JSON file editing the op lists")
    p.add_argument("--keep_dtype", default=None, help="file: ops that keep their dtype")
    p.add_argument("--customize_dtypes", default=None, help="file: per-op compute dtypes")
    p.add_argument("--external_weight", default="0", choices=("0", "1", "2"))
    p.add_argument("--soc_version", default="openge-cpu", help="accepted for compatibility")
    p.add_argument("--disable_reuse_memory", default="0", choices=("0", "1"))
    p.add_argument("--out_nodes", default="", help='outputs "node:0;node:1" (ONNX node names)')
    p.add_argument("--input_fp16_nodes", default="", help='inputs that take float16 "a;b"')
    p.add_argument("--output_type", default="", help='FP32, FP16, ... or "node:0:FP16;..."')
    p.add_argument("--insert_op_conf", default="", help="AIPP config (prototxt)")
    p.add_argument("--log", default="warning", choices=tuple(LOG_LEVELS))


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an .om and print timing (like msame / ais_bench)")
    p.add_argument("--model", required=True, help="the .om file")
    p.add_argument(
        "--input",
        default="",
        help="comma-separated .npy files, one per input (default: zeros of each input's shape)",
    )
    p.add_argument("--output", default=None, help="folder for output_<i>.npy")
    p.add_argument("--loop", type=int, default=1, help="number of timed runs")
    p.add_argument("--weight_dir", default=None, help="folder of external weight files")
    p.add_argument("--log", default="warning", choices=tuple(LOG_LEVELS))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``openge`` command."""
    parser = argparse.ArgumentParser(
        prog="openge",
        description="openge: the Ascend GE model workflow on CPU (build, compile, save .om, "
        "load, execute).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_atc(sub)
    _add_run(sub)
    from openge.cli.batch import add_batch_parser

    add_batch_parser(sub, tuple(LOG_LEVELS))

    from openge.cli.device_om import add_om_parser

    add_om_parser(sub, tuple(LOG_LEVELS))
    from openge.cli.compare import add_parser as _add_compare

    _add_compare(sub, tuple(LOG_LEVELS))
    demo = sub.add_parser("demo", help="compile, save, load and run a bundled sample CNN")
    demo.add_argument("--log", default="warning", choices=tuple(LOG_LEVELS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``openge`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=LOG_LEVELS[args.log], format="[%(levelname)s] %(name)s: %(message)s")
    try:
        if args.command == "demo":
            from openge.cli.demo import run_demo

            return 0 if run_demo() else 1
        if args.command == "om":
            from openge.cli.device_om import om_command

            return om_command(args)
        if args.command == "run":
            from openge.cli.run import run_command

            return run_command(args)
        if args.command == "batch":
            from openge.cli.batch import batch_command

            return batch_command(args)

        if args.command == "compare":
            from openge.cli.compare import compare_command

            return compare_command(args)
        from openge.cli.atc import atc_command

        return atc_command(args)
    except KeyboardInterrupt:
        print("openge: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the one top-level handler: one line, exit 1
        return _report(args, err)


def _report(args: argparse.Namespace, err: Exception) -> int:
    """Print ``err`` as one line on stderr (its traceback too with ``--log=debug``); exit 1."""
    if args.log == "debug":
        traceback.print_exc()
    if isinstance(err, GeError):
        text = f"error {err.code} ({err.name}): {err.message}"
    elif isinstance(err, OSError):
        where = f" {err.filename}" if err.filename else ""
        text = f"file error{where}: {err.strerror or err}"
    else:  # a bug in openge: still one line; --log=debug shows where
        text = f"internal error {type(err).__name__}: {err} (run with --log=debug for details)"
    print(f"openge {args.command}: {' '.join(text.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
