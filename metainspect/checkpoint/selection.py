"""Which tensors of a checkpoint to keep, and under which names: the rules ``rewrite`` (and any
other command writing a checkpoint's tensors elsewhere) applies, decided on names alone.

Rules, in order: with ``keep`` patterns, a tensor matching none of them is dropped; then a
tensor matching a ``drop`` pattern is dropped; then, with ``drop_optimizer``, optimizer state
(:mod:`metainspect.checkpoint.roles`) is dropped. Kept tensors are renamed by the first rename
rule that matches (:mod:`metainspect.checkpoint.renames`). Patterns are regular expressions
searched in the names. Every refusal (a pattern or rule that matches nothing, two names
becoming one, nothing left) raises :class:`SelectionError` before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.checkpoint.roles import OPTIMIZER, Role
from metainspect.errors import Hint, MetainspectError

__all__ = ["DropRule", "Dropped", "Selected", "SelectionError", "select"]

#: the pattern rules
PatternRule = Literal["keep", "drop"]
#: why a tensor is left out: a rule of :func:`select`, or ``object_graph`` for the TF2 object graph,
#: which a safetensors or npz output has no place for (``convert`` leaves it out itself)
DropRule = Literal["keep", "drop", "drop_optimizer", "object_graph"]
#: what a refusal concerns: a rule kind, or "all" when nothing would be left
Refusal = Literal["keep", "drop", "drop_optimizer", "rename", "all"]


class Dropped(NamedTuple):
    """Why a tensor is dropped: the rule (``keep``: it matched no keep pattern), and the ``drop``
    pattern that matched."""

    rule: DropRule
    #: the ``drop`` pattern that matched (None for the other rules)
    pattern: str | None = None


class Selected(NamedTuple):
    """What happens to one tensor."""

    name: str
    #: None when dropped; equal to ``name`` when kept unrenamed
    new_name: str | None
    dropped_by: Dropped | None


class SelectionError(MetainspectError):
    """A selection that cannot be applied; ``rule`` and ``pattern`` say which rule is at fault."""

    def __init__(self, message: str, rule: Refusal, pattern: str | None = None, hint: Hint | None = None) -> None:
        super().__init__(None, message, hint)
        self.rule: Refusal = rule
        self.pattern = pattern


def select(names: Sequence[str], roles: Mapping[str, Role], *, keep: Sequence[str] = (), drop: Sequence[str] = (),
           drop_optimizer: bool = False, renames: Sequence[str | Rename] = ()) -> list[Selected]:
    """Apply the rules (module docstring) to ``names`` (``roles`` gives each one's role), in order."""
    keeps = _compile(keep, "keep")
    drops = _compile(drop, "drop")
    checks: tuple[tuple[PatternRule, list[re.Pattern[str]]], ...] = (("keep", keeps), ("drop", drops))
    for rule, patterns in checks:
        for pattern in patterns:
            if not any(pattern.search(n) for n in names):
                hint = Hint(rule, pattern.pattern)
                raise SelectionError(f"{hint.text} matches no tensor", rule, pattern.pattern, hint)
    if drop_optimizer and not any(roles[n] == OPTIMIZER for n in names):
        hint = Hint("drop_optimizer")
        raise SelectionError(f"{hint.text}: this checkpoint holds no optimizer state", "drop_optimizer", hint=hint)
    dropped: dict[str, Dropped] = {}
    for name in names:
        if keeps and not any(p.search(name) for p in keeps):
            dropped[name] = Dropped("keep")
            continue
        matched = next((p for p in drops if p.search(name)), None)
        if matched is not None:
            dropped[name] = Dropped("drop", matched.pattern)
        elif drop_optimizer and roles[name] == OPTIMIZER:
            dropped[name] = Dropped("drop_optimizer")
    kept = [n for n in names if n not in dropped]
    if names and not kept:
        raise SelectionError("every tensor would be dropped; nothing would be left to write", "all")
    new_names = _rename(kept, [n for n in names if n in dropped], renames)
    return [Selected(n, new_names.get(n), dropped.get(n)) for n in names]


def _rename(kept: list[str], dropped: list[str], rules: Sequence[str | Rename]) -> dict[str, str]:
    """Kept name -> new name (identity included); refuses collisions and unused rules."""
    try:
        renamer = Renamer(rules)
        changed = renamer.mapping(kept)
    except MetainspectError as exc:
        raise SelectionError(exc.message, "rename", hint=exc.hint) from None
    unused = renamer.unused()
    if unused:
        probe = Renamer(unused)
        hits = [n for n in dropped if probe(n) != n]
        why = f"matches only dropped tensors (such as {hits[0]!r})" if hits else "matches no tensor"
        hint = Hint("renames", unused[0].text)
        raise SelectionError(f"{hint.text} {why}", "rename", unused[0].text, hint)
    hint = Hint("renames")
    for old, new in changed.items():
        if not new:
            raise SelectionError(f"{hint.text}: {old!r} would get an empty name", "rename", hint=hint)
        if new == OBJECT_GRAPH_KEY:
            raise SelectionError(f"{hint.text}: {old!r} would become {OBJECT_GRAPH_KEY}, the TF2 object graph",
                                 "rename", hint=hint)
    return {name: changed.get(name, name) for name in kept}


def _compile(texts: Sequence[str], rule: PatternRule) -> list[re.Pattern[str]]:
    out = []
    for text in texts:
        try:
            out.append(re.compile(text))
        except re.error as exc:
            hint = Hint(rule, text)
            raise SelectionError(f"{hint.text}: bad regular expression: {exc}", rule, text, hint) from None
    return out
