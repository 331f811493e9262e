"""metainspect: read TensorFlow graphs and checkpoints with protobuf and numpy, no TensorFlow.

Public API (each function takes a path or the object already in memory)::

    import metainspect
    model = metainspect.load_model("model.ckpt-1000.meta")   # .meta, .pb, .pbtxt, SavedModel dir
    model.placeholders(); model.variables(); model.signatures()
    report = metainspect.check(model.edit().clear_devices().model())   # checked in memory
    with metainspect.open_checkpoint("model.ckpt-1000") as ckpt:
        ckpt.keys(); ckpt.shape("dense/kernel"); ckpt.get("dense/kernel")
    metainspect.rewrite_checkpoint("model.ckpt-1000", "slim/model.ckpt",
                                   metainspect.RewriteOptions(drop_optimizer=True))
    metainspect.export_saved_model(model, "export/1")
    metainspect.convert("model.ckpt-1000", "model.safetensors", metainspect.ConvertOptions(drop_optimizer=True))

Everything is imported on first use, so ``import metainspect`` costs almost nothing.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from metainspect.errors import CorruptError, Hint, MetainspectError, NotFoundError, TensorNotFoundError, WrongKindError

__version__ = "0.1.0"

#: lazily imported names -> the module defining them
_LAZY = {
    "check": "metainspect.api",
    "convert": "metainspect.api",
    "export_saved_model": "metainspect.api",
    "load_model": "metainspect.api",
    "open_checkpoint": "metainspect.api",
    "rewrite_checkpoint": "metainspect.api",
    "Checkpoint": "metainspect.checkpoint",
    "Model": "metainspect.graph.model",
    "Editor": "metainspect.edit.editor",
    "Report": "metainspect.check.runner",
    "RewriteOptions": "metainspect.rewrite",
    "ConvertOptions": "metainspect.convert",
    "ExportOptions": "metainspect.export",
    "Progress": "metainspect.progress",
}

__all__ = [
    "Checkpoint", "ConvertOptions", "CorruptError", "Editor", "ExportOptions", "Hint", "MetainspectError", "Model",
    "NotFoundError", "Progress", "Report", "RewriteOptions", "TensorNotFoundError", "WrongKindError", "check", "convert",
    "export_saved_model", "load_model", "open_checkpoint", "rewrite_checkpoint",
]

if TYPE_CHECKING:
    from metainspect.api import check, convert, export_saved_model, load_model, open_checkpoint, rewrite_checkpoint
    from metainspect.check.runner import Report
    from metainspect.checkpoint import Checkpoint
    from metainspect.convert import ConvertOptions
    from metainspect.edit.editor import Editor
    from metainspect.export import ExportOptions
    from metainspect.graph.model import Model
    from metainspect.progress import Progress
    from metainspect.rewrite import RewriteOptions


def __getattr__(name: str) -> Any:
    """Import the layer defining ``name`` only when it is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metainspect' has no attribute {name!r}")
    return getattr(import_module(module), name)


#: top-level functions named like a subpackage (``metainspect.check``, ``metainspect.convert``)
_SHADOWED = frozenset({"check", "convert"})


class _Package(types.ModuleType):
    """The package module: ``metainspect.check`` stays the function when the ``check`` subpackage loads.

    Importing a submodule sets it as an attribute of its package; the ``check`` and ``convert``
    subpackages would then hide the top-level functions of those names. The subpackages are
    still imported by name (``from metainspect.check import run_checks``) through ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
