"""A TensorBoard event file holding a graph, written with TensorBoard's own record writer.

The file holds three events: the file version, the graph (``Event.graph_def``, which
TensorBoard's Graphs dashboard shows, custom ops included: it needs no op registry) and,
when given, a Markdown text summary (tag ``metainspect``, Text dashboard). What metainspect
knows is attached to the nodes as extra attributes, which TensorBoard lists in a node's info
card; their names start with ``_`` as TensorFlow's own internal attributes do, so the graph
stays importable:

* ``_metainspect_checkpoint`` (string): ``key: dtype [shape]`` of a variable in the checkpoint;
* ``_metainspect_findings`` (list of strings): ``severity id: message`` of each check finding.

Tensor attribute values over :data:`LARGE_VALUE_BYTES` keep their dtype and shape but lose their
contents: TensorBoard never shows such values (its graph view drops attributes over 1 KiB),
and a frozen graph's weights would only make the file slow to write and to load.
"""

from __future__ import annotations

import io
import os
import socket
import time
from typing import TYPE_CHECKING

from metainspect.errors import MetainspectError
from metainspect.formats import dtypes
from metainspect.formats.atomic import write_bytes

if TYPE_CHECKING:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    from metainspect.picture.knowledge import Knowledge

#: tensor attr values larger than this (serialized) are written without their contents
LARGE_VALUE_BYTES = 1024
CHECKPOINT_ATTR = "_metainspect_checkpoint"
FINDINGS_ATTR = "_metainspect_findings"
#: the text summary's tag
SUMMARY_TAG = "metainspect"
#: event files this module writes end with this; a new one replaces the old ones in its directory
FILE_SUFFIX = ".metainspect"


def annotate(graph: GraphDef, knowledge: Knowledge | None) -> GraphDef:
    """A copy of ``graph`` with large tensor values emptied and ``knowledge`` attached to its nodes."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    out = GraphDef()
    out.CopyFrom(graph)
    for node in list(out.node) + [n for fn in out.library.function for n in fn.node_def]:
        for value in node.attr.values():
            if value.WhichOneof("value") == "tensor" and value.tensor.ByteSize() > LARGE_VALUE_BYTES:
                _empty(value.tensor)
    if knowledge is None:
        return out
    for node in out.node:
        stored = knowledge.stored.get(node.name)
        if stored is not None:
            node.attr[CHECKPOINT_ATTR].s = str(stored).encode("utf-8")
        for finding in knowledge.findings.get(node.name, ()):
            node.attr[FINDINGS_ATTR].list.s.append(
                f"{finding.severity} {finding.id}: {finding.message}".encode())
    return out


def _empty(tensor) -> None:  # type: ignore[no-untyped-def]
    dtype, shape = tensor.dtype, type(tensor.tensor_shape)()
    shape.CopyFrom(tensor.tensor_shape)
    tensor.Clear()
    tensor.dtype = dtype
    tensor.tensor_shape.CopyFrom(shape)


def write_event_file(directory: str | os.PathLike[str], graph: GraphDef, summary: str | None = None) -> str:
    """Write an event file with ``graph`` (and a Markdown ``summary``) into ``directory``.

    The directory is created when missing. Event files an earlier call wrote there (names
    ending in :data:`FILE_SUFFIX`) are removed once the new one is complete, so TensorBoard
    shows one graph for the directory; other event files are left alone. Returns the new path.
    """
    from tensorboard.compat.proto.event_pb2 import Event, SourceMetadata
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.plugins.text.metadata import create_summary_metadata  # type: ignore[import-untyped]
    from tensorboard.summary.writer.record_writer import RecordWriter  # type: ignore[import-untyped]

    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MetainspectError(directory, "exists and is not a directory: TensorBoard reads a log directory")
    now = time.time()
    events = [
        Event(wall_time=now, file_version="brain.Event:2",
                        source_metadata=SourceMetadata(writer="metainspect")),
        Event(wall_time=now, step=0, graph_def=graph.SerializeToString()),
    ]
    if summary is not None:
        value = Summary.Value(
            tag=SUMMARY_TAG, metadata=create_summary_metadata("metainspect", "what metainspect knows about the graph"),
            tensor=TensorProto(dtype=dtypes.from_name("string").enum, string_val=[summary.encode("utf-8")]))
        events.append(Event(wall_time=now, step=0, summary=Summary(value=[value])))
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for event in events:
        writer.write(event.SerializeToString())
    name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}{FILE_SUFFIX}"
    path = os.path.join(directory, name)
    try:
        write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise MetainspectError(directory, f"cannot write the event file: {exc.strerror or exc}") from None
    for old in os.listdir(directory):
        if old != name and "tfevents" in old and old.endswith(FILE_SUFFIX):
            os.unlink(os.path.join(directory, old))
    return path

