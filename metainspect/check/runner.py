"""Run every check on a model and its checkpoint and collect one :class:`Report`.

``run_checks`` takes the model (a ``.meta``, a checkpoint prefix with its ``.meta``, a
SavedModel, or a :class:`~metainspect.graph.model.Model` already in memory, edited or not),
finds the checkpoint (the one given, else the one beside the graph: the prefix of ``X.meta``,
the directory's ``checkpoint`` state file or only checkpoint, a SavedModel's
``variables/variables``) and runs the saver, restore, graph, signature, serving and security
checks; the restore check reads the checkpoint's data back against its checksums unless told not to.
An unreadable model or an explicitly named checkpoint that cannot be opened raises
:class:`~metainspect.errors.MetainspectError` (nothing could be checked); a missing default
checkpoint only limits the check (``restore.no-checkpoint``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metainspect.check.findings import ERROR, INFO, SEVERITIES, WARNING, CheckContext, Finding
from metainspect.errors import CorruptError, MetainspectError, WrongKindError
from metainspect.formats.filesystem import filesystem

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model
    from metainspect.graph.proposal import Proposal
    from metainspect.progress import Progress

#: version of the JSON document :meth:`Report.to_json` returns
SCHEMA_VERSION = 1
#: checks in the order they run; findings of equal severity keep this order
CHECKS = ("saver", "restore", "graph", "signature", "serving", "security")


@dataclass
class Report:
    """Findings of one ``check`` run, most severe first, with the proposed signature."""

    model_path: str
    checkpoint_path: str | None
    findings: list[Finding]
    proposal: Proposal | None = None
    model_kind: str | None = None
    checkpoint_format: str | None = None
    #: why no checkpoint was checked (None when one was)
    checkpoint_problem: str | None = None
    #: what opening the checkpoint worked around (a state file naming a missing checkpoint…)
    checkpoint_notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        rank = {severity: i for i, severity in enumerate(SEVERITIES)}
        self.findings = sorted(self.findings, key=lambda f: rank[f.severity])
        self.counts = {severity: 0 for severity in SEVERITIES}
        for finding in self.findings:
            self.counts[finding.severity] += 1

    @property
    def errors(self) -> int:
        return self.counts[ERROR]

    @property
    def warnings(self) -> int:
        return self.counts[WARNING]

    @property
    def infos(self) -> int:
        return self.counts[INFO]

    def ready(self, strict: bool = False) -> bool:
        """No errors (and, when ``strict``, no warnings)."""
        return self.errors == 0 and not (strict and self.warnings)

    def verdict_line(self, strict: bool = False) -> str:
        """``READY: 0 errors, 2 warnings`` / ``NOT READY: 2 errors, 1 warning`` (strict: warnings fail)."""
        counts = f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}"
        if self.ready(strict):
            return f"READY: {counts}"
        return f"NOT READY{' (strict: warnings count)' if strict and not self.errors else ''}: {counts}"

    @property
    def verdict(self) -> str:
        return self.verdict_line()

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        """The report as plain data (the command line's ``check --json`` adds its ``exit_code``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model_path,
            "model_kind": self.model_kind,
            "checkpoint": self.checkpoint_path,
            "checkpoint_format": self.checkpoint_format,
            "checkpoint_problem": self.checkpoint_problem,
            "checkpoint_notes": list(self.checkpoint_notes),
            "ready": self.ready(strict),
            "strict": strict,
            "verdict": self.verdict_line(strict),
            "counts": dict(self.counts),
            "findings": [f.to_json() for f in self.findings],
            "proposal": self.proposal.to_json() if self.proposal is not None else None,
        }


def run_checks(model: str | os.PathLike[str] | Model, checkpoint: str | os.PathLike[str] | Checkpoint | None = None,
               inputs: Mapping[str, str] | None = None, outputs: Mapping[str, str] | None = None,
               tags: Sequence[str] | None = None, *, verify: bool = True,
               progress: Progress | None = None) -> Report:
    """Check ``model`` against ``checkpoint`` (default: the one beside it); see the module docstring.

    ``model`` is a path (``tags`` picks a SavedModel's meta graph) or a :class:`Model`, checked as
    it is in memory. ``checkpoint`` is a path or an open :class:`Checkpoint` (left open).
    ``inputs``/``outputs`` map signature keys to tensor names, as a server would feed and fetch.
    ``verify=False`` skips checking the checkpoint's data against its checksums; ``progress``
    hears how that check advances (step ``"verifying"``, in tensors).
    """
    from metainspect.checkpoint import Checkpoint, open_checkpoint
    from metainspect.graph.model import Model, load_model

    if isinstance(model, Model):
        loaded, argument = model, model.source
    else:
        argument = os.fspath(model)
        loaded = load_model(argument, list(tags) if tags else None)
    if isinstance(checkpoint, Checkpoint):
        return _run(loaded, checkpoint, None, inputs, outputs, verify, progress)
    ckpt: Checkpoint | None
    problem: str | None
    if checkpoint is not None:
        ckpt, problem = open_checkpoint(os.fspath(checkpoint)), None
    elif argument:
        ckpt, problem = default_checkpoint(argument, loaded)
    else:
        ckpt, problem = None, "the model was built in memory: no file to find a checkpoint beside"
    try:
        return _run(loaded, ckpt, problem, inputs, outputs, verify, progress)
    finally:
        if ckpt is not None:
            ckpt.close()


def _run(loaded: Model, ckpt: Checkpoint | None, problem: str | None, inputs: Mapping[str, str] | None,
         outputs: Mapping[str, str] | None, verify: bool, progress: Progress | None) -> Report:
    from metainspect.check.references import check_references
    from metainspect.check.restore import check_restore
    from metainspect.check.saver import check_saver
    from metainspect.check.security import check_security
    from metainspect.check.serving import check_serving
    from metainspect.check.signature import check_signature

    ctx = CheckContext(loaded, ckpt, problem, dict(inputs or {}), dict(outputs or {}), verify, progress)
    findings = check_saver(ctx) + check_restore(ctx) + check_references(ctx)
    signature_findings, proposal = check_signature(ctx)
    findings += signature_findings + check_serving(ctx) + check_security(ctx)
    return Report(
        model_path=loaded.path, checkpoint_path=ckpt.prefix if ckpt is not None else None, findings=findings,
        proposal=proposal, model_kind=loaded.kind, checkpoint_format=ckpt.format.upper() if ckpt is not None else None,
        checkpoint_problem=problem, checkpoint_notes=list(ckpt.notes) if ckpt is not None else [],
    )


def default_checkpoint(argument: str, model: Model) -> tuple[Checkpoint | None, str | None]:
    """The checkpoint beside the graph, or None and why there is none.

    A checkpoint that is found but cannot be read raises (CorruptError): it exists, so a
    verdict without it would mislead.
    """
    from metainspect.checkpoint import open_checkpoint
    from metainspect.formats.graph_file import GRAPH_DEF, SAVED_MODEL

    if model.kind == GRAPH_DEF:
        return None, f"{model.path} is a bare GraphDef, which has no saver and no checkpoint"
    files = filesystem(model.path)
    directory = files.dirname(model.path) or "."
    candidates = [directory] if model.kind == SAVED_MODEL else _meta_candidates(argument, model.path, directory)
    refusal = None
    for candidate in candidates:
        try:
            return open_checkpoint(candidate), None
        except CorruptError:
            raise
        except WrongKindError as exc:
            if exc.path == candidate:  # e.g. a directory holding several checkpoints
                refusal = f"{candidate}: {exc.message}"
        except MetainspectError:
            continue
    if model.kind == SAVED_MODEL:
        return None, "the SavedModel has no variables/variables checkpoint"
    name = files.basename(model.path)
    stem = name[: -len(".meta")] if name.endswith(".meta") else name
    return None, refusal or (f"no checkpoint beside {name} (no {stem}.index or V1 file {stem}, and no "
                             f"`checkpoint` state file or single checkpoint in {directory})")


def _meta_candidates(argument: str, meta_path: str, directory: str) -> list[str]:
    """Where a ``.meta``'s checkpoint may be: the prefix given, ``X`` for ``X.meta``, the directory."""
    candidates = []
    if not argument.endswith(".meta") and not filesystem(argument).isdir(argument):
        candidates.append(argument)
    if meta_path.endswith(".meta"):
        stem = meta_path[: -len(".meta")]
        files = filesystem(stem)
        if files.exists(stem + ".index") or files.isfile(stem):
            candidates.append(stem)
    candidates.append(directory)
    return list(dict.fromkeys(candidates))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
