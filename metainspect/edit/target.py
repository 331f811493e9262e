"""Open a graph file for editing and write it back in its own kind and encoding.

A ``.meta`` stays a MetaGraphDef, a GraphDef a GraphDef, a SavedModel a SavedModel (all its
meta graphs, the edited one replaced); binary stays binary and text stays text. A SavedModel
named by its directory is written as a new directory with everything else copied unchanged.
Every write goes through :mod:`metainspect.formats.atomic`; nothing is written over an input unless
asked, and then only after a backup copy exists.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metainspect.errors import Hint, MetainspectError
from metainspect.formats.filesystem import filesystem, is_url, staged_output

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.formats.graph_file import GraphFile
    from metainspect.graph.model import Model

#: a SavedModel's record of checksums over saved_model.pb: stale once the graph changes
FINGERPRINT_FILE = "fingerprint.pb"
VARIABLES_DIR = "variables"


@dataclass
class EditTarget:
    """A graph file held in memory for editing, with the meta graph being edited."""

    source: str  # the path the user named
    graph: GraphFile
    index: int  # which of graph.meta_graphs is edited
    saved_model_dir: str | None = None  # set when the user named a SavedModel directory
    #: rename rules the saver's checkpoint keys went through: a SavedModel directory's
    #: variables/ are rewritten with them instead of copied
    checkpoint_renames: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The graph file itself."""
        return self.graph.path

    @property
    def kind(self) -> str:
        return self.graph.kind

    @property
    def variables_prefix(self) -> str | None:
        """The SavedModel directory's ``variables/variables`` checkpoint, when there is one."""
        if self.saved_model_dir is None:
            return None
        files = filesystem(self.saved_model_dir)
        prefix = files.join(self.saved_model_dir, VARIABLES_DIR, VARIABLES_DIR)
        return prefix if files.exists(prefix + ".index") else None

    @property
    def meta_graph(self) -> MetaGraphDef:
        return self.graph.meta_graphs[self.index]

    def model(self) -> Model:
        """A fresh query model over the meta graph as it is now."""
        from metainspect.graph.model import Model

        return Model(self.path, self.graph.kind, self.graph.encoding, self.meta_graph,
                     [list(mg.meta_info_def.tags) for mg in self.graph.meta_graphs],
                     self.graph.saved_model_schema_version, source=self.source, graph_file=self.graph)

    def serialize(self) -> bytes:
        """The file's bytes: the same message kind and encoding the input had."""
        from metainspect.formats.graph_file import GRAPH_DEF, SAVED_MODEL

        message: Message
        if self.kind == SAVED_MODEL:
            from metainspect.proto.saved_model_pb2 import SavedModel

            message = SavedModel(saved_model_schema_version=self.graph.saved_model_schema_version or 0,
                                 meta_graphs=self.graph.meta_graphs)
        elif self.kind == GRAPH_DEF:
            message = self.meta_graph.graph_def
        else:
            message = self.meta_graph
        if self.graph.encoding == "text":
            from google.protobuf import text_format

            return text_format.MessageToString(message).encode("utf-8")
        return message.SerializeToString()


@dataclass
class WriteResult:
    """What a write produced: the output path, backups made and notes for the user."""

    output: str
    backups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def model_of(meta_graph: MetaGraphDef) -> Model:
    """A query model over a meta graph held in memory (computed afresh on each call)."""
    from metainspect.graph.model import Model

    return Model("", "meta_graph", "binary", meta_graph, [list(meta_graph.meta_info_def.tags)])


def open_target(path: str | os.PathLike[str], tags: list[str] | None = None) -> EditTarget:
    """Read the graph ``path`` names (file, SavedModel directory or checkpoint prefix) for editing."""
    from metainspect.edit.editor import target_of
    from metainspect.graph.model import load_model

    return target_of(load_model(path, tags), copy=False)


def write_output(target: EditTarget, out: str | os.PathLike[str], changed: bool) -> WriteResult:
    """Write the edited graph to ``out`` (a new directory for a SavedModel directory input).

    Refuses to write over the input. ``changed`` says whether the graph differs from the input:
    a SavedModel's ``fingerprint.pb`` is copied only when it does not.
    """
    from metainspect.formats import atomic

    out = os.fspath(out)
    if is_url(out):
        return _write_to_url(target, out, changed)
    with _reporting_os_errors(out):
        if target.saved_model_dir is not None:
            return _write_saved_model_dir(target, out, changed)
        if os.path.isdir(out):
            out = os.path.join(out, os.path.basename(target.path))
        if os.path.exists(out) and os.path.samefile(out, target.path):
            hint = Hint("write_elsewhere")
            raise MetainspectError(out, f"is the input; {hint.text}", hint)
        atomic.write_bytes(out, target.serialize())
    return WriteResult(out)


def _write_to_url(target: EditTarget, out: str, changed: bool) -> WriteResult:
    """Write locally in a temporary directory, then upload: one object per file, a SavedModel's
    graph last; nothing is written over an existing object."""
    from metainspect.formats import atomic
    from metainspect.formats.graph_file import SAVED_MODEL

    files = filesystem(out)
    graph_name = files.basename(target.path)
    if target.saved_model_dir is None and out.endswith("/"):
        out = files.join(out, graph_name)
    out = out.rstrip("/")
    if files.exists(out):
        raise MetainspectError(out, "already exists; refusing to overwrite (choose a new output)")
    if target.saved_model_dir is not None and is_url(target.saved_model_dir):
        raise MetainspectError(target.saved_model_dir, "a SavedModel directory behind a URL cannot be copied to a new "
                                                       "one; edit its graph file (saved_model.pb) or download it first")
    last_name = graph_name if target.kind == SAVED_MODEL else None
    with staged_output(out, order=lambda url: url.rsplit("/", 1)[-1] == last_name) as local, _reporting_os_errors(out):
        if target.saved_model_dir is not None:
            result = _write_saved_model_dir(target, local, changed)
        else:
            atomic.write_bytes(local, target.serialize())
            result = WriteResult(local)
    result.output = out
    return result


@contextmanager
def _reporting_os_errors(path: str) -> Iterator[None]:
    """Turn a failed write (missing directory, no permission, disk full) into one error line."""
    try:
        yield
    except OSError as exc:
        raise MetainspectError(path, f"cannot write: {exc.strerror or exc}") from None


def _write_saved_model_dir(target: EditTarget, out: str, changed: bool) -> WriteResult:
    from metainspect.formats import atomic

    source = os.path.abspath(target.saved_model_dir or "")
    final = os.path.abspath(out)
    if final == source or final.startswith(source + os.sep):
        raise MetainspectError(out, "is inside the input SavedModel; choose a directory outside it")
    graph_name = os.path.basename(target.path)
    skipped = {graph_name} | ({FINGERPRINT_FILE} if changed else set())
    rewrite_variables = target.variables_prefix is not None and bool(target.checkpoint_renames)
    result = WriteResult(out)
    with atomic.new_directory(out) as tmp:
        shutil.copymode(source, tmp)
        for entry in sorted(os.listdir(source)):
            src = os.path.join(source, entry)
            if entry in skipped:
                continue
            if entry == VARIABLES_DIR and rewrite_variables:
                shutil.copytree(src, os.path.join(tmp, entry), ignore=_variables_checkpoint)
            elif os.path.isdir(src):
                shutil.copytree(src, os.path.join(tmp, entry))
            else:
                shutil.copy2(src, os.path.join(tmp, entry))
        if rewrite_variables:
            from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

            rewrite_checkpoint(target.variables_prefix or "", os.path.join(tmp, VARIABLES_DIR, VARIABLES_DIR),
                               RewriteOptions(renames=target.checkpoint_renames))
            result.notes.append(f"{VARIABLES_DIR}/ rewritten with the same rename rules")
        with open(os.path.join(tmp, graph_name), "wb") as handle:
            handle.write(target.serialize())
    if changed and os.path.exists(os.path.join(source, FINGERPRINT_FILE)):
        result.notes.append(f"{FINGERPRINT_FILE} not copied: it holds checksums of the original graph "
                            "(TensorFlow loads a SavedModel without it)")
    return result


def _variables_checkpoint(directory: str, names: list[str]) -> list[str]:
    """copytree filter: leave out the ``variables.*`` checkpoint files (they are rewritten)."""
    return [name for name in names if name.startswith(VARIABLES_DIR + ".")]


def write_in_place(target: EditTarget) -> WriteResult:
    """Replace the input graph file, after copying it to ``NAME.bak`` (or ``NAME.bak.N``).

    In a SavedModel directory the stale ``fingerprint.pb`` is moved aside the same way.
    """
    from metainspect.formats import atomic
    from metainspect.formats.graph_file import SAVED_MODEL

    if is_url(target.path):
        raise MetainspectError(target.path, "a graph behind a URL cannot be edited in place (no backup can be kept "
                                            "beside it); write the edited graph elsewhere")
    if target.checkpoint_renames and target.variables_prefix is not None:
        hint = Hint("renamed_variables")
        raise MetainspectError(target.source, hint.text, hint)
    result = WriteResult(target.path)
    with _reporting_os_errors(target.path):
        backup = free_backup_name(target.path)
        with atomic.replacing(backup) as tmp:
            shutil.copy2(target.path, tmp)
        result.backups.append(backup)
        atomic.write_bytes(target.path, target.serialize())
        fingerprint = os.path.join(os.path.dirname(target.path), FINGERPRINT_FILE)
        if target.kind == SAVED_MODEL and os.path.exists(fingerprint):
            moved = free_backup_name(fingerprint)
            os.replace(fingerprint, moved)
            result.backups.append(moved)
            result.notes.append(f"{FINGERPRINT_FILE} moved to {os.path.basename(moved)}: "
                                "it holds checksums of the original graph")
    return result


def free_backup_name(path: str) -> str:
    """``path.bak``, or ``path.bak.1``, ``.2``… when earlier backups exist (never overwritten)."""
    candidate = f"{path}.bak"
    n = 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.bak.{n}"
    return candidate
