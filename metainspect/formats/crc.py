"""CRC32C as TensorFlow stores it: Castagnoli CRC, "masked" before it is written to disk.

The ``crc32c`` package checksums any buffer (a memoryview of a memory map included) without
copying it, in hardware where the CPU allows. It is imported on first use: its import costs
tens of milliseconds that listing commands should not pay twice.
"""

from __future__ import annotations

from collections.abc import Callable

from metainspect.formats.wire import BytesLike

MASK_DELTA = 0xA282EAD8
_crc32c: Callable[..., int] | None = None


def crc32c(data: BytesLike, value: int = 0) -> int:
    """Return the CRC32C of ``data``, continuing from ``value`` (a previous unmasked CRC)."""
    global _crc32c
    if _crc32c is None:
        _crc32c = _load_implementation()
    return _crc32c(data, value)


def _load_implementation() -> Callable[..., int]:
    """The ``crc32c`` package's C function, loaded without running the package ``__init__``.

    That ``__init__`` imports ``importlib.metadata`` just to set ``__version__`` (measured 15-20 ms,
    a twentieth of a whole ``vars`` run); the extension module alone loads in well under 1 ms.
    Any surprise in the package layout falls back to the ordinary import.
    """
    import importlib.machinery
    import importlib.util
    import os

    spec = importlib.util.find_spec("crc32c")
    for location in spec.submodule_search_locations or () if spec else ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(location, "_crc32c" + suffix)
            if os.path.isfile(path):
                loader = importlib.machinery.ExtensionFileLoader("crc32c._crc32c", path)
                extension = importlib.util.spec_from_file_location("crc32c._crc32c", path, loader=loader)
                if extension is not None:
                    module = importlib.util.module_from_spec(extension)
                    loader.exec_module(module)
                    return module.crc32c  # type: ignore[no-any-return]
    from crc32c import crc32c as implementation

    return implementation


def mask(crc: int) -> int:
    """Mask a CRC the way TensorFlow does before storing it (rotate right 15, add a delta)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Invert :func:`mask`."""
    rot = (masked - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
