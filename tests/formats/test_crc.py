"""CRC32C as TF stores it, and the fast load of the crc32c extension."""

from __future__ import annotations

import mmap
import subprocess
import sys

import crc32c

from metainspect.formats import crc


def test_check_value_and_continuation() -> None:
    assert crc.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc.crc32c(b"6789", crc.crc32c(b"12345")) == 0xE3069283


def test_mask_round_trip_matches_tensorflow_constants() -> None:
    # TF's masked CRC of an empty buffer (crc 0): rotate right 15 of 0, plus the delta
    assert crc.mask(0) == 0xA282EAD8
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert crc.unmask(crc.mask(value)) == value


def test_extension_loaded_directly_equals_the_package_function(tmp_path) -> None:  # type: ignore[no-untyped-def]
    implementation = crc._load_implementation()
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 1000)
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        assert implementation(view) == crc32c.crc32c(bytes(view))
        view.release()


def test_first_use_does_not_import_importlib_metadata() -> None:
    code = ("import sys; from metainspect.formats import crc; crc.crc32c(b'x'); "
            "print('importlib.metadata' in sys.modules, 'crc32c' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
