"""Rename rules shared by ``edit --rename`` (graph) and ``rewrite --rename`` (checkpoint).

``OLD=NEW`` renames a scope: it matches the name ``OLD`` itself and every name under ``OLD/``
(``net=model`` turns ``net/dense/kernel`` into ``model/dense/kernel`` but leaves ``network/x``
alone). ``re:PATTERN=REPLACEMENT`` applies a regular expression (``re.sub``, ``\\1`` groups) to
the whole name. The first rule that matches a name wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from metainspect.errors import Hint, MetainspectError

REGEX_PREFIX = "re:"


@dataclass(frozen=True)
class Rename:
    """One rule: a scope prefix or a compiled regular expression and its replacement."""

    old: str
    new: str
    pattern: re.Pattern[str] | None = None

    @property
    def text(self) -> str:
        return f"{REGEX_PREFIX}{self.old}={self.new}" if self.pattern else f"{self.old}={self.new}"

    def apply(self, name: str) -> str | None:
        """The renamed name, or None when this rule does not match ``name``."""
        if self.pattern is not None:
            renamed, count = self.pattern.subn(self.new, name)
            return renamed if count else None
        old = self.old.rstrip("/")
        if name == old:
            return self.new.rstrip("/")
        if name.startswith(old + "/"):
            new = self.new.rstrip("/")
            return (new + name[len(old):]) if new else name[len(old) + 1:]
        return None


def parse_rename(text: str) -> Rename:
    """Parse ``OLD=NEW`` or ``re:PATTERN=REPLACEMENT``; raises MetainspectError when malformed."""
    hint = Hint("renames", text)
    if text.startswith(REGEX_PREFIX):
        body = text[len(REGEX_PREFIX):]
        pattern, sep, replacement = body.rpartition("=")
        if not sep or not pattern:
            raise MetainspectError(None, f"{hint.text}: expected re:PATTERN=REPLACEMENT", hint)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise MetainspectError(None, f"{hint.text}: bad regular expression: {exc}", hint) from None
        return Rename(pattern, replacement, compiled)
    old, sep, new = text.partition("=")
    if not sep or not old.strip("/"):
        raise MetainspectError(None, f"{hint.text}: expected OLD=NEW (a scope) or re:PATTERN=REPLACEMENT", hint)
    return Rename(old, new)


class Renamer:
    """An ordered list of rules applied to names; remembers which rules were used."""

    def __init__(self, rules: Iterable[Rename | str]) -> None:
        self.rules = [parse_rename(r) if isinstance(r, str) else r for r in rules]
        self.used: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, name: str) -> str:
        """``name`` renamed by the first matching rule, or unchanged."""
        for i, rule in enumerate(self.rules):
            renamed = rule.apply(name)
            if renamed is not None:
                self.used.add(i)
                return renamed
        return name

    def unused(self) -> list[Rename]:
        """Rules that matched no name so far."""
        return [rule for i, rule in enumerate(self.rules) if i not in self.used]

    def mapping(self, names: Iterable[str]) -> dict[str, str]:
        """Old -> new for every name a rule changes.

        Raises MetainspectError before anything is written when two names would end up the
        same, or a renamed name collides with a name that is kept.
        """
        names = list(names)
        mapping = {name: self(name) for name in names}
        seen: dict[str, str] = {}
        for old, new in mapping.items():
            if new in seen:
                hint = Hint("renames")
                raise MetainspectError(None, f"{hint.text}: {seen[new]!r} and {old!r} would both become {new!r}", hint)
            seen[new] = old
        return {old: new for old, new in mapping.items() if old != new}
