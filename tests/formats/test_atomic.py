"""Atomic writes: complete or absent, never partial, with ordinary file modes."""

from __future__ import annotations

import os
import stat

import pytest

from metainspect.errors import MetainspectError
from metainspect.formats.atomic import new_directory, replacing, write_bytes


def _mode(path: os.PathLike[str] | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_bytes_creates_with_the_umask_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "out.bin", b"abc")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").read_bytes() == b"abc"
    assert _mode(tmp_path / "out.bin") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_replacing_keeps_the_replaced_files_mode_and_leaves_it_alone_on_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "model.meta"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError), replacing(target) as tmp, open(tmp, "wb") as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.meta"]
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640


def test_new_directory_refuses_existing_and_cleans_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "exists").mkdir()
    with pytest.raises(MetainspectError, match="already exists"), new_directory(tmp_path / "exists"):
        pass
    with pytest.raises(RuntimeError), new_directory(tmp_path / "out") as tmp:
        (open(os.path.join(tmp, "f"), "wb")).close()
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]
    old = os.umask(0o022)
    try:
        with new_directory(tmp_path / "out") as tmp:
            (open(os.path.join(tmp, "f"), "wb")).close()
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "f").exists() and _mode(tmp_path / "out") == 0o755


def test_write_bytes_creates_missing_parent_directories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_bytes(tmp_path / "a" / "b" / "model.meta", b"x")
    assert (tmp_path / "a" / "b" / "model.meta").read_bytes() == b"x"
