"""Unusable inputs and refused conversions: one line naming the file (and the tensor), exit 2,
nothing written; hostile sizes never allocate."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from metainspect.convert.safetensors import MAX_HEADER, read_header
from metainspect.errors import CorruptError

from helpers.paths import SAMPLES


def _safetensors(path: Path, header: bytes | dict[str, Any], data: bytes = b"", length: int | None = None) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def _refused(cli: Any, source: Path, *words: str, to: str = "checkpoint") -> None:
    out = source.parent / "out"
    result = cli("convert", str(source), "-o", str(out), "--to", to)
    assert result.code == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"metainspect: {source}"), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert sorted(p.name for p in source.parent.iterdir()) == [source.name]  # nothing written, no temp left


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(("header", "data", "length", "words"), [
    (b"", b"", 0, ["not valid JSON"]),
    (b'{"a": 1}', b"", 1000, ["truncated", "header length is 1000"]),
    (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "t": {}}', bytes(8), None, ["duplicate name 't'"]),
    ({"t": F32}, bytes(4), None, ["tensor 't'", "past the end"]),
    ({"t": {**F32, "data_offsets": [0, 12]}}, bytes(12), None, ["tensor 't'", "holds 12 bytes", "needs 8"]),
    ({"t": {**F32, "dtype": "F8_E8M0", "data_offsets": [0, 2]}}, bytes(2), None, ["tensor 't'", "F8_E8M0"]),
    ({"t": {**F32, "shape": [-2]}}, bytes(8), None, ["tensor 't'", "shape"]),
    ({"t": F32, "u": F32}, bytes(8), None, ["tensor 'u'", "overlap"]),
    ({"__metadata__": {"a": 1}}, b"", None, ["__metadata__"]),
    (b"[" * 100000, b"", None, ["not valid JSON"]),
    (b"\xff{}", b"", None, ["not UTF-8"]),
])
def test_bad_safetensors(tmp_path: Path, cli: Any, header: Any, data: bytes, length: int | None,
                         words: list[str]) -> None:
    _refused(cli, _safetensors(tmp_path / "bad.safetensors", header, data, length), *words)


def test_file_too_short_for_a_header_length(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02")
    _refused(cli, path, "truncated", "8-byte header length")


def test_hostile_header_length_allocates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A length of 2^63 is refused from the file size; a huge one within a sparse file by the limit,
    both before anything is read past the first 8 bytes."""
    from metainspect.formats.source import LocalFile

    reads: list[tuple[int, int]] = []
    original = LocalFile.read_bytes

    def counting(self: LocalFile, offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return original(self, offset, length)

    monkeypatch.setattr(LocalFile, "read_bytes", counting)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 1 << 63) + b"{}")
    with pytest.raises(CorruptError, match="truncated"):
        read_header(str(huge))
    sparse = tmp_path / "sparse.safetensors"
    with open(sparse, "wb") as handle:
        handle.write(struct.pack("<Q", MAX_HEADER + 1))
        handle.truncate(MAX_HEADER + 64)
    with pytest.raises(CorruptError, match="limit"):
        read_header(str(sparse))
    assert reads == [(0, 8), (0, 8)]


def test_collision_after_rename(tmp_path: Path, cli: Any) -> None:
    source = tmp_path / "in.safetensors"
    save_file({"a/w": np.ones(2, np.float32), "b/w": np.zeros(2, np.float32)}, str(source))
    out = tmp_path / "out.npz"
    result = cli("convert", str(source), "-o", str(out), "--rename", "re:^[ab]/=x/")
    assert result.code == 2 and str(source) in result.stderr and "'a/w' and 'b/w' would both become 'x/w'" in result.stderr
    assert not out.exists()


def test_existing_output_is_never_overwritten(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep")
    result = cli("convert", str(SAMPLES / "mlp"), "-o", str(out))
    assert result.code == 2 and "already exists" in result.stderr and out.read_bytes() == b"keep"


def test_tensor_named_like_the_metadata(tmp_path: Path, cli: Any) -> None:
    source = tmp_path / "in.npz"
    np.savez(source, w=np.ones(2, np.float32))
    result = cli("convert", str(source), "-o", str(tmp_path / "o.safetensors"), "--rename", "w=__metadata__")
    assert result.code == 2 and "tensor 'w'" in result.stderr and "__metadata__" in result.stderr


def test_missing_data_shard(tmp_path: Path, cli: Any) -> None:
    import shutil

    shutil.copytree(SAMPLES / "convert" / "t5", tmp_path / "t5")
    (tmp_path / "t5" / "model.ckpt-10.data-00002-of-00003").unlink()
    result = cli("convert", str(tmp_path / "t5"), "-o", str(tmp_path / "o.safetensors"))
    assert result.code == 2 and "data-00002-of-00003" in result.stderr and "missing" in result.stderr
    assert not (tmp_path / "o.safetensors").exists()


def _npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(("members", "words"), [
    ({"a.npy": _npy(np.ones(2)), "b.txt": b"x"}, ["member 'b.txt'", "not an .npy"]),
    ({"a.npy": _npy(np.array([object()], dtype=object))}, ["array 'a'", "pickle"]),
    ({"a.npy": _npy(np.ones(4))[:-8]}, ["array 'a'", "needs 32"]),
    ({"a.npy": b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8'"}, ["array 'a'", "bad .npy header"]),
    ({"a.npy": _npy(np.array([1], dtype="datetime64[s]"))}, ["array 'a'", "no type for"]),
    ({"a.npy": _npy(np.ones(1)), "__metadata__.npy": _npy(np.array("{not json"))}, ["__metadata__"]),
])
def test_bad_npz(tmp_path: Path, cli: Any, members: dict[str, bytes], words: list[str]) -> None:
    _refused(cli, _npz(tmp_path / "bad.npz", members), *words)


def test_npz_duplicate_members(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "dup.npz"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", _npy(np.ones(1)))
        archive.writestr("a.npy", _npy(np.ones(1)))
    _refused(cli, path, "duplicate member 'a.npy'")


def test_not_a_zip(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(b"not a zip at all")
    _refused(cli, path, "not a readable zip")
