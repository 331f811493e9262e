"""The generated modules match protos/ and never define `tensorflow.*` messages."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from helpers.paths import ROOT

MODULES = sorted(p.stem for p in (ROOT / "metainspect" / "proto").glob("*_pb2.py"))


def test_generated_modules_are_up_to_date() -> None:
    pytest.importorskip("grpc_tools")
    proc = subprocess.run([sys.executable, "protos/build.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", MODULES)
def test_no_tensorflow_package(name: str) -> None:
    module = importlib.import_module(f"metainspect.proto.{name}")
    assert module.DESCRIPTOR.package == "metainspect"
