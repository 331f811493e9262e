"""The suite's own encoder of V2 bundles (docs/formats.md, "V2 bundles"): header and entry protos,
string and variant layouts with their checksums, a one-shard writer, and a big-endian copy of the
values TensorFlow wrote to sample_meta/ckpt_dtypes."""

from __future__ import annotations

from pathlib import Path

import crc32c
import numpy as np

from metainspect import open_checkpoint
from metainspect.formats import dtypes
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto

from helpers.paths import SAMPLES
from helpers.table import build_table, masked_crc, varint

DT = {"float32": 1, "int32": 3, "string": 7, "complex64": 8, "int64": 9, "bool": 10, "bfloat16": 14,
      "complex128": 18, "float16": 19, "variant": 21, "int4": 29}


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def string_bytes(values: list[bytes], order: str = "little") -> tuple[bytes, int]:
    """§2.5 layout and the entry's masked CRC."""
    lengths = b"".join(varint(len(v)) for v in values)
    c1 = crc32c.crc32c(b"".join(len(v).to_bytes(4, order) for v in values))
    stored = mask(c1).to_bytes(4, order)
    body = b"".join(values)
    return lengths + stored + body, mask(crc32c.crc32c(body, crc32c.crc32c(stored, c1)))


def variant_bytes(protos: list[bytes]) -> tuple[bytes, int]:
    """§2.6 layout and the entry's masked CRC."""
    out = bytearray()
    c = 0
    for body in protos:
        c = crc32c.crc32c(body, crc32c.crc32c(len(body).to_bytes(8, "little"), c))
        stored = mask(c).to_bytes(4, "little")
        out += varint(len(body)) + body + stored
        c = crc32c.crc32c(stored, c)
    return bytes(out), mask(c)


def entry(dtype: int, shape: tuple[int, ...], **fields: object) -> bytes:
    proto = BundleEntryProto(dtype=dtype, **fields)  # type: ignore[arg-type]
    for dim in shape:
        proto.shape.dim.add(size=dim)
    if not shape:
        proto.shape.SetInParent()
    return proto.SerializeToString()


def header(num_shards: int = 1, big_endian: bool = False, min_consumer: int = 0) -> bytes:
    proto = BundleHeaderProto(num_shards=num_shards, endianness=1 if big_endian else 0)
    proto.version.producer = 1
    proto.version.min_consumer = min_consumer
    return proto.SerializeToString()


def write_bundle(prefix: Path, tensors: dict[str, tuple[int, tuple[int, ...], bytes, int | None]],
                 *, big_endian: bool = False, lead: bytes = b"", min_consumer: int = 0) -> Path:
    """Write PREFIX.index + one data shard; tensors: name -> (dtype, shape, bytes, crc or None)."""
    data = bytearray(lead)
    items = []
    for name, (dtype, shape, raw, crc) in tensors.items():
        fields = {"offset": len(data), "size": len(raw), "crc32c": masked_crc(raw) if crc is None else crc}
        items.append((name.encode(), entry(dtype, shape, **fields)))
        data += raw
    items.sort()
    index = build_table([(b"", header(1, big_endian, min_consumer))] + items)
    Path(f"{prefix}.index").write_bytes(index)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    return prefix


def big_endian_bytes(value: np.ndarray) -> bytes:
    """Each element (each component of a complex number) in big-endian order."""
    if value.dtype.kind == "c":
        value = value.view(np.float32 if value.dtype.itemsize == 8 else np.float64)
    unit = value.dtype.itemsize
    raw = np.frombuffer(np.ascontiguousarray(value).tobytes(), dtype=np.uint8)
    return raw.reshape(-1, unit)[:, ::-1].tobytes() if unit > 1 and raw.size else raw.tobytes()


def write_big_endian_dtypes(path: Path) -> Path:
    """A big-endian bundle at ``path`` holding every value TF wrote to ckpt_dtypes (no variants)."""
    tensors = {}
    with open_checkpoint(SAMPLES / "ckpt_dtypes") as source:
        for name in source.keys():
            dtype = dtypes.from_name(source.dtype(name))
            if dtype.name == "variant":  # TF itself cannot byte-swap variants (§2.6)
                continue
            value = source.get(name)
            if dtype.name == "string":
                tensors[name] = (dtype.enum, value.shape, *string_bytes(list(value.reshape(-1)), "big"))
            else:
                tensors[name] = (dtype.enum, value.shape, big_endian_bytes(value), None)
    return write_bundle(path, tensors, big_endian=True)
