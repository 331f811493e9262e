"""Decide what an export writes, before anything is written.

:func:`plan_export` runs ``check`` on the model and its checkpoint (refusing on errors unless
forced), settles the serving signature (the ``--input``/``--output`` given, else the model's own
signature of that name, else check's proposal when it is unambiguous) and prepares the
MetaGraphDef both engines write: devices cleared on request, the tag set, the signature, and a
main op initializing lookup tables when the graph has table initializers but no init op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metainspect.errors import Hint, MetainspectError
from metainspect.graph.collections import LEGACY_INIT_OP_KEY, MAIN_OP_KEY, TABLE_INITIALIZERS
from metainspect.graph.endpoints import INIT_OP_SIGNATURE, SERVE_TAG, SERVING_DEFAULT

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.check import Finding, Report
    from metainspect.export.assets import Asset
    from metainspect.graph.model import Model
    from metainspect.graph.proposal import Proposal, ProposalSource

#: findings ``--clear-devices`` resolves (the export drops the pins they are about)
DEVICE_PIN_FINDINGS = "serving.device-pin-"
MAIN_OP_NAME = "init_all_tables"


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how (the ``export`` command's options)."""

    #: checkpoint to restore (default: the one ``check`` finds beside the model)
    checkpoint: str | None = None
    #: signature key -> tensor name; empty: decided by :func:`choose_signature`
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    signature_name: str = SERVING_DEFAULT
    #: tag set of the exported meta graph
    tags: tuple[str, ...] = (SERVE_TAG,)
    #: which meta graph of a SavedModel to read (default: the ``serve`` one)
    model_tags: tuple[str, ...] | None = None
    clear_devices: bool = False
    #: export even when ``check`` reports errors
    force: bool = False


class CheckFailed(MetainspectError):
    """``check`` found errors the export would not fix; :attr:`errors` lists them."""

    def __init__(self, report: Report, errors: list[Finding]) -> None:
        self.report = report
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        hint = Hint("force")
        super().__init__(report.model_path, f"{first.id}: {first.message}{more}; {hint.text}", hint)


class AmbiguousSignature(MetainspectError):
    """No signature was given and check's proposal is not certain; :attr:`proposal` has the choices
    (its ``inputs`` and ``outputs`` are the likeliest ones)."""

    def __init__(self, path: str, proposal: Proposal | None) -> None:
        self.proposal = proposal
        hint = Hint("choose_endpoints")
        super().__init__(path, f"cannot choose the serving signature by itself; {hint.text}", hint)


@dataclass
class ExportPlan:
    """Everything an engine needs, decided and checked."""

    model: Model
    report: Report
    #: checkpoint prefix (or V1 file/pattern) to restore, None when the model has none
    checkpoint: str | None
    meta_graph: MetaGraphDef
    signature_name: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    #: "given", "signature" (the model's own) or "inferred" (check's proposal)
    signature_source: ProposalSource
    assets: list[Asset]
    #: name of the main op added to initialize tables, if one was
    added_main_op: str | None


def plan_export(model: str | Model, options: ExportOptions, *, signature: bool = True) -> ExportPlan:
    """Check ``model`` (a path, or a model in memory), choose the signature, prepare the meta graph.

    Nothing is written. ``signature=False`` (a frozen graph only) settles the outputs without
    writing a SignatureDef.
    """
    from metainspect.check import run_checks
    from metainspect.edit import add_signature, clear_devices, set_tags
    from metainspect.export.assets import find_assets
    from metainspect.graph.model import load_model

    model_tags = list(options.model_tags) if options.model_tags else None
    loaded = model if not isinstance(model, str) else load_model(model, model_tags)
    report = run_checks(loaded, options.checkpoint, dict(options.inputs) or None, dict(options.outputs) or None)
    errors = blocking_errors(report, options)
    if errors and not options.force:
        raise CheckFailed(report, errors)
    inputs, outputs, source = choose_signature(loaded, report.proposal, options)
    meta_graph = _copy(loaded.meta_graph)
    try:  # the editors raise without a path: this one is the model's
        if options.clear_devices:
            clear_devices(meta_graph)
        set_tags(meta_graph, list(options.tags))
        if signature and source != "signature":
            add_signature(meta_graph, options.signature_name, inputs, outputs, replace=True)
    except MetainspectError as exc:
        raise exc.with_path(loaded.path) from None
    added = ensure_main_op(meta_graph)
    return ExportPlan(loaded, report, report.checkpoint_path, meta_graph, options.signature_name,
                      inputs, outputs, source, find_assets(loaded), added)


def blocking_errors(report: Report, options: ExportOptions) -> list[Finding]:
    """check's errors, less the device pins ``--clear-devices`` removes."""
    from metainspect.check.findings import ERROR

    return [f for f in report.findings if f.severity == ERROR
            and not (options.clear_devices and f.id.startswith(DEVICE_PIN_FINDINGS))]


def choose_signature(model: Model, proposal: Proposal | None,
                     options: ExportOptions) -> tuple[dict[str, str], dict[str, str], ProposalSource]:
    """``(inputs, outputs, source)`` of the signature to export; AmbiguousSignature if unsure."""
    given_in, given_out = dict(options.inputs), dict(options.outputs)
    if given_in and given_out:
        return given_in, given_out, "given"
    existing = model.signatures().get(options.signature_name)
    if not given_in and not given_out and existing is not None:
        inputs = {k: v.name for k, v in existing.inputs.items() if v.name}
        outputs = {k: v.name for k, v in existing.outputs.items() if v.name}
        return inputs, outputs, "signature"
    if proposal is None or not proposal.unambiguous or not proposal.outputs:
        raise AmbiguousSignature(model.path, proposal)
    inputs = given_in or dict(proposal.inputs)
    outputs = given_out or dict(proposal.outputs)
    return inputs, outputs, "given" if given_in or given_out else "inferred"


def ensure_main_op(meta_graph: MetaGraphDef) -> str | None:
    """Add a NoOp running the table initializers as main op, unless the graph has an init op.

    Returns the added op's name (None when nothing was needed). Loaders run the main op after
    restoring variables, with the asset paths fed.
    """
    collections = meta_graph.collection_def
    if MAIN_OP_KEY in collections or LEGACY_INIT_OP_KEY in collections or INIT_OP_SIGNATURE in meta_graph.signature_def:
        return None
    initializers = list(collections[TABLE_INITIALIZERS].node_list.value) if TABLE_INITIALIZERS in collections else []
    if not initializers:
        return None
    taken = {node.name for node in meta_graph.graph_def.node}
    name, i = MAIN_OP_NAME, 1
    while name in taken:
        name, i = f"{MAIN_OP_NAME}_{i}", i + 1
    node = meta_graph.graph_def.node.add(name=name, op="NoOp")
    node.input.extend(f"^{op.split(':')[0]}" for op in initializers)
    collections[MAIN_OP_KEY].node_list.value.append(name)
    return name


def _copy(meta_graph: MetaGraphDef) -> MetaGraphDef:
    copy = type(meta_graph)()
    copy.CopyFrom(meta_graph)
    return copy
