"""atheris harness: ``parse_onnx`` then ``compile_graph`` on mutated ONNX models.

Any exception other than GeError is a finding (atheris reports it and stops). Inputs are
mutated two ways: libFuzzer's byte mutations, and a structure-aware mutator that decodes the
model and changes one field (a dim, an attribute, a tensor's type or data, an input name, the
node order, an op type ...) before encoding it again, so most inputs stay parseable protobufs
and reach the parser's checks.

Run (from the repository root):
    python tests/fuzz/fuzz_parse_onnx.py [--full-seeds] [--no-compile] CORPUS_DIR [libFuzzer flags]
e.g. ``-runs=2000`` or ``-max_total_time=3600``, ``-rss_limit_mb=2048 -timeout=20``. The seed
corpus (tests/fuzz/onnx_seeds.py) is written into CORPUS_DIR first when it is empty.
"""

from __future__ import annotations

import logging
import os
import random
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

with atheris.instrument_imports(include=["openge"]):
    from openge.compiler import compile_graph
    from openge.errors import GeError
    from openge.parser import parse_onnx

import onnx  # noqa: E402  (after the instrumented imports)

COMPILE = True
#: Small folding limits keep each run fast (and exercise the limits themselves).
COMPILE_OPTIONS = {
    "openge.constantFoldingMaxBytes": str(8 << 20),
    "openge.constantFoldingBudgetBytes": str(16 << 20),
}
_EXTREMES = (0, 1, -1, -2, 2**31 - 1, 2**31, 2**62, -(2**63), 2**63 - 1, 65536, 10**8)
_OPS = ("Relu", "Add", "Reshape", "Expand", "Tile", "ConstantOfShape", "Range", "Gather",
        "Concat", "Slice", "Conv", "MatMul", "If", "Loop", "Constant", "Identity", "Cast",
        "Split", "Transpose", "Pad", "Resize", "TopK", "LSTM", "Einsum", "NonZero")  # fmt: skip


def _int(rng: random.Random) -> int:
    return rng.choice(_EXTREMES) if rng.random() < 0.7 else rng.randint(-(2**63), 2**63 - 1)


def _tensors(model: onnx.ModelProto) -> list:
    found = list(model.graph.initializer)
    for node in model.graph.node:
        found += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
    return found


def _mutate_model(model: onnx.ModelProto, rng: random.Random) -> None:
    g = model.graph
    nodes = list(g.node)
    names = [n for node in nodes for n in [*node.input, *node.output]] + [v.name for v in g.input]
    choice = rng.randrange(12)
    if choice == 0 and _tensors(model):
        t = rng.choice(_tensors(model))
        if t.dims:
            t.dims[rng.randrange(len(t.dims))] = _int(rng)
        else:
            t.dims.append(_int(rng))
    elif choice == 1 and _tensors(model):
        rng.choice(_tensors(model)).data_type = rng.randrange(0, 26)
    elif choice == 2 and _tensors(model):
        t = rng.choice(_tensors(model))
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)] if t.raw_data else b"\0" * 8
    elif choice == 3 and nodes:
        node = rng.choice(nodes)
        ints = [a for a in node.attribute if a.type in (2, 7)]
        if ints:
            a = rng.choice(ints)
            if a.type == 2:
                a.i = _int(rng)
            elif a.ints:
                a.ints[rng.randrange(len(a.ints))] = _int(rng)
    elif choice == 4 and nodes and names:
        node = rng.choice(nodes)
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif choice == 5 and len(nodes) > 1:
        rng.shuffle(nodes)
        del g.node[:]
        g.node.extend(nodes)
    elif choice == 6 and nodes:
        g.node.append(rng.choice(nodes))  # a second producer
    elif choice == 7 and nodes:
        rng.choice(nodes).op_type = rng.choice(_OPS)
    elif choice == 8 and g.input:
        vi = rng.choice(list(g.input))
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[rng.randrange(len(dims))].dim_value = _int(rng)
    elif choice == 9 and g.output and names:
        g.output[rng.randrange(len(g.output))].name = rng.choice(names)
    elif choice == 10 and model.opset_import:
        model.opset_import[0].version = rng.choice((1, 6, 7, 11, 13, 17, 18, 21, 99))
    elif choice == 11 and _tensors(model):
        t = rng.choice(_tensors(model))
        t.data_location = onnx.TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = rng.choice(
            [("location", "w.bin"), ("location", "../x"), ("offset", "abc"), ("length", "-1")]
        )


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Half the time a structural mutation of the decoded model, else libFuzzer's bytes."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        try:
            model = onnx.ModelProto.FromString(data)
            for _ in range(rng.randint(1, 3)):
                _mutate_model(model, rng)
            out = model.SerializeToString()
            if len(out) <= max_size:
                return out
        except Exception:  # not a decodable (or encodable) model: fall back to bytes
            pass
    return atheris.Mutate(data, max_size)


def test_one_input(data: bytes) -> None:
    """Parse (and compile) one input; GeError is the only accepted failure."""
    try:
        graph = parse_onnx(data)
        if COMPILE:
            compile_graph(graph, COMPILE_OPTIONS)
    except GeError:
        pass


def main(argv: list[str]) -> None:
    global COMPILE
    logging.disable(logging.WARNING)
    full = "--full-seeds" in argv
    if "--no-compile" in argv:
        COMPILE = False
    argv = [a for a in argv if a not in ("--full-seeds", "--no-compile")]
    corpus = next((a for a in argv[1:] if not a.startswith("-")), None)
    if corpus is not None and (not os.path.isdir(corpus) or not os.listdir(corpus)):
        from onnx_seeds import write_corpus

        write_corpus(corpus, full=full)
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
