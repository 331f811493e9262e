"""Read a graph file — MetaGraphDef, GraphDef or SavedModel, binary or text — by its content.

The extension is never trusted: the top-level protobuf fields (or the first text-format field
name) tell the three messages apart. A GraphDef is wrapped in a MetaGraphDef so that callers
see one shape of data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from metainspect.errors import CorruptError, Hint, WrongKindError
from metainspect.formats.source import open_source
from metainspect.formats.table import MAGIC as TABLE_MAGIC
from metainspect.formats.wire import WireError, iter_fields

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

#: protobuf refuses messages of 2 GiB or more
PROTOBUF_LIMIT = 2**31 - 1
GraphKind = Literal["meta_graph", "graph_def", "saved_model"]
META_GRAPH: Final = "meta_graph"
GRAPH_DEF: Final = "graph_def"
SAVED_MODEL: Final = "saved_model"
Encoding = Literal["binary", "text"]
_TEXT_FIELDS: dict[str, GraphKind] = {
    "meta_info_def": META_GRAPH, "graph_def": META_GRAPH, "saver_def": META_GRAPH,
    "collection_def": META_GRAPH, "signature_def": META_GRAPH, "asset_file_def": META_GRAPH,
    "object_graph_def": META_GRAPH, "node": GRAPH_DEF, "library": GRAPH_DEF, "versions": GRAPH_DEF,
    "saved_model_schema_version": SAVED_MODEL, "meta_graphs": SAVED_MODEL,
}
_TEXT_FIRST_FIELD = re.compile(rb"\A(?:\s|#[^\n]*\n)*([a-z_]+)\s*[:{<]")
_IDENTIFIER = re.compile(rb"\A[A-Za-z0-9_./>-]+\Z")


@dataclass
class GraphFile:
    """A decoded graph file: every meta graph it holds, with how it was stored."""

    path: str
    kind: GraphKind
    encoding: Encoding
    meta_graphs: list[MetaGraphDef] = field(default_factory=list)
    saved_model_schema_version: int | None = None


def read_graph_file(path: str | os.PathLike[str]) -> GraphFile:
    """Read and decode ``path``; raise a :class:`MetainspectError` naming what is wrong."""
    path = os.fspath(path)
    with open_source(path) as source:
        size = source.size
        if size > PROTOBUF_LIMIT:
            raise WrongKindError(
                path, f"file is {size / 2**30:.1f} GiB; protobuf cannot decode a graph of 2 GiB or more"
            )
        data = source.read_bytes(0, size)
    if not data:
        raise CorruptError(path, "file is empty")
    if data[-8:] == TABLE_MAGIC:
        hint = Hint("list_tensors")
        raise WrongKindError(path, f"is a checkpoint (tensor table), not a graph; {hint.text}", hint)
    if _looks_like_text(data):
        return _read_text(path, data)
    return _read_binary(path, data)


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the 4 KiB boundary is fine
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def _read_text(path: str, data: bytes) -> GraphFile:
    from metainspect.formats import text_proto

    match = _TEXT_FIRST_FIELD.match(data)
    kind = _TEXT_FIELDS.get(match.group(1).decode()) if match else None
    if kind is None:
        raise WrongKindError(path, "is text but not a TensorFlow graph in protobuf text format")
    message = _message_class(kind)()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptError(path, f"invalid {_LABELS[kind]} text format: not UTF-8 at byte {exc.start}") from None
    text_proto.parse(text, message, path, f"invalid {_LABELS[kind]} text format")
    return _wrap(path, kind, "text", message)


def _read_binary(path: str, data: bytes) -> GraphFile:
    from google.protobuf.message import DecodeError

    try:
        kind = sniff_binary(data)
    except WireError as exc:
        raise CorruptError(path, f"not a TensorFlow graph: truncated or corrupt protobuf ({exc})") from None
    message = _message_class(kind)()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise CorruptError(path, f"truncated or corrupt protobuf ({_LABELS[kind]} does not decode)") from None
    return _wrap(path, kind, "binary", message)


def sniff_binary(data: bytes) -> GraphKind:
    """Tell MetaGraphDef, GraphDef and SavedModel apart from their top-level wire fields.

    MetaGraphDef holds fields 1-7, all length-delimited, each singular but 4-6; GraphDef repeats
    field 1 (nodes) and has varint field 3; SavedModel has varint field 1 and repeated field 2.
    """
    seen: dict[int, int] = {}
    for number, wire_type, value in iter_fields(data):
        seen[number] = seen.get(number, 0) + 1
        if number == 1 and wire_type == 0:
            return SAVED_MODEL
        if (number == 3 and wire_type == 0) or (number == 1 and seen[1] > 1):
            return GRAPH_DEF
        if number in (3, 6, 7) and wire_type == 2:
            return META_GRAPH
        if number == 2 and seen[2] > 1:
            return SAVED_MODEL
        if number > 7 or (wire_type != 2 and number != 3):
            raise WireError(f"field {number} (wire type {wire_type}) fits no TensorFlow graph message")
        if number == 1 and isinstance(value, memoryview) and _is_node_def(value):
            return GRAPH_DEF
    if not seen:
        raise WireError("no fields")
    return META_GRAPH


def _is_node_def(payload: memoryview) -> bool:
    """True when a field-1 payload reads as a NodeDef (name, then an op-name string)."""
    try:
        fields = iter_fields(payload)
        first = next(fields, None)
        second = next(fields, None)
    except WireError:
        return False
    return (
        first is not None and first[0] == 1 and first[1] == 2
        and second is not None and second[0] == 2 and second[1] == 2
        and bool(_IDENTIFIER.match(bytes(second[2])))
    )


_LABELS = {META_GRAPH: "MetaGraphDef", GRAPH_DEF: "GraphDef", SAVED_MODEL: "SavedModel"}


def _message_class(kind: GraphKind) -> type:
    if kind == SAVED_MODEL:
        from metainspect.proto.saved_model_pb2 import SavedModel

        return SavedModel
    if kind == GRAPH_DEF:
        from tensorboard.compat.proto.graph_pb2 import GraphDef

        return GraphDef
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    return MetaGraphDef


def _wrap(path: str, kind: GraphKind, encoding: Encoding, message) -> GraphFile:  # type: ignore[no-untyped-def]
    if kind == SAVED_MODEL:
        if not message.meta_graphs:
            raise CorruptError(path, "SavedModel holds no meta graph")
        return GraphFile(path, kind, encoding, list(message.meta_graphs), message.saved_model_schema_version)
    if kind == GRAPH_DEF:
        meta_graph = _message_class(META_GRAPH)()
        meta_graph.graph_def.CopyFrom(message)
        return GraphFile(path, kind, encoding, [meta_graph])
    return GraphFile(path, kind, encoding, [message])
