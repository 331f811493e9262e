"""Asset files a graph reads at load time (vocabularies for lookup tables…), found without TF.

A SavedModel names its assets in ``asset_file_def`` (or the ``saved_model_assets`` collection of
older exports): a tensor fed with ``EXPORT_DIR/assets/<filename>`` at load time. A TF1 training
graph lists them in the ``asset_filepaths`` collection: string ``Const`` tensors holding the
path the file had when the graph was built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.errors import NotFoundError, WrongKindError
from metainspect.formats.graph_file import SAVED_MODEL
from metainspect.graph.collections import ASSET_FILEPATHS, SAVED_MODEL_ASSETS
from metainspect.graph.ops import CONST_OPS

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.graph.model import Model



@dataclass(frozen=True)
class Asset:
    """One asset: the tensor fed with its path, its file name under ``assets/``, where it is now."""

    tensor: str
    filename: str
    source: str


def find_assets(model: Model) -> list[Asset]:
    """The model's assets with their current location; NotFoundError when a file is missing."""
    if model.kind == SAVED_MODEL:
        return _saved_model_assets(model)
    return _graph_assets(model)


def _saved_model_assets(model: Model) -> list[Asset]:
    directory = os.path.join(os.path.dirname(model.path), "assets")
    entries = list(model.meta_graph.asset_file_def)
    if not entries and model.collection(SAVED_MODEL_ASSETS) is not None:
        entries = list(model.collection(SAVED_MODEL_ASSETS).items)  # type: ignore[union-attr]
    assets = []
    for entry in entries:
        source = os.path.join(directory, entry.filename)
        if not os.path.isfile(source):
            raise NotFoundError(source, f"asset file missing (the graph is fed its path through "
                                f"{entry.tensor_info.name} at load time); restore it before exporting")
        assets.append(Asset(entry.tensor_info.name, entry.filename, source))
    return assets


def _graph_assets(model: Model) -> list[Asset]:
    collection = model.collection(ASSET_FILEPATHS)
    if collection is None:
        return []
    assets: list[Asset] = []
    used: dict[str, str] = {}
    for tensor in collection.items:
        recorded = _const_path(model, tensor)
        source = _locate(model, tensor, recorded)
        filename = _unique_filename(os.path.basename(recorded), source, used)
        assets.append(Asset(tensor, filename, source))
    return assets


def _const_path(model: Model, tensor: str) -> str:
    from metainspect.formats.tensor_proto import to_numpy

    node = model.node(tensor)
    if node is None or node.op not in CONST_OPS or "value" not in node.proto.attr:
        raise WrongKindError(model.path, f"asset tensor {tensor} is not a string constant")
    value = to_numpy(node.proto.attr["value"].tensor)
    if value.dtype != object or value.size != 1:
        raise WrongKindError(model.path, f"asset tensor {tensor} is not a string scalar")
    return value.flat[0].decode("utf-8", "replace")  # type: ignore[no-any-return]


def _locate(model: Model, tensor: str, recorded: str) -> str:
    """The asset file as recorded (absolute or relative to the working directory) or beside the model."""
    candidates = [recorded] if os.path.isabs(recorded) else [
        os.path.join(os.path.dirname(os.path.abspath(model.path)), recorded), recorded,
    ]
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(model.path)), os.path.basename(recorded)))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise NotFoundError(recorded, f"asset file of tensor {tensor} not found (looked beside {model.path} and in "
                        "the working directory); copy it next to the model")


def _unique_filename(name: str, source: str, used: dict[str, str]) -> str:
    candidate, i = name, 1
    while candidate in used and used[candidate] != source:
        candidate, i = f"{name}_{i}", i + 1
    used[candidate] = source
    return candidate


def record_assets(meta_graph: MetaGraphDef, assets: list[Asset]) -> None:
    """Name ``assets`` in ``meta_graph``'s ``asset_file_def`` (what loaders read first)."""
    del meta_graph.asset_file_def[:]
    for asset in assets:
        entry = meta_graph.asset_file_def.add()
        entry.tensor_info.name = asset.tensor
        entry.filename = asset.filename
