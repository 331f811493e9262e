"""Write a SavedModel directory without TensorFlow.

``saved_model.pb`` wraps the prepared MetaGraphDef (tags, signatures, SaverDef and collections
as the plan left them, ``asset_file_def`` naming the assets); ``variables/variables.*`` is the
checkpoint as a V2 bundle (a V2 checkpoint is copied byte for byte, any other form rewritten);
``assets/`` holds copies of the asset files. TensorFlow's loaders feed the bundle prefix into the
SaverDef's filename tensor and run its restore op, exactly as for a SavedModelBuilder export.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from typing import TYPE_CHECKING

from metainspect.errors import MetainspectError
from metainspect.export.assets import Asset, record_assets
from metainspect.formats.bundle import data_file_name
from metainspect.formats.graph_file import PROTOBUF_LIMIT
from metainspect.formats.source import open_source
from metainspect.progress import Progress, silent

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.checkpoint import Checkpoint
    from metainspect.proto.saved_model_pb2 import SavedModel

SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
VARIABLES_PREFIX = "variables"
ASSETS_DIR = "assets"
SCHEMA_VERSION = 1
_CHUNK = 1 << 22


def saved_model_proto(meta_graph: MetaGraphDef, assets: list[Asset]) -> SavedModel:
    """The ``SavedModel`` message holding ``meta_graph`` with its assets recorded."""
    from metainspect.proto.saved_model_pb2 import SavedModel

    message = SavedModel(saved_model_schema_version=SCHEMA_VERSION)
    entry = message.meta_graphs.add()
    entry.CopyFrom(meta_graph)
    record_assets(entry, assets)
    return message


def write_saved_model(directory: str, meta_graph: MetaGraphDef, checkpoint: Checkpoint | None,
                      assets: list[Asset], progress: Progress = silent, keys: Collection[str] | None = None) -> None:
    """Fill the (new, empty) ``directory`` with a loadable SavedModel.

    ``keys``: the checkpoint keys the graph's saver restores; other tensors are left out of
    ``variables/`` (None: copy them all).
    """
    data = saved_model_proto(meta_graph, assets).SerializeToString()
    if len(data) > PROTOBUF_LIMIT:
        raise MetainspectError(directory, "the graph is 2 GiB or more; a SavedModel cannot hold it")
    variables = os.path.join(directory, VARIABLES_DIR)
    os.makedirs(variables)
    if checkpoint is not None:
        write_variables(checkpoint, os.path.join(variables, VARIABLES_PREFIX), progress, keys)
    if assets:
        target = os.path.join(directory, ASSETS_DIR)
        os.makedirs(target)
        for asset in assets:
            shutil.copyfile(asset.source, os.path.join(target, asset.filename))
    with open(os.path.join(directory, SAVED_MODEL_FILE), "wb") as handle:
        handle.write(data)


def write_variables(checkpoint: Checkpoint, prefix: str, progress: Progress = silent,
                    keys: Collection[str] | None = None) -> None:
    """Write ``checkpoint`` (only its tensors named in ``keys``, when given) as the V2 bundle
    ``prefix``: copied when it is one and nothing is left out, else rewritten."""
    import re

    wanted = set(keys) if keys is not None else None
    unused = [] if wanted is None else [name for name in checkpoint if name not in wanted]
    if checkpoint.format == "v2" and not unused:
        _copy_bundle(checkpoint, prefix, progress)
        return
    from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

    label = "copying restored variables" if unused else "converting variables to a V2 bundle"

    def report(step: str, done: int, total: int) -> None:
        progress(label, done, total)

    kept = [name for name in checkpoint if wanted is None or name in wanted]
    keep = ("^(?:" + "|".join(map(re.escape, kept)) + ")$",) if unused else ()
    rewrite_checkpoint(checkpoint.prefix, prefix, RewriteOptions(keep=keep), progress=report)


def _copy_bundle(checkpoint: Checkpoint, prefix: str, progress: Progress) -> None:
    """Copy index and data shards under the new prefix (the index does not record the prefix)."""
    assert checkpoint.index_file is not None
    pairs = [(checkpoint.index_file, prefix + ".index")]
    pairs += [(source, data_file_name(prefix, shard, checkpoint.num_shards))
              for shard, source in enumerate(checkpoint.data_files)]
    sources = [open_source(source) for source, _ in pairs]  # local files or URLs, read in chunks
    try:
        total = sum(source.size for source in sources)
        done = 0
        progress("copying variables", done, total)
        for source, (_, target) in zip(sources, pairs):
            with open(target, "wb") as dst:
                for chunk in source.chunks(0, source.size, _CHUNK):
                    dst.write(chunk)
                    done += len(chunk)
                    progress("copying variables", done, total)
    finally:
        for source in sources:
            source.close()
