#!/usr/bin/env bash
# Regenerate openge/om/ge_ir_pb2.py and openge/om/task_pb2.py, and their .pyi type stubs (for
# mypy), from openge/om/ge_ir.proto and openge/om/task.proto. The generated files are committed;
# run this after editing a .proto.
#
# Protobuf runtime: the generated modules check the runtime version at import; it must be at
# least the version of the protoc used here (grpcio-tools bundles it; the Python gencode version
# is printed below as "Protobuf Python Version" in the generated headers), with the same major.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"  # needs grpcio-tools installed
"$PYTHON" -m grpc_tools.protoc --proto_path=openge/om \
    --python_out=openge/om --pyi_out=openge/om \
    openge/om/ge_ir.proto openge/om/task.proto
# The stubs are machine-written: keep ruff off them (pyproject excludes only the *_pb2.py).
for stub in openge/om/ge_ir_pb2.pyi openge/om/task_pb2.pyi; do
    printf '# ruff: noqa\n%s\n' "$(cat "$stub")" > "$stub"
done
# The data-dump header (toolkit.dump.DumpData). Without grpcio-tools, tools/gen_proto_py.py
# writes the same module from the .proto.
"$PYTHON" -m grpc_tools.protoc --proto_path=openge/runtime --python_out=openge/runtime \
    openge/runtime/dump_data.proto
"$PYTHON" -m grpc_tools.protoc --version
grep -h "Protobuf Python Version" openge/om/ge_ir_pb2.py
