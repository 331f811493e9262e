"""Export a TF1 graph + checkpoint to a SavedModel for TF Serving and/or a frozen GraphDef.

``export_saved_model(model, out)`` and ``export_frozen(model, out_pb)`` run ``check`` first
(see :mod:`metainspect.export.plan`), then write with one of two engines:

* ``"pure"`` (:mod:`.pure_engine`, :mod:`.freeze`): protobuf and numpy only;
* ``"tf"`` (:mod:`.tf_engine`): TensorFlow's own SavedModelBuilder and
  ``convert_variables_to_constants``.

``"auto"`` uses TensorFlow when it is installed. TF2 object-based checkpoints have no graph:
:func:`export_from_factory` rebuilds the model from Python code (:mod:`.tf2_factory`).
Outputs are written atomically and never overwrite an existing path; a URL output is written
locally, then uploaded one object per file (``saved_model.pb`` last).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metainspect.errors import Hint, MetainspectError, WrongKindError
from metainspect.export.plan import AmbiguousSignature, CheckFailed, ExportOptions, ExportPlan, plan_export
from metainspect.export.tf2_factory import InputSpec, export_from_factory
from metainspect.formats.filesystem import filesystem, is_url, staged_output
from metainspect.progress import Progress, silent

if TYPE_CHECKING:
    from metainspect.graph.model import Model

ENGINES = ("auto", "tf", "pure")


@dataclass
class ExportResult:
    """What an export wrote."""

    model: str
    engine: str
    saved_model: str | None = None
    frozen: str | None = None
    signature_name: str | None = None
    #: signature key -> {tensor, dtype, shape}
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature_source: str | None = None
    tags: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    assets: list[str] = field(default_factory=list)
    #: frozen graph: constants made from variables, placeholders kept, nodes
    constants: int | None = None
    frozen_inputs: list[str] = field(default_factory=list)
    frozen_nodes: int | None = None
    #: check's verdict and its warnings (one line each)
    verdict: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def choose_engine(engine: str) -> str:
    """``"auto"`` -> ``"tf"`` when TensorFlow is installed, else ``"pure"``; others pass through."""
    if engine not in ENGINES:
        raise MetainspectError(None, f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    return "tf" if importlib.util.find_spec("tensorflow") is not None else "pure"


def export(model: str | os.PathLike[str] | Model, *, out: str | os.PathLike[str] | None = None,
           frozen: str | os.PathLike[str] | None = None, options: ExportOptions = ExportOptions(),
           engine: str = "auto", progress: Progress = silent) -> ExportResult:
    """Write a SavedModel to ``out`` and/or a frozen GraphDef to ``frozen`` (at least one).

    ``model`` is a path or a :class:`~metainspect.graph.model.Model` in memory (edited or not).
    """
    from metainspect.graph.model import Model

    model = model if isinstance(model, Model) else os.fspath(model)
    out = os.fspath(out) if out is not None else None
    frozen = os.fspath(frozen) if frozen is not None else None
    if out is None and frozen is None:
        raise MetainspectError(model if isinstance(model, str) else model.path,
                               "nothing to write: give an output directory and/or a frozen graph path")
    for target in (out, frozen):
        if target is not None and (filesystem(target).exists(target) if is_url(target) else os.path.lexists(target)):
            raise MetainspectError(target, "already exists; choose a new output path or remove it first")
    # TensorFlow reads its checkpoint itself (no s3:// without tensorflow-io): URLs go to the pure engine
    engine = "pure" if engine == "auto" and is_url(model if isinstance(model, str) else model.path) \
        else choose_engine(engine)
    if engine == "tf":
        from metainspect.export.tf_engine import import_tensorflow

        import_tensorflow()
    progress("checking", 0, 1)
    if isinstance(model, str):
        _refuse_graphless(model)
    plan = plan_export(model, options, signature=out is not None)
    progress("checking", 1, 1)
    result = _result(plan, engine, options)
    # the frozen graph is built (and refused, if it must be) before anything is written
    frozen_data = _frozen_graph(plan, engine, result, progress) if frozen is not None else None
    if out is not None:
        # a URL: written in a local temporary directory, then uploaded (saved_model.pb last)
        with staged_output(out, order=lambda url: url.endswith("/saved_model.pb")) as local:
            _write_saved_model(plan, local, engine, progress)
        result.saved_model = out if is_url(out) else os.path.abspath(out)
        result.assets = [asset.filename for asset in plan.assets]
    if frozen is not None and frozen_data is not None:
        from metainspect.formats.atomic import write_bytes

        with staged_output(frozen) as local:
            write_bytes(local, frozen_data)
        result.frozen = frozen if is_url(frozen) else os.path.abspath(frozen)
    return result


def _refuse_graphless(model: str) -> None:
    """A TF2 checkpoint has no graph to export: say what to do instead of "no graph found"."""
    from metainspect.checkpoint import open_checkpoint
    from metainspect.formats.detect import find_graph_file

    try:
        find_graph_file(model)
        return
    except MetainspectError as missing:
        try:
            with open_checkpoint(model) as checkpoint:
                tf2 = checkpoint.object_graph() is not None
        except MetainspectError:
            raise missing from None
        if not tf2:
            raise
    hint = Hint("rebuild_from_factory")
    raise WrongKindError(model, f"is a TF2 object-based checkpoint: values without a graph; {hint.text}", hint)


def export_saved_model(model: str | os.PathLike[str] | Model, out: str | os.PathLike[str],
                       options: ExportOptions = ExportOptions(), *, engine: str = "auto",
                       progress: Progress = silent) -> ExportResult:
    """Export ``model`` (+ checkpoint) as a SavedModel directory ``out`` (must not exist)."""
    return export(model, out=out, options=options, engine=engine, progress=progress)


def export_frozen(model: str | os.PathLike[str] | Model, out: str | os.PathLike[str],
                  options: ExportOptions = ExportOptions(), *, engine: str = "auto",
                  progress: Progress = silent) -> ExportResult:
    """Export ``model`` (+ checkpoint) as a frozen GraphDef file ``out`` (must not exist)."""
    return export(model, frozen=out, options=options, engine=engine, progress=progress)


def _write_saved_model(plan: ExportPlan, out: str, engine: str, progress: Progress) -> None:
    from metainspect.formats.atomic import new_directory

    if engine == "pure":
        _require_restorable(plan)
    with new_directory(out) as tmp:
        if engine == "tf":
            from metainspect.export import tf_engine

            tf_engine.write_saved_model(tmp, plan.meta_graph, plan.checkpoint, plan.assets, plan.model.path, progress)
            return
        from metainspect.checkpoint import open_checkpoint
        from metainspect.export import pure_engine

        if plan.checkpoint is None:
            pure_engine.write_saved_model(tmp, plan.meta_graph, None, plan.assets, progress)
            return
        with open_checkpoint(plan.checkpoint) as checkpoint:
            pure_engine.write_saved_model(tmp, plan.meta_graph, checkpoint, plan.assets, progress,
                                          keys=_restored_keys(plan))


def _restored_keys(plan: ExportPlan) -> list[str] | None:
    """The checkpoint keys the exported graph's saver restores (None when it names none)."""
    from metainspect.graph.model import Model
    from metainspect.graph.saver import checkpoint_keys

    exported = Model(plan.model.path, "meta_graph", "binary", plan.meta_graph, [list(plan.meta_graph.meta_info_def.tags)])
    return checkpoint_keys(exported) or None


def _require_restorable(plan: ExportPlan) -> None:
    """The pure engine restores through the graph's own SaverDef: it needs one, and a checkpoint."""
    if not plan.model.variables():
        return
    if not plan.meta_graph.HasField("saver_def"):
        hint = Hint("engine_tf")
        raise MetainspectError(plan.model.path, "the graph has variables but no SaverDef, so a loader could not "
                               f"restore them; {hint.text}", hint)
    if plan.checkpoint is None:
        hint = Hint("give_checkpoint")
        raise MetainspectError(plan.model.path, f"the graph has variables but no checkpoint was found; {hint.text}",
                               hint)


def _frozen_graph(plan: ExportPlan, engine: str, result: ExportResult, progress: Progress) -> bytes:
    """The serialized frozen GraphDef; its size and inputs are recorded in ``result``."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    from metainspect.graph.model import PLACEHOLDER_OPS

    outputs = list(plan.outputs.values())
    if engine == "tf":
        from metainspect.export import tf_engine

        data = tf_engine.freeze_graph_def(plan.meta_graph, plan.checkpoint, outputs, plan.model.path, progress)
        graph_def = GraphDef.FromString(data)
    else:
        from metainspect.checkpoint import open_checkpoint
        from metainspect.export.freeze import freeze
        from metainspect.graph.model import Model

        edited = Model(plan.model.path, plan.model.kind, plan.model.encoding, plan.meta_graph, plan.model.all_tags)
        checkpoint = open_checkpoint(plan.checkpoint) if plan.checkpoint is not None else None
        try:
            frozen = freeze(edited, checkpoint, outputs, progress=progress)
        finally:
            if checkpoint is not None:
                checkpoint.close()
        graph_def = frozen.graph_def
        data = graph_def.SerializeToString()
        result.constants = len(frozen.constants)
    result.frozen_nodes = len(graph_def.node)
    result.frozen_inputs = [node.name for node in graph_def.node if node.op in PLACEHOLDER_OPS]
    return data


def _result(plan: ExportPlan, engine: str, options: ExportOptions) -> ExportResult:
    from metainspect.check.findings import WARNING
    from metainspect.export.plan import DEVICE_PIN_FINDINGS

    resolved = [f for f in plan.report.findings if options.clear_devices and f.id.startswith(DEVICE_PIN_FINDINGS)]
    notes = [f"added main op {plan.added_main_op!r} to initialize lookup tables"] if plan.added_main_op else []
    if resolved:
        notes.append(f"clearing devices resolved {len(resolved)} device-pin finding(s) of check")
    return ExportResult(
        model=plan.model.path, engine=engine,
        signature_name=plan.signature_name if plan.signature_name in plan.meta_graph.signature_def else None,
        inputs={k: _spec_json(plan.model, v) for k, v in sorted(plan.inputs.items())},
        outputs={k: _spec_json(plan.model, v) for k, v in sorted(plan.outputs.items())},
        signature_source=plan.signature_source, tags=list(options.tags), checkpoint=plan.checkpoint,
        verdict=plan.report.verdict + (" (before clearing devices)" if resolved else ""),
        warnings=_folded([f for f in plan.report.findings if f.severity == WARNING and f not in resolved]),
        notes=notes,
    )


#: more warnings of one kind than this are folded into one line with a count
FOLD_WARNINGS = 3


def _folded(findings: list[Any]) -> list[str]:
    """One line per warning; a kind repeated (one per tensor, say) is one line with a count."""
    by_id: dict[str, list[Any]] = {}
    for finding in findings:
        by_id.setdefault(finding.id, []).append(finding)
    lines = []
    for finding_id, group in by_id.items():
        if len(group) > FOLD_WARNINGS:
            lines.append(f"{finding_id}: {group[0].message} (and {len(group) - 1} more like it)")
        else:
            lines += [f"{finding_id}: {f.message}" for f in group]
    return lines


def _spec_json(model: Any, tensor: str) -> dict[str, Any]:
    from metainspect.graph.outputs import output_spec

    try:
        spec = output_spec(model, tensor)
    except (LookupError, ValueError):
        return {"tensor": tensor, "dtype": None, "shape": None}
    return {"tensor": spec.tensor, "dtype": spec.dtype, "shape": spec.shape}


__all__ = [
    "AmbiguousSignature",
    "CheckFailed",
    "ExportOptions",
    "ExportResult",
    "InputSpec",
    "choose_engine",
    "export",
    "export_from_factory",
    "export_frozen",
    "export_saved_model",
]
