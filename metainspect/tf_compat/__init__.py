"""A stand-in for the slice of TensorFlow that checkpoint loaders use, so they run without TF.

Code written for TensorFlow — Hugging Face transformers 4.x's ``load_tf_weights_in_bert``,
``load_tf_weights_in_t5`` and their siblings, TF-slim and in-house conversion scripts — reads
checkpoints through a handful of calls. :func:`install` registers this package's modules as
``tensorflow`` (only where the real TensorFlow cannot be imported), after which
``import tensorflow as tf`` (or ``import tensorflow.compat.v1 as tf``) gives:

- ``tf.train``: ``list_variables``, ``load_variable``, ``load_checkpoint``,
  ``NewCheckpointReader``, ``latest_checkpoint``, ``get_checkpoint_state``; the reader has
  ``get_tensor``, ``has_tensor``, ``get_variable_to_shape_map``, ``get_variable_to_dtype_map``;
- ``tf.compat.v1.train`` (the same) and ``tf.compat.v1.gfile`` (``Exists``, ``GFile``);
- ``tf.io.gfile``: ``exists``, ``GFile`` for local paths;
- ``tf.dtypes``/``tf.DType``/``tf.as_dtype`` and the type constants (``tf.float32``,
  ``tf.bfloat16``…) with ``.name`` and ``.as_numpy_dtype`` (bfloat16 through ``ml_dtypes``);
- ``tf.errors``: ``OpError``, ``NotFoundError``, ``DataLossError``, ``InvalidArgumentError``,
  ``UnimplementedError``.

Anything else raises an error naming what is missing and saying this is a stand-in. Readers
are cached per checkpoint (:mod:`metainspect.tf_compat.train`). The same functions can be used
directly: ``from metainspect.tf_compat import train``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

from metainspect.errors import MetainspectError
from metainspect.tf_compat import dtypes, errors, gfile, train

NAME = "tensorflow"
#: what the stand-in offers, for error messages
SLICE = ("train.list_variables, train.load_variable, train.load_checkpoint, train.NewCheckpointReader, "
         "train.latest_checkpoint, train.get_checkpoint_state, compat.v1.train, compat.v1.gfile, io.gfile.exists, "
         "io.gfile.GFile, dtypes, errors")
_TRAIN = ("list_variables", "load_variable", "load_checkpoint", "NewCheckpointReader", "latest_checkpoint",
          "get_checkpoint_state")
_ERRORS = ("OpError", "NotFoundError", "DataLossError", "InvalidArgumentError", "UnimplementedError")


class StandInModule(types.ModuleType):
    """A module of the stand-in: a missing attribute raises an error saying so."""

    __metainspect_standin__ = True

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        raise AttributeError(
            f"module {self.__name__!r} has no attribute {attribute!r}: this is metainspect.tf_compat, a stand-in "
            f"for the part of TensorFlow that reads checkpoints ({SLICE}), not TensorFlow"
        )


class _Loader(importlib.abc.Loader):
    """The loader named in the stand-in modules' specs (they are built by :func:`install`)."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return sys.modules.get(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is complete."""


class _Finder(importlib.abc.MetaPathFinder):
    """Answers imports of ``tensorflow.*`` modules the stand-in lacks with a clear error."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: object = None) -> None:
        if fullname.startswith(NAME + ".") and fullname not in sys.modules:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: tensorflow is metainspect.tf_compat, a stand-in for the part of "
                f"TensorFlow that reads checkpoints ({SLICE})", name=fullname)
        return None


_LOADER = _Loader()
_FINDER = _Finder()


def _module(name: str, attributes: dict[str, Any]) -> StandInModule:
    module = StandInModule(name, f"metainspect.tf_compat stand-in for {name}")
    module.__spec__ = importlib.machinery.ModuleSpec(name, _LOADER, origin="metainspect.tf_compat",
                                                     is_package=True)
    module.__spec__.submodule_search_locations = []
    module.__loader__ = _LOADER
    module.__package__ = name
    module.__path__ = []
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _build() -> dict[str, StandInModule]:
    """Every module of the stand-in, by its TensorFlow name."""
    type_names = {"DType": dtypes.DType, "as_dtype": dtypes.as_dtype, **dtypes.TYPES}
    modules = {
        f"{NAME}.train": _module(f"{NAME}.train", {n: getattr(train, n) for n in _TRAIN}),
        f"{NAME}.io.gfile": _module(f"{NAME}.io.gfile", {"exists": gfile.exists, "GFile": gfile.GFile}),
        f"{NAME}.dtypes": _module(f"{NAME}.dtypes", type_names),
        f"{NAME}.errors": _module(f"{NAME}.errors", {n: getattr(errors, n) for n in _ERRORS}),
    }
    modules[f"{NAME}.io"] = _module(f"{NAME}.io", {"gfile": modules[f"{NAME}.io.gfile"]})
    v1 = f"{NAME}.compat.v1"
    modules[f"{v1}.train"] = _module(f"{v1}.train", {n: getattr(train, n) for n in _TRAIN})
    modules[f"{v1}.gfile"] = _module(f"{v1}.gfile", {"Exists": gfile.Exists, "GFile": gfile.GFile})
    common = {"io": modules[f"{NAME}.io"], "dtypes": modules[f"{NAME}.dtypes"], "errors": modules[f"{NAME}.errors"],
              **type_names}
    modules[v1] = _module(v1, {"train": modules[f"{v1}.train"], "gfile": modules[f"{v1}.gfile"], **common})
    modules[f"{NAME}.compat"] = _module(f"{NAME}.compat", {"v1": modules[v1]})
    modules[NAME] = _module(NAME, {"train": modules[f"{NAME}.train"], "compat": modules[f"{NAME}.compat"], **common})
    return modules


def tensorflow_importable() -> bool:
    """Whether the real TensorFlow is loaded or can be imported (the stand-in never counts)."""
    loaded = sys.modules.get(NAME)
    if loaded is not None:
        return not getattr(loaded, "__metainspect_standin__", False)
    return NAME not in sys.modules and importlib.util.find_spec(NAME) is not None


def install() -> types.ModuleType:
    """Register the stand-in as ``tensorflow`` and return it (again if already installed).

    Refuses (MetainspectError) when the real TensorFlow is importable: code then gets the real one.
    """
    loaded = sys.modules.get(NAME)
    if loaded is not None and getattr(loaded, "__metainspect_standin__", False):
        return loaded
    if tensorflow_importable():
        spec = loaded.__spec__ if loaded is not None else importlib.util.find_spec(NAME)
        where = spec.origin if spec is not None else None
        raise MetainspectError(where, "is the real TensorFlow, importable here; the stand-in is installed only "
                                      "where TensorFlow cannot be imported")
    modules = _build()
    sys.modules.update(modules)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return modules[NAME]


def uninstall() -> None:
    """Remove the stand-in from ``sys.modules`` (a no-op when it is not installed)."""
    for name in [n for n in sys.modules if n == NAME or n.startswith(NAME + ".")]:
        if getattr(sys.modules[name], "__metainspect_standin__", False):
            del sys.modules[name]
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def is_installed() -> bool:
    """Whether ``tensorflow`` is the stand-in now."""
    return bool(getattr(sys.modules.get(NAME), "__metainspect_standin__", False))


__all__ = ["dtypes", "errors", "gfile", "install", "is_installed", "tensorflow_importable", "train", "uninstall"]
