"""Git LFS pointer files: what a repository holds in place of a large file it never fetched.

A pointer is a small text file (under 1024 bytes) whose first line is
``version https://git-lfs.github.com/spec/v1``, with ``oid sha256:<64 hex digits>`` and
``size <bytes>`` lines (the Git LFS specification). Every local file metainspect reads is
checked for this (:mod:`metainspect.formats.source`), so a model committed through LFS and
cloned without it is named for what it is instead of "bad magic" or "not a graph".
"""

from __future__ import annotations

import re

#: pointer files are smaller than this (the specification's limit)
MAX_POINTER_SIZE = 1024
_VERSION = b"version https://git-lfs.github.com/spec/v1\n"
_OID = re.compile(rb"^oid (sha256:[0-9a-f]{64})$", re.MULTILINE)
_SIZE = re.compile(rb"^size (\d+)$", re.MULTILINE)


def parse_pointer(head: bytes) -> tuple[str, int] | None:
    """``(oid, size)`` when ``head`` (a whole file under 1 KiB) is an LFS pointer, else None."""
    if not head.startswith(_VERSION) or len(head) >= MAX_POINTER_SIZE:
        return None
    oid, size = _OID.search(head), _SIZE.search(head)
    if oid is None or size is None:
        return None
    return oid.group(1).decode(), int(size.group(1))
