"""Result pieces shared by checkpoint and graph diffs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Renamed:
    """A name of A paired with a different name of B."""

    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.old, "to": self.new}


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``field`` (``op``, ``inputs``, ``attr``…), ``key`` for keyed
    fields (the attr name, the signature input…), and the values as short text (None: absent)."""

    field: str
    key: str | None
    a: str | None
    b: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"field": self.field, "key": self.key, "a": self.a, "b": self.b}
