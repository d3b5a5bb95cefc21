"""atheris harnesses for untrusted .om input: ``Model.from_bytes`` (+ execute) and the .om reader.

Run (Linux; atheris is in the ``test`` extra)::

    python tests/fuzz/fuzz_om.py from_bytes [libFuzzer flags, e.g. -max_total_time=600]
    python tests/fuzz/fuzz_om.py reader -runs=20000

Targets:

* ``from_bytes`` — ``Model.from_bytes(data)``; a model that loads is executed once on zeros;
* ``reader`` — ``read_info``, ``read_model_def``, ``deserialize``, ``check_compatibility``,
  ``query_size`` and the CLI's JSON dump (``om_to_dict``) of the same bytes.

The only exception allowed out is ``GeError``: anything else, a hang (``-timeout``) or a memory
blow-up (``-rss_limit_mb``) is a finding; each one found became a test in tests/security/.

The seed corpus is real .om files openge writes (tests/fuzz/seeds.py), generated at start into a
temp folder unless corpus folders are given. The mutator is structure-aware: most mutations
change one partition of the container, one field of the task list (an attr set to an extreme
value, a slot's shape, offset or type) and then re-pack the container with a valid table and
SHA-256, so they reach the decoders and validators behind the checksum; a few are raw byte
mutations of the whole file.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repo root: openge, tests

import atheris  # noqa: E402

with atheris.instrument_imports(include=["openge"]):
    from openge.errors import GeError
    from openge.om import container as ct
    from openge.om import task_pb2 as tp
    from openge.om.reader import deserialize, read_info, read_model_def
    from openge.runtime import Model, check_compatibility, query_size

from tests.fuzz.run_once import ARENA_LIMIT, execute_on_zeros, rss_bounded  # noqa: E402

#: Values a mutated attr or dim takes: the edges kernels and size arithmetic trip on.
_EXTREME_INTS = (0, -1, 1, 2, 3, -(1 << 63), (1 << 63) - 1, 1 << 31, 1 << 40, 7, 1000003)
_EXTREME_FLOATS = (0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, -1.0)


# ----- the mutator ---------------------------------------------------------------------------


def _split(data: bytes):
    pc = ct.parse_container(data, verify_checksum=False)
    return pc.header, [(p.type, bytes(pc.view(p))) for p in pc.partitions]


def _pack(header, parts) -> bytes:
    return ct.pack_container(header, parts)


def _mutate_value(value, rng: random.Random) -> None:
    kind = value.WhichOneof("value")
    choice = rng.randrange(6)
    if choice == 0:
        value.i = rng.choice(_EXTREME_INTS)
    elif choice == 1:
        value.f = rng.choice(_EXTREME_FLOATS)
    elif choice == 2:
        value.s = rng.choice(["", "x", "NCHW", "NHWC", "SAME", '{"steps": [', "[" * 5000])
    elif choice == 3 or kind == "list":
        lst = value.list
        lst.kind = tp.AttrList.INT
        del lst.i[:]
        lst.i.extend(rng.choice(_EXTREME_INTS) for _ in range(rng.randrange(0, 6)))
    elif choice == 4:
        value.b = bool(rng.randrange(2))
    else:
        value.dt = rng.randrange(-2, 40)


def _mutate_task_list(body: bytes, rng: random.Random) -> bytes:
    tl = tp.TaskList.FromString(body)
    targets = []
    for task in tl.tasks:
        targets.extend(("attr", a) for a in task.attrs)
        targets.extend(("slot", s) for s in (*task.inputs, *task.outputs))
    if rng.random() < 0.1:  # io changes mostly meet the io agreement check: rarely
        targets.extend(("io", d) for d in (*tl.inputs, *tl.outputs))
    targets.append(("model", tl))
    what, target = rng.choice(targets)
    if what == "attr":
        _mutate_value(target.value, rng)
    elif what in ("slot", "io"):
        field = rng.choice(["shape", "dtype", "offset" if what == "slot" else "format", "kind"])
        if field == "shape" and len(target.shape):
            target.shape[rng.randrange(len(target.shape))] = rng.choice(_EXTREME_INTS)
        elif field == "shape":
            target.shape.append(rng.choice(_EXTREME_INTS))
        elif field == "dtype":
            target.dtype = rng.randrange(-1, 40)
        elif field == "offset" and what == "slot":
            target.offset = rng.choice([0, 1, 64, 512, 1 << 20, (1 << 64) - 1])
        elif field == "format":
            target.format = rng.randrange(-1, 50)
        elif what == "slot":
            target.kind = rng.randrange(0, 8)
    else:
        field = rng.choice(["memory_size", "weight_size", "tasks", "outputs"])
        if field == "memory_size":
            tl.memory_size = rng.choice([0, 1, 1 << 40, (1 << 64) - 1])
        elif field == "weight_size":
            tl.weight_size = rng.choice([0, 1, 1 << 40])
        elif field == "tasks" and len(tl.tasks):
            del tl.tasks[rng.randrange(len(tl.tasks))]
        elif len(tl.outputs):
            tl.outputs.add().CopyFrom(tl.outputs[0])
    return tl.SerializeToString()


def _fix_counts(header, parts):
    """Keep the header's op count and the ModelDef sizes consistent with a mutated task list,
    so the mutation reaches the validators (a stale count alone is refused early)."""
    from dataclasses import replace

    for ptype, payload in parts:
        if ptype == ct.PartitionType.TASK_INFO and len(payload) >= ct.TASK_INFO_HEAD.size:
            _, _, length = ct.TASK_INFO_HEAD.unpack_from(payload, 0)
            body = payload[ct.TASK_INFO_HEAD.size : ct.TASK_INFO_HEAD.size + length]
            try:
                return replace(header, ops=len(tp.TaskList.FromString(body).tasks))
            except Exception:
                return header
    return header


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.1:
        return atheris.Mutate(data, max_size)
    try:
        header, parts = _split(data)
    except GeError:
        return atheris.Mutate(data, max_size)
    # Mostly the task list (what the validators check), sometimes another partition.
    types = [p for p, _ in parts]
    want = rng.choices(
        [ct.PartitionType.TASK_INFO, ct.PartitionType.MODEL_DEF, ct.PartitionType.MODEL_INOUT_INFO],
        weights=[0.7, 0.2, 0.1],
    )[0]
    index = types.index(want) if want in types else rng.randrange(len(parts))
    ptype, payload = parts[index]
    if ptype == ct.PartitionType.TASK_INFO and len(payload) >= ct.TASK_INFO_HEAD.size:
        magic, major, length = ct.TASK_INFO_HEAD.unpack_from(payload, 0)
        body = payload[ct.TASK_INFO_HEAD.size : ct.TASK_INFO_HEAD.size + length]
        try:
            body = (
                _mutate_task_list(body, rng)
                if rng.random() < 0.7
                else atheris.Mutate(body, len(body) * 2 + 64)
            )
        except Exception:
            body = atheris.Mutate(body, len(body) * 2 + 64)
        payload = ct.TASK_INFO_HEAD.pack(magic, major, len(body)) + body
    elif ptype == ct.PartitionType.WEIGHTS_DATA and rng.random() < 0.8:
        return atheris.Mutate(data, max_size)
    else:
        payload = atheris.Mutate(payload, len(payload) * 2 + 64)
    parts[index] = (ptype, payload)
    header = _fix_counts(header, parts)
    try:
        out = _pack(header, parts)
    except GeError:
        return atheris.Mutate(data, max_size)
    return out if len(out) <= max_size else data


# ----- the targets ---------------------------------------------------------------------------


def _execute(model: Model) -> None:
    execute_on_zeros(model)


def target_from_bytes(data: bytes) -> None:
    try:
        model = Model.from_bytes(data)
    except GeError:
        return
    with model:
        _execute(model)


def target_reader(data: bytes) -> None:
    from openge.cli.atc import om_to_dict

    for fn in (read_info, read_model_def, deserialize, check_compatibility, query_size):
        with contextlib.suppress(GeError):
            fn(data)
    with contextlib.suppress(GeError):
        om_to_dict(memoryview(data))


TARGETS = {"from_bytes": target_from_bytes, "reader": target_reader}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: {argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
        sys.exit(2)
    # A model within the limits may legitimately use up to max_arena_bytes when it runs: keep
    # that small here, so that any input using much more memory is a finding.
    os.environ.setdefault("OPENGE_MAX_ARENA_BYTES", str(ARENA_LIMIT))
    target = rss_bounded(TARGETS[argv[1]])
    rest = argv[2:]
    if not any(not a.startswith("-") for a in rest):  # no corpus given: generate the seeds
        from tests.fuzz.seeds import write_seed_corpus

        corpus = tempfile.mkdtemp(prefix="openge_fuzz_corpus_")
        weights = tempfile.mkdtemp(prefix="openge_fuzz_weights_")
        write_seed_corpus(corpus, weights)
        rest = [*rest, corpus]
    atheris.Setup([argv[0], *rest], target, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
