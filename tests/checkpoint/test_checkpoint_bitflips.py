"""Every single-bit flip in a tensor's stored bytes is caught, exhaustively, on TensorFlow-written files.

V2 checkpoints keep a CRC32C per tensor (and per string/variant element layout): ``get`` raises
CorruptError and ``verify`` names the tensor, for every bit of every tensor of the dtype sample
(the one 16 KiB tensor aside, to keep the run short). V1 checkpoints have no tensor CRC: their
records sit in table blocks whose CRC32C covers them, so a flip anywhere in the data block (or
its trailer) is caught when the tensor is read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from metainspect import CorruptError, MetainspectError, open_checkpoint
from metainspect.formats.table import Table

from helpers.paths import SAMPLES


def _flip(path: Path, offset: int, bit: int) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        byte = os.pread(fd, 1, offset)[0]
        os.pwrite(fd, bytes([byte ^ (1 << bit)]), offset)
    finally:
        os.close(fd)


@pytest.fixture
def dtypes_checkpoint(tmp_path: Path) -> Path:
    for name in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        shutil.copy(SAMPLES / "ckpt_dtypes" / name, tmp_path / name)
    return tmp_path / "model.ckpt"


def test_get_catches_every_bit_flip_in_every_v2_tensor(dtypes_checkpoint: Path) -> None:
    with open_checkpoint(dtypes_checkpoint) as ckpt:
        infos = [info for info in ckpt.infos() if 0 < info.nbytes <= 1024]
    assert len(infos) > 30 and {"string", "variant", "bfloat16", "int4", "complex128"} <= {i.dtype for i in infos}
    flips = 0
    for info in infos:
        (location,) = info.locations
        for offset in range(location.offset, location.offset + location.size):
            for bit in range(8):
                _flip(Path(location.file), offset, bit)
                with open_checkpoint(dtypes_checkpoint) as ckpt, pytest.raises(CorruptError, match=info.name):
                    ckpt.get(info.name)
                _flip(Path(location.file), offset, bit)
                flips += 1
    assert flips == 8 * sum(i.nbytes for i in infos)


@pytest.mark.parametrize("name", ["dt_float32", "dt_string", "dt_variant", "dt_int4"])
def test_verify_names_the_tensor_for_every_bit_flip(dtypes_checkpoint: Path, name: str) -> None:
    with open_checkpoint(dtypes_checkpoint) as ckpt:
        (location,) = ckpt.info(name).locations
    for offset in range(location.offset, location.offset + location.size):
        for bit in range(8):
            _flip(Path(location.file), offset, bit)
            with open_checkpoint(dtypes_checkpoint) as ckpt:
                assert [finding.name for finding in ckpt.verify()] == [name]
            _flip(Path(location.file), offset, bit)


def test_v1_block_crc_catches_every_bit_flip_in_the_records(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    shutil.copy(SAMPLES / "ckpt_v1" / "model.ckpt", path)
    table = Table.open(path)
    (block,) = table.blocks
    table.close()
    for offset in range(block.offset, block.offset + block.size + 5):  # the contents and the 5-byte trailer
        for bit in range(8):
            _flip(path, offset, bit)
            with pytest.raises(MetainspectError), open_checkpoint(path) as ckpt:
                for name in ckpt.keys():
                    ckpt.get(name)
            _flip(path, offset, bit)
