"""Result pieces shared by checkpoint and graph diffs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


def name_filter(match: str | re.Pattern[str] | None) -> Callable[[str], bool]:
    """Whether a name is kept: ``match`` (a regular expression) finds it; every name without one."""
    if match is None:
        return lambda name: True
    if isinstance(match, str):
        try:
            match = re.compile(match)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {match!r}: {exc}") from None
    search = match.search
    return lambda name: search(name) is not None


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
