"""Records of what an edit changed: one :class:`Change` per node, field or entry touched.

Every edit function appends to a :class:`ChangeLog` when given one; ``edit --plan`` prints the
log of an edit run in memory, so the plan is exactly what a real run would write.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from metainspect.remedy import Remedy


@dataclass(frozen=True)
class Change:
    """One change: the operation, what it touched (a node, collection, signature…) and how."""

    operation: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.subject}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "subject": self.subject, "detail": self.detail}


@dataclass
class ChangeLog:
    """An ordered list of changes (``operation`` is stamped on each) and notes that change nothing."""

    changes: list[Change] = field(default_factory=list)
    operation: str = ""
    notes: list[str] = field(default_factory=list)
    #: metainspect operations the notes propose (each note holds its remedy's API words)
    remedies: list[Remedy] = field(default_factory=list)

    def add(self, subject: str, detail: str) -> None:
        self.changes.append(Change(self.operation, subject, detail))

    def counts(self) -> dict[str, int]:
        """Changes per operation, in the order operations first appear."""
        return dict(Counter(c.operation for c in self.changes))

    def __len__(self) -> int:
        return len(self.changes)


def log_for(log: ChangeLog | None, operation: str) -> ChangeLog:
    """``log`` switched to ``operation`` (a throw-away log when None)."""
    log = log if log is not None else ChangeLog()
    log.operation = operation
    return log
