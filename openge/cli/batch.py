"""``openge batch``: score a folder of .npy files or a parquet file on Ray, write one parquet file.

Inputs: a folder of ``.npy`` files, one row (sample) each, sorted by name — for a model with
several inputs, one sub-folder per input name holding the same file names — or a parquet file
whose columns are named like the model inputs (``--input-columns`` maps them otherwise). The
output parquet has one column per model output (Arrow fixed-shape tensors for rows of rank ≥ 2)
plus ``file`` (npy input) or the ``--keep-columns`` (parquet input), in input order. It is
written to a temporary file beside the target and renamed at the end: never half-written.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from typing import Any

import numpy as np

from openge.cli.files import check_output_file, load_array
from openge.errors import INTERNAL_ERROR, PARAM_INVALID, GeError
from openge.runtime import Model
from openge.runtime.files import as_path, open_regular

logger = logging.getLogger(__name__)

#: Rows read from disk per object-store block, at most (blocks are also cut to --batch-size so
#: every actor gets work).
READ_BLOCK_ROWS = 4096


def add_batch_parser(sub: argparse._SubParsersAction, log_levels: Any) -> None:
    """Register ``openge batch``."""
    p = sub.add_parser(
        "batch",
        help="score a folder of .npy files or a parquet file with an .om on Ray (openge[ray])",
    )
    p.add_argument("--model", required=True, help="the .om file")
    p.add_argument("--input", required=True, help="folder of .npy files, or a .parquet file")
    p.add_argument("--output", required=True, help="the parquet file to write")
    p.add_argument(
        "--ray-address",
        "--ray_address",
        dest="ray_address",
        default=None,
        help="join this Ray cluster (default: start a local Ray instance)",
    )
    p.add_argument(
        "--actors",
        type=int,
        default=None,
        help="actor pool size (default: the cluster's CPUs / --threads)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPUs (intra-op threads) per actor")
    p.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=256,
        help="rows per batch handed to an actor",
    )
    p.add_argument(
        "--input-columns",
        "--input_columns",
        dest="input_columns",
        default=None,
        help="parquet columns of the model inputs, comma-separated, in input order",
    )
    p.add_argument(
        "--keep-columns",
        "--keep_columns",
        dest="keep_columns",
        default="",
        help="parquet columns copied to the output (ids)",
    )
    p.add_argument("--weight_dir", default=None, help="folder of external weight files")
    p.add_argument("--log", default="warning", choices=tuple(log_levels))


def batch_command(args: argparse.Namespace) -> int:
    """Execute ``openge batch``."""
    from openge.ray import predict, require_ray

    for name in ("actors", "threads", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise GeError(PARAM_INVALID, f"--{name.replace('_', '-')} must be >= 1, got {value}")
    out_path = check_output_file(args.output, "--output")
    with os.fdopen(open_regular(as_path(args.model, "--model"), "--model"), "rb") as f:
        model_bytes = f.read()
    with Model.from_bytes(model_bytes, args.weight_dir) as probe:
        input_descs = [d for d in probe.inputs if d.name != "ascend_mbatch_shape_data"]
        input_names = [d.name for d in input_descs]
    columns = _input_column_names(args, input_names)
    keep = [c for c in args.keep_columns.split(",") if c]
    block_rows = min(READ_BLOCK_ROWS, args.batch_size)
    blocks, id_columns = _read_input(args.input, input_names, columns, keep, block_rows)
    _check_first_rows(model_bytes, args, dict(zip(input_names, columns)), id_columns, blocks)

    ray = require_ray()
    started_here = False
    if not ray.is_initialized():
        if args.ray_address:
            ray.init(address=args.ray_address, logging_level=logging.WARNING)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        started_here = True
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = args.actors or max(1, cpus // args.threads)
        dataset = ray.data.from_arrow(blocks) if blocks else ray.data.from_items([])
        result = predict(
            dataset,
            ray.put(np.frombuffer(model_bytes, dtype=np.uint8)),
            actors=actors,
            num_cpus=args.threads,
            batch_size=args.batch_size,
            input_columns=dict(zip(input_names, columns)),
            passthrough_columns=id_columns,
            weight_dir=args.weight_dir,
        )
        start = time.perf_counter()
        try:
            rows = _write_parquet(result, out_path)
        except GeError:
            raise
        except Exception as err:  # Ray wraps an actor's GeError in its own exception types
            raise _ge_error_from(err) from err
        seconds = time.perf_counter() - start
    finally:
        if started_here:
            ray.shutdown()
    print(
        f"scored {rows} rows with {actors} actor(s) x {args.threads} thread(s) in "
        f"{seconds:.2f} s ({rows / max(seconds, 1e-9):.1f} rows/s) -> {out_path}"
    )
    return 0


def _check_first_rows(
    model_bytes: bytes, args: argparse.Namespace, mapping: dict, id_columns: list, blocks: list
) -> None:
    """Score the first row on the driver: a bad column, dtype or shape fails here, in one
    clear line, before any Ray work starts."""
    from openge.ray import OmPredictor

    if not blocks or blocks[0].num_rows == 0:
        raise GeError(PARAM_INVALID, f"--input {args.input} has no rows")
    probe = OmPredictor(
        model_bytes,
        input_columns=mapping,
        passthrough_columns=id_columns,
        num_threads=args.threads,
        weight_dir=args.weight_dir,
    )
    probe(blocks[0].slice(0, 1))


def _ge_error_from(err: BaseException) -> GeError:
    """The GeError an actor raised, found in Ray's wrapping, or one that names the failure."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, GeError):
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    first_line = text.splitlines()[0] if text else ""
    return GeError(INTERNAL_ERROR, f"batch scoring failed: {type(err).__name__}: {first_line}")


def _input_column_names(args: argparse.Namespace, input_names: list[str]) -> list[str]:
    if args.input_columns is None:
        return list(input_names)
    columns = [c for c in args.input_columns.split(",") if c]
    if len(columns) != len(input_names):
        raise GeError(
            PARAM_INVALID,
            f"--input-columns names {len(columns)} columns; the model has {len(input_names)} "
            f"inputs ({', '.join(input_names)})",
        )
    return columns


def _read_input(
    source: str, input_names: list[str], columns: list[str], keep: list[str], block_rows: int
) -> tuple[list[Any], list[str]]:
    """Arrow tables (blocks of rows) holding the input columns and the id columns."""
    if os.path.isdir(source):
        if keep:
            raise GeError(PARAM_INVALID, "--keep-columns applies to parquet input only")
        return _read_npy_folder(source, input_names, columns, block_rows), ["file"]
    os.close(open_regular(as_path(source, "--input"), "--input"))  # a FIFO never blocks
    return _read_parquet(source, columns, keep, block_rows), keep


def _read_npy_folder(
    folder: str, input_names: list[str], columns: list[str], block_rows: int
) -> list[Any]:
    import pyarrow as pa

    if len(input_names) == 1:
        dirs = [folder]
    else:
        dirs = [os.path.join(folder, name) for name in input_names]
        for d in dirs:
            if not os.path.isdir(d):
                raise GeError(
                    PARAM_INVALID,
                    f"a model with several inputs reads one sub-folder per input: {d} is missing",
                )
    names = sorted(n for n in os.listdir(dirs[0]) if n.endswith(".npy"))
    if not names:
        raise GeError(PARAM_INVALID, f"no .npy files in {dirs[0]}")
    blocks = []
    for start in range(0, len(names), block_rows):
        part = names[start : start + block_rows]
        data: dict[str, Any] = {}
        for d, column in zip(dirs, columns):
            rows = [load_array(os.path.join(d, n), "input file") for n in part]
            data[column] = _tensor_column(_stack_rows(rows, d))
        data["file"] = pa.array(part)
        blocks.append(pa.table(data))
    return blocks


def _stack_rows(rows: list[np.ndarray], where: str) -> np.ndarray:
    shapes = {r.shape for r in rows}
    if len(shapes) != 1:
        raise GeError(PARAM_INVALID, f"the .npy files in {where} have different shapes: {shapes}")
    return np.stack(rows)


def _tensor_column(array: np.ndarray) -> Any:
    import pyarrow as pa

    if array.ndim == 1:
        return pa.array(array)
    return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(array))


def _read_parquet(path: str, columns: list[str], keep: list[str], block_rows: int) -> list[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise GeError(PARAM_INVALID, f"cannot read parquet file {path}: {err}") from err
    names = parquet.schema_arrow.names
    missing = [c for c in [*columns, *keep] if c not in names]
    if missing:
        raise GeError(
            PARAM_INVALID,
            f"parquet file {path} has no column {', '.join(map(repr, missing))}; its columns "
            f"are {', '.join(names)}",
        )
    wanted = list(dict.fromkeys([*columns, *keep]))
    try:
        return [
            pa.Table.from_batches([b])
            for b in parquet.iter_batches(batch_size=block_rows, columns=wanted)
        ]
    except (OSError, pa.ArrowException) as err:
        raise GeError(PARAM_INVALID, f"cannot read parquet file {path}: {err}") from err


def _write_parquet(dataset: Any, out_path: str) -> int:
    """Stream the result batches into a temporary parquet file, then rename it into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fd, tmp = tempfile.mkstemp(
        prefix=".openge-batch-", suffix=".parquet", dir=os.path.dirname(out_path)
    )
    os.close(fd)
    writer = None
    rows = 0
    try:
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            table = pa.table({k: _tensor_column(np.asarray(v)) for k, v in batch.items()})
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            raise GeError(PARAM_INVALID, "the input has no rows; nothing was written")
        writer.close()
        writer = None
        os.replace(tmp, out_path)
    except BaseException:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return rows
