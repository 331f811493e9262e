"""CRC32C as TensorFlow stores it: Castagnoli CRC, "masked" before it is written to disk.

The ``crc32c`` package checksums any buffer (a memoryview of a memory map included) without
copying it, in hardware where the CPU allows. It is imported on first use: its import costs
tens of milliseconds that listing commands should not pay twice.
"""

from __future__ import annotations

from typing import Callable

from metainspect.wire import BytesLike

MASK_DELTA = 0xA282EAD8
_crc32c: Callable[..., int] | None = None


def crc32c(data: BytesLike, value: int = 0) -> int:
    """Return the CRC32C of ``data``, continuing from ``value`` (a previous unmasked CRC)."""
    global _crc32c
    if _crc32c is None:
        from crc32c import crc32c as implementation

        _crc32c = implementation
    return _crc32c(data, value)


def mask(crc: int) -> int:
    """Mask a CRC the way TensorFlow does before storing it (rotate right 15, add a delta)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Invert :func:`mask`."""
    rot = (masked - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
