"""Turn what a user typed into the file to read: directories, prefixes, SavedModels, URLs."""

from __future__ import annotations

import os
import re

from metainspect.errors import Hint, NotFoundError, WrongKindError
from metainspect.formats.filesystem import FileSystem, filesystem, is_url
from metainspect.formats.source import open_source
from metainspect.formats.table import has_magic

#: a V2 data shard file name, ``PREFIX.data-00000-of-00001``
DATA_SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
#: the state file naming a directory's latest checkpoint (read by formats.checkpoint_state)
STATE_FILE = "checkpoint"


def find_graph_file(path: str | os.PathLike[str]) -> str:
    """The graph file ``path`` names: itself, ``PREFIX.meta``, or a directory's model file.

    A checkpoint file (``.index``, ``.data-*``, a V1 table) with a ``.meta`` beside its prefix
    names that ``.meta``. ``path`` may be a URL: lookups go through its filesystem; where a
    store cannot list (HTTP), a directory is known by the model file it holds.
    """
    path = os.fspath(path)
    files = filesystem(path)
    if files.isdir(path):
        return _graph_in_directory(files, path.rstrip("/") if is_url(path) else path)
    if files.isfile(path):
        shard = DATA_SHARD.match(path)
        if shard or path.endswith(".index"):
            prefix = shard["prefix"] if shard else path[: -len(".index")]
            if files.isfile(prefix + ".meta"):
                return prefix + ".meta"
            open_source(path).close()  # a Git LFS pointer is named as such
            hint = Hint("list_tensors")
            raise WrongKindError(path, f"is a checkpoint, not a graph; {hint.text} (or give the .meta)", hint)
        if files.isfile(path + ".meta") and has_magic(path):  # a V1 checkpoint file
            return path + ".meta"
        return path
    if files.isfile(path + ".meta"):
        return path + ".meta"
    if not files.listable and any(files.isfile(files.join(path, name)) for name in (*SAVED_MODEL_FILES, STATE_FILE)):
        return _graph_in_directory(files, path)
    if files.exists(path + ".index") or (files.listable and files.glob(files.escape(path) + ".data-*")):
        hint = Hint("list_tensors")
        raise WrongKindError(path, f"is a checkpoint prefix with no .meta graph beside it; {hint.text}", hint)
    raise NotFoundError(path, "no such file or directory")


def _graph_in_directory(files: FileSystem, path: str) -> str:
    for name in SAVED_MODEL_FILES:
        candidate = files.join(path, name)
        if files.isfile(candidate):
            return candidate
    prefix = latest_checkpoint_prefix(path)
    if prefix and files.isfile(prefix + ".meta"):
        return prefix + ".meta"
    if not files.listable:
        raise NotFoundError(path, "holds no saved_model.pb or checkpoint state file naming a .meta graph, and this "
                                  "store cannot list the rest; name the graph file")
    metas = files.glob(files.join(files.escape(path), "*.meta"))
    if len(metas) == 1:
        return metas[0]
    if metas:
        names = ", ".join(files.basename(m) for m in metas)
        raise WrongKindError(path, f"holds several graphs ({names}); name one")
    if prefix:
        raise NotFoundError(path, f"its checkpoint state file names {files.basename(prefix)}, but "
                                  f"{files.basename(prefix)}.meta (the graph) is not here")
    raise NotFoundError(path, "directory holds no saved_model.pb, .meta graph or checkpoint state file")


def latest_checkpoint_prefix(directory: str) -> str | None:
    """The latest checkpoint named by ``directory/checkpoint``, if any resolves."""
    from metainspect.errors import MetainspectError
    from metainspect.formats.checkpoint_state import latest_checkpoint

    files = filesystem(directory)
    if not files.isfile(files.join(directory, STATE_FILE)):
        return None
    try:
        return latest_checkpoint(directory).prefix
    except MetainspectError:
        return None
