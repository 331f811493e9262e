"""A reference index of a V2 checkpoint: every tensor as a zarr (format 2) array over its bytes.

The index is fsspec's ``ReferenceFileSystem`` JSON (version 1, the format kerchunk writes):
``refs`` maps zarr keys to inline metadata or to ``[URL, offset, length]`` of a byte range in
a data shard. Each tensor stored whole is one array whose single chunk is its byte range;
``zarr``, ``xarray`` and ``dask.array.from_zarr`` then read the checkpoint where it lies, with
neither metainspect nor TensorFlow at read time. Data shard URLs are ``templates`` (``{{d0}}``…).

* ``.zarray``: dtype with its byte order (big-endian bundles stay big-endian), ``shape``,
  ``chunks`` = ``shape`` (at least 1 per axis), no compressor and no filters, C order,
  ``fill_value`` null. ``.zattrs``: ``tf_name``, ``tf_dtype`` and ``_ARRAY_DIMENSIONS`` (one
  name per axis, unique in its group, so xarray opens every group).
* Types zarr format 2 cannot name (``bfloat16``, the ``float8``/``int4``/``int2``/``float4``
  families) are stored as raw unsigned integers of the same width (``<u2``, ``|u1``) with
  ``raw: true`` and the TensorFlow type in ``tf_dtype``: ``array.view(ml_dtypes.bfloat16)``
  gives the values. Quantized types use their storage integer type (``qint8`` is ``|i1``).
* Paths are the TensorFlow names split at ``/``. A segment is kept when it is letters, digits,
  ``_``, ``-`` and ``.`` not leading (zarr hides names starting with a dot); any other byte is
  written ``%XX`` (UTF-8, so ``.ATTRIBUTES`` is ``%2EATTRIBUTES``), a segment starting with
  ``__`` (reserved) becomes ``%5F_…``, an empty one ``%``. A tensor whose name is also the
  group of others (``w`` and ``w/adam_m``) gets a final ``%`` (``w%``): a lone trailing ``%``
  never comes from escaping. The root ``.zattrs`` maps every TensorFlow name to its path.
* A partitioned tensor whose slices tile it as a regular grid (equal slice lengths on each
  axis) becomes one array with one chunk per slice. Tensors that cannot be zarr arrays are
  listed under ``skipped`` with the reason: strings and variants (variable-length layouts),
  other partitioned tensors (zarr chunks must all have one shape).

V1 checkpoints keep values inside protobuf records (no plain byte range): refused.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

from metainspect.errors import WrongKindError
from metainspect.formats import dtypes
from metainspect.formats.filesystem import is_url

if TYPE_CHECKING:
    from metainspect.checkpoint.reader import Checkpoint, StoredPiece, TensorInfo

__all__ = ["reference_index", "zarr_dtype", "zarr_paths"]

_PLAIN = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def zarr_dtype(tf_dtype: str, endianness: str = "little") -> tuple[str, bool]:
    """The zarr format 2 dtype of a TensorFlow type and whether it is a raw stand-in.

    ValueError for types with no fixed-size layout (string, variant, resource).
    """
    import numpy as np

    kind = dtypes.from_name(tf_dtype)
    if not kind.is_numeric:
        raise ValueError(f"{tf_dtype} has no fixed-size layout")
    raw = kind.numpy_name.startswith("ml_dtypes.")
    base = np.dtype(f"u{kind.itemsize}") if raw else np.dtype(kind.numpy_name)
    if base.itemsize == 1:
        return "|" + base.str[1:], raw
    return (">" if endianness == "big" else "<") + base.str[1:], raw


def _escape_segment(segment: str) -> str:
    if _PLAIN.match(segment) and not segment.startswith("__"):
        return segment
    if not segment:
        return "%"
    out = []
    for i, byte in enumerate(segment.encode("utf-8", "surrogateescape")):
        keep = byte in _KEEP and not (i == 0 and byte == ord(".")) and not (i == 0 and segment.startswith("__"))
        out.append(chr(byte) if keep else f"%{byte:02X}")
    return "".join(out)


def zarr_paths(names: list[str]) -> dict[str, str]:
    """The zarr path of each TensorFlow name (escaping as in the module docstring)."""
    paths = {name: "/".join(_escape_segment(s) for s in name.split("/")) for name in names}
    groups = {path.rsplit("/", 1)[0] for path in paths.values() if "/" in path}
    prefixes: set[str] = set()
    for group in groups:
        parts = group.split("/")
        prefixes.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return {name: path + "%" if path in prefixes else path for name, path in paths.items()}


def reference_index(checkpoint: Checkpoint) -> dict[str, Any]:
    """The ``ReferenceFileSystem`` JSON (as a dict) for ``checkpoint`` (module docstring)."""
    if checkpoint.format != "v2":
        raise WrongKindError(checkpoint.prefix, "is a V1 checkpoint: its values sit inside protobuf records, not "
                                                "byte ranges zarr can read; rewrite it to V2 first")
    infos = checkpoint.infos()
    paths = zarr_paths([info.name for info in infos])
    shards = {path: f"d{i}" for i, path in enumerate(checkpoint.data_files)}
    refs: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    groups = {""}
    leaves_in_group: dict[str, set[str]] = {}
    tensors: dict[str, str] = {}
    for info in infos:
        reason = _unsupported(info)
        pieces = checkpoint.pieces(info.name) if reason is None else ()
        grid = _grid(info, pieces) if reason is None else None
        if reason is None and grid is None:
            reason = "partitioned into slices that are not a regular grid (zarr chunks must all have one shape)"
        if reason is not None:
            skipped[info.name] = reason
            continue
        assert grid is not None
        path = paths[info.name]
        group, _, leaf = path.rpartition("/")
        parts = group.split("/") if group else []
        groups.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        leaves_in_group.setdefault(group, set()).add(leaf)
        dtype, raw = zarr_dtype(info.dtype, checkpoint.endianness)
        chunk_shape, chunks = grid
        refs[f"{path}/.zarray"] = _json({
            "zarr_format": 2, "shape": list(info.shape), "chunks": [max(1, c) for c in chunk_shape],
            "dtype": dtype, "compressor": None, "filters": None, "order": "C", "fill_value": None,
            "dimension_separator": ".",
        })
        attrs: dict[str, Any] = {"tf_name": info.name, "tf_dtype": info.dtype,
                                 "_ARRAY_DIMENSIONS": [f"{leaf}_{axis}" for axis in range(len(info.shape))]}
        if raw:
            attrs["raw"] = True
        refs[f"{path}/.zattrs"] = _json(attrs)
        for key, piece in chunks:
            if piece.size:
                refs[f"{path}/{key}"] = ["{{" + shards[piece.file] + "}}", piece.offset, piece.size]
        tensors[info.name] = path
    for group in sorted(groups):
        refs[f"{group}/.zgroup" if group else ".zgroup"] = _json({"zarr_format": 2})
    refs[".zattrs"] = _json({"tf_checkpoint": _location(checkpoint.prefix), "tf_tensors": tensors})
    refs[".zmetadata"] = _json({"zarr_consolidated_format": 1, "metadata": {
        key: json.loads(value) for key, value in refs.items() if key.rsplit("/", 1)[-1] in (".zarray", ".zattrs", ".zgroup")
    }})
    templates = {template: _location(path) for path, template in shards.items()}
    return {"version": 1, "templates": templates, "refs": refs, "skipped": skipped}


def _unsupported(info: TensorInfo) -> str | None:
    if info.dtype in ("string", "variant"):
        return f"{info.dtype} tensors have a variable-length layout, not a plain array of numbers"
    try:
        dtypes.from_name(info.dtype)
    except ValueError:
        return f"unknown dtype {info.dtype}"
    if not dtypes.from_name(info.dtype).is_numeric:
        return f"{info.dtype} tensors hold no values"
    return None


def _grid(info: TensorInfo, pieces: tuple[StoredPiece, ...]) -> tuple[tuple[int, ...], list[tuple[str, StoredPiece]]] | None:
    """The chunk shape and ``(chunk key, piece)`` of each chunk, or None when the slices do not
    tile the tensor as a regular grid."""
    rank = len(info.shape)
    if len(pieces) == 1 and pieces[0].extents is None:
        return info.shape, [(".".join(["0"] * rank) if rank else "0", pieces[0])]
    chunk = [0] * rank
    for piece in pieces:
        for axis in range(rank):
            length = piece.shape[axis]
            if chunk[axis] and chunk[axis] != length:
                return None
            chunk[axis] = length
    if any(c <= 0 or d % c for c, d in zip(chunk, info.shape)):
        return None
    seen: dict[str, StoredPiece] = {}
    for piece in pieces:
        assert piece.extents is not None
        starts = [start for start, _ in piece.extents]
        starts = [0 if piece.extents[axis][1] == -1 else starts[axis] for axis in range(rank)]
        if any(start % c for start, c in zip(starts, chunk)):
            return None
        seen[".".join(str(start // c) for start, c in zip(starts, chunk))] = piece
    if len(seen) != math.prod(d // c for c, d in zip(chunk, info.shape)) or len(seen) != len(pieces):
        return None
    return tuple(chunk), sorted(seen.items())


def _location(path: str) -> str:
    return path if is_url(path) else os.path.abspath(path)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
