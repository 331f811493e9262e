"""What a check reports: findings with an id, a severity, the node or key concerned and a fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from metainspect.remedy import Remedy

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model
    from metainspect.progress import Progress

Severity = Literal["error", "warning", "info"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
INFO: Severity = "info"
#: most severe first; reports group findings in this order
SEVERITIES: tuple[Severity, ...] = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One problem (or fact worth knowing) about a graph and its checkpoint.

    ``id`` is ``<category>.<slug>`` (``restore.missing-key``); ``subject`` names the node, tensor or
    checkpoint key concerned; ``fix`` says what to do about it; ``details`` holds machine-readable
    extras (expected vs. found shapes, suggested keys…); ``remedy`` is the metainspect operation
    ``fix`` proposes, if any (``fix`` words it as the Python API, the command line as a command).
    """

    id: str
    severity: Severity
    message: str
    subject: str | None
    fix: str
    details: dict[str, Any] = field(default_factory=dict)
    #: the operation of metainspect ``fix`` proposes, when it proposes one (its API words are in ``fix``)
    remedy: Remedy | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if "." not in self.id:
            raise ValueError(f"finding id {self.id!r} must be <category>.<slug>")

    @property
    def category(self) -> str:
        return self.id.partition(".")[0]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "severity": self.severity,
                "message": self.message, "subject": self.subject, "fix": self.fix,
                "details": self.details, "remedy": self.remedy.to_json() if self.remedy else None}


@dataclass
class CheckContext:
    """Everything the checks look at: the model, its checkpoint and the endpoints the user named.

    ``checkpoint`` is None when there is none to check against (``checkpoint_problem`` then says
    why, e.g. "no checkpoint beside model.meta"). ``inputs``/``outputs`` map signature keys to
    tensor names as given with ``--input``/``--output`` (empty when not given). ``verify`` checks
    the checkpoint's data against its checksums, reporting ``progress("verifying", done, total)`` in tensors.
    """

    model: Model
    checkpoint: Checkpoint | None = None
    checkpoint_problem: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    verify: bool = True
    progress: Progress | None = None
