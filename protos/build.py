"""Regenerate ``metainspect/proto/*_pb2.py`` (and their ``.pyi`` stubs) from the ``.proto`` sources here.

The sources import TensorBoard's generated protos (package ``tensorboard``), whose ``.proto``
files are not shipped in the wheel; protoc therefore reads them from a descriptor set built
from the installed ``tensorboard`` package. TensorBoard ships no type information either, so
the same descriptor set also yields ``typings/tensorboard/compat/proto/*_pb2.pyi``: stubs for
every TensorBoard proto metainspect imports (and what those import), found by mypy through
``mypy_path``. Needs ``grpcio-tools`` (in the ``test`` extra)::

    python protos/build.py           # rewrite the generated modules and stubs
    python protos/build.py --check   # exit 1 if they are out of date (used by the tests)

``--check`` compares metainspect's own modules and stubs byte for byte. For the TensorBoard
stubs it compares the list of files only: their contents follow the installed TensorBoard
release, and the committed ones were written from the release named in ``typings/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor, descriptor_pb2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCES = sorted((HERE / "metainspect" / "proto").glob("*.proto"))
OUTPUT = ROOT / "metainspect" / "proto"
TYPINGS = ROOT / "typings"
TENSORBOARD_PROTO = "tensorboard/compat/proto"
#: ``tensorboard.compat.proto.X_pb2`` named in metainspect's source or in the generated modules
_IMPORT = re.compile(r"tensorboard\.compat\.proto(?:\.| import )(\w+)_pb2")


def _tensorboard_modules() -> list[ModuleType]:
    """The TensorBoard proto modules metainspect and the protos/ sources import."""
    names: set[str] = set()
    for path in (ROOT / "metainspect").rglob("*.py"):
        names.update(_IMPORT.findall(path.read_text(encoding="utf-8")))
    for source in SOURCES:
        names.update(re.findall(rf'^import "{TENSORBOARD_PROTO}/(\w+)\.proto";', source.read_text(), re.M))
    return [importlib.import_module(f"tensorboard.compat.proto.{name}_pb2") for name in sorted(names)]


def _tensorboard_descriptor_set() -> tuple[bytes, list[str]]:
    """Serialize the transitive closure of those TensorBoard protos; also return their file names."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def visit(file_descriptor: descriptor.FileDescriptor) -> None:
        if file_descriptor.name in files:
            return
        for dep in file_descriptor.dependencies:
            visit(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file_descriptor.CopyToProto(proto)
        files[file_descriptor.name] = proto

    for module in _tensorboard_modules():
        visit(module.DESCRIPTOR)
    stubbed = sorted(name for name in files if name.startswith(TENSORBOARD_PROTO + "/"))
    return descriptor_pb2.FileDescriptorSet(file=list(files.values())).SerializeToString(), stubbed


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    if protoc.main(["protoc", *args]) != 0:
        raise SystemExit("protoc failed")


def generate(out_root: Path) -> None:
    """Write ``metainspect/proto/*_pb2.py(i)`` and ``typings/`` below ``out_root``."""
    deps_set, stubbed = _tensorboard_descriptor_set()
    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp) / "tensorboard.binpb"
        deps.write_bytes(deps_set)
        _protoc([f"--proto_path={HERE}", f"--descriptor_set_in={deps}", f"--python_out={out_root}",
                 f"--pyi_out={out_root}", *(str(src.relative_to(HERE)) for src in SOURCES)])
        typings = out_root / "typings"
        for old in typings.glob(f"{TENSORBOARD_PROTO}/*_pb2.pyi"):
            old.unlink()
        typings.mkdir(exist_ok=True)
        _protoc([f"--descriptor_set_in={deps}", f"--pyi_out={typings}", *stubbed])


def _stale(fresh_root: Path) -> list[str]:
    """What differs between a fresh generation in ``fresh_root`` and the committed files."""
    stale = []
    for src in SOURCES:
        for suffix in (".py", ".pyi"):
            name = f"{src.stem}_pb2{suffix}"
            committed, fresh = OUTPUT / name, fresh_root / "metainspect/proto" / name
            if not committed.is_file() or fresh.read_bytes() != committed.read_bytes():
                stale.append(f"metainspect/proto/{name}")
    stubs = f"{TENSORBOARD_PROTO}/*_pb2.pyi"
    fresh_stubs = {p.name for p in (fresh_root / "typings").glob(stubs)}
    committed_stubs = {p.name for p in TYPINGS.glob(stubs)}
    stale += [f"typings/{TENSORBOARD_PROTO}/{name}" for name in sorted(fresh_stubs ^ committed_stubs)]
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if not args.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = _stale(Path(tmp))
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python protos/build.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
