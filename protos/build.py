"""Regenerate ``metainspect/proto/*_pb2.py`` from the ``.proto`` sources in this folder.

The sources import TensorBoard's generated protos (package ``tensorboard``), whose ``.proto``
files are not shipped in the wheel; protoc therefore reads them from a descriptor set built
from the installed ``tensorboard`` package. Needs ``grpcio-tools`` (in the ``test`` extra)::

    python protos/build.py           # rewrite the generated modules
    python protos/build.py --check   # exit 1 if they are out of date (used by the tests)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
SOURCES = sorted((HERE / "metainspect" / "proto").glob("*.proto"))
OUTPUT = HERE.parent / "metainspect" / "proto"
TENSORBOARD_DEPS = ("meta_graph", "tensor_shape", "types", "versions", "tensor")


def _tensorboard_descriptor_set() -> bytes:
    """Serialize the transitive closure of the TensorBoard protos our sources import."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def visit(file_descriptor) -> None:  # type: ignore[no-untyped-def]
        if file_descriptor.name in files:
            return
        for dep in file_descriptor.dependencies:
            visit(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file_descriptor.CopyToProto(proto)
        files[file_descriptor.name] = proto

    for name in TENSORBOARD_DEPS:
        visit(importlib.import_module(f"tensorboard.compat.proto.{name}_pb2").DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=list(files.values())).SerializeToString()


def generate(out_dir: Path) -> None:
    """Run protoc on every source, writing ``*_pb2.py`` modules below ``out_dir``."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp) / "tensorboard.binpb"
        deps.write_bytes(_tensorboard_descriptor_set())
        args = ["protoc", f"--proto_path={HERE}", f"--descriptor_set_in={deps}", f"--python_out={out_dir}"]
        args += [str(src.relative_to(HERE)) for src in SOURCES]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if not args.check:
        generate(HERE.parent)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = [
            src.stem for src in SOURCES
            if (Path(tmp) / "metainspect/proto" / f"{src.stem}_pb2.py").read_bytes()
            != (OUTPUT / f"{src.stem}_pb2.py").read_bytes()
        ]
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python protos/build.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
