"""The suite's own encoder of V1 checkpoints (docs/formats.md, "V1 checkpoints"): meta and data
records of SavedTensorSlices under their slice keys, in a table file."""

from __future__ import annotations

from pathlib import Path

from metainspect.formats.slices import encode_slice_key
from metainspect.proto.saved_tensor_slice_pb2 import SavedTensorSlices

from helpers.table import build_table


def meta_entry(name: str, dtype: int, shape: tuple[int, ...], slices: list[list[tuple[int, int]]]) -> SavedTensorSlices:
    record = SavedTensorSlices()
    item = record.meta.tensor.add(name=name, type=dtype)  # type: ignore[arg-type]
    item.shape.SetInParent()
    for dim in shape:
        item.shape.dim.add(size=dim)
    for extents in slices:
        proto = item.slice.add()
        for start, length in extents:
            ext = proto.extent.add()
            if length != -1:
                ext.start, ext.length = start, length
    return record


def data_entry(name: str, extents: list[tuple[int, int]], **values: object) -> tuple[bytes, bytes]:
    record = SavedTensorSlices()
    record.data.name = name
    record.data.slice.SetInParent()
    for start, length in extents:
        ext = record.data.slice.extent.add()
        if length != -1:
            ext.start, ext.length = start, length
    for field, items in values.items():
        getattr(record.data.data, field).extend(items)
    return encode_slice_key(name, extents), record.SerializeToString()


def write_v1(path: Path, metas: list[SavedTensorSlices], records: list[tuple[bytes, bytes]], **kwargs: object) -> str:
    meta = SavedTensorSlices()
    for m in metas:
        meta.meta.tensor.extend(m.meta.tensor)
    meta.meta.versions.producer = 1
    path.write_bytes(build_table([(b"", meta.SerializeToString())] + sorted(records), **kwargs))  # type: ignore[arg-type]
    return str(path)
