"""Edit a model in memory, then take the result as a model or write it: ``model.edit()…save(path)``.

An :class:`Editor` works on a copy of the model's graph file (every meta graph of a SavedModel),
so the model it came from never changes (``model.edit(copy=False)`` skips the copy when the model
is not used again, as the command line does). Operations are collected and run together, in the
fixed order of :mod:`metainspect.edit.pipeline`, when a result is asked for
(:meth:`Editor.model`, :meth:`Editor.save`, :meth:`Editor.save_in_place`,
:attr:`Editor.changes`): every operation names nodes as they are before that run, and the
rename, run last, carries the others along. Operations chained after a result start a new run
on the edited graph. An edit that cannot be made raises before the result exists; the editor
then refuses to give or write one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast

from metainspect.edit.changes import ChangeLog
from metainspect.edit.pipeline import EditSpec, NewSignature, apply_edits
from metainspect.edit.target import EditTarget, WriteResult, write_in_place, write_output
from metainspect.errors import MetainspectError

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.checkpoint.renames import Rename
    from metainspect.graph.attrs import Shape
    from metainspect.graph.model import Model


class Editor:
    """Chainable edits of one model (see the module docstring)."""

    def __init__(self, model: Model, *, copy: bool = True) -> None:
        self._target = target_of(model, copy=copy)
        self._spec = EditSpec()
        self._log = ChangeLog()
        self._failed: MetainspectError | None = None

    # -- operations -----------------------------------------------------------------------
    def remove_signature(self, name: str) -> Editor:
        """Remove SignatureDef ``name``."""
        self._spec.remove_signatures.append(name)
        return self

    def drop_collection(self, name: str) -> Editor:
        """Remove collection ``name`` (the nodes it names stay)."""
        self._spec.drop_collections.append(name)
        return self

    def strip_training(self) -> Editor:
        """Remove optimizer, gradient and summary subgraphs and optimizer-only variables."""
        self._spec.strip_training = True
        return self

    def prune_to(self, *outputs: str) -> Editor:
        """Keep only what these ops or tensors need, plus the saver and initialisers."""
        self._spec.prune_to.extend(outputs)
        return self

    def set_shape(self, placeholder: str, shape: Shape) -> Editor:
        """Set a placeholder's shape: a list of sizes with None for unknown, ``[]`` scalar, None unknown rank."""
        self._spec.set_shapes.append((placeholder, None if shape is None else list(shape)))
        return self

    def clear_devices(self) -> Editor:
        """Clear every node's device (function bodies included)."""
        self._spec.clear_devices = True
        return self

    def add_signature(self, name: str, inputs: Mapping[str, str], outputs: Mapping[str, str],
                      method: str = "predict") -> Editor:
        """Add SignatureDef ``name`` (keys -> tensor names); dtypes and shapes come from the graph.

        ``method`` is ``predict``, ``classify``, ``regress`` or a full method name.
        """
        from metainspect.edit.signatures import method_name

        self._spec.add_signature = NewSignature(name, dict(inputs), dict(outputs), method_name(method))
        return self

    def set_tags(self, tags: str | Iterable[str]) -> Editor:
        """Replace the meta graph's tag set (``"serve"`` or ``["serve", "gpu"]``)."""
        self._spec.set_tags = [tags] if isinstance(tags, str) else list(tags)
        return self

    def rename(self, *rules: str | Rename) -> Editor:
        """Rename by rules, first match wins: ``"net=model"`` renames a scope, ``"re:PATTERN=REPL"``
        applies a regular expression; every reference and the saver's checkpoint keys follow."""
        self._spec.renames.extend(rules)
        return self

    def apply(self, spec: EditSpec) -> Editor:
        """Queue every operation of ``spec`` (the edits of one ``metainspect edit`` command)."""
        pending = self._spec
        pending.remove_signatures += spec.remove_signatures
        pending.drop_collections += spec.drop_collections
        pending.strip_training |= spec.strip_training
        pending.prune_to += spec.prune_to
        pending.set_shapes += spec.set_shapes
        pending.clear_devices |= spec.clear_devices
        if spec.add_signature is not None:
            pending.add_signature = spec.add_signature
        if spec.set_tags is not None:
            pending.set_tags = list(spec.set_tags)
        pending.renames += spec.renames
        return self

    # -- results --------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The graph file being edited."""
        return self._target.path

    @property
    def changes(self) -> ChangeLog:
        """Every change made so far, with notes (runs the pending operations)."""
        self._run()
        return self._log

    def model(self) -> Model:
        """The edited model, in memory (runs the pending operations)."""
        self._run()
        return self._target.model()

    def save(self, out: str | os.PathLike[str]) -> WriteResult:
        """Write the edited graph to ``out``, in the input's kind and encoding (runs the pending operations).

        A SavedModel opened by its directory is written as a new directory ``out``.
        """
        self._run()
        return write_output(self._target, out, changed=bool(len(self._log)))

    def save_in_place(self) -> WriteResult:
        """Replace the graph file the model was read from, after copying it to ``NAME.bak``."""
        self._run()
        return write_in_place(self._target)

    def _run(self) -> None:
        if self._failed is not None:
            raise MetainspectError(self._target.path, f"an earlier edit failed ({self._failed.message}); "
                                   "start again from the model")
        if self._spec.is_empty():
            return
        spec, self._spec = self._spec, EditSpec()
        try:
            log = apply_edits(self._target, spec)
        except MetainspectError as exc:
            self._failed = exc
            raise
        self._log.changes += log.changes
        self._log.notes += log.notes


def target_of(model: Model, *, copy: bool) -> EditTarget:
    """An edit target over ``model``'s graph file (copied first with ``copy``)."""
    from metainspect.formats.filesystem import filesystem
    from metainspect.formats.graph_file import SAVED_MODEL, Encoding, GraphFile, GraphKind

    graph = model.graph_file
    if graph is None or not any(mg is model.meta_graph for mg in graph.meta_graphs):  # a model built by hand
        graph = GraphFile(model.path, cast(GraphKind, model.kind), cast(Encoding, model.encoding), [model.meta_graph],
                          model.saved_model_schema_version)
    index = next(i for i, mg in enumerate(graph.meta_graphs) if mg is model.meta_graph)
    if copy:
        graph = GraphFile(graph.path, graph.kind, graph.encoding, [_copied(mg) for mg in graph.meta_graphs],
                          graph.saved_model_schema_version)
    directory = model.source if graph.kind == SAVED_MODEL and filesystem(model.source).isdir(model.source) else None
    return EditTarget(model.source, graph, index, directory)


def _copied(meta_graph: MetaGraphDef) -> MetaGraphDef:
    copy = type(meta_graph)()
    copy.CopyFrom(meta_graph)
    return copy


__all__ = ["Editor", "target_of"]
