"""Closest checkpoint keys for a key the graph wants but the checkpoint lacks, with the reason.

Keys are compared as normalized name components: a ``:0`` tensor suffix and TF2's
``/.ATTRIBUTES/VARIABLE_VALUE`` are dropped, and the last component's common synonyms are
unified (``kernel``/``weights``, ``bias``/``biases``). A candidate shares the longest possible
tail of components with the wanted key; what differs becomes the reasons ("scope prefix moved:
net/ -> model/", "TF2 naming: …", "kernel <-> weights rename", "':0' suffix"). Candidates with
the same dtype and shape, and keys nothing else restores, rank first. A key with no common tail
falls back to similar names among unused keys of the same dtype and shape.

The tail index is built once per checkpoint (a few entries per key), so looking up one key
costs a handful of dict probes, whatever the checkpoint's size.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
TENSOR_SUFFIX = ":0"
#: last-component spellings that mean the same parameter, each mapped to one canonical form
SYNONYMS = {"kernel": "kernel", "weights": "kernel", "bias": "bias", "biases": "bias"}
#: at most this many unused keys of one dtype and shape are compared by name similarity
_FUZZY_POOL = 50
_FUZZY_CUTOFF = 0.6
#: name-similarity searches per checkpoint (the first missing keys get them, the rest not)
_FUZZY_QUERIES = 100
#: a tail shared by more keys than this is not used to suggest any of them
_CROWD = 200

Shape = Sequence[int | None] | None


@dataclass(frozen=True)
class Suggestion:
    """A checkpoint key that may be the one wanted, and why."""

    key: str
    reasons: tuple[str, ...]
    #: the candidate has the wanted dtype and shape
    same_spec: bool

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "reasons": list(self.reasons), "same_dtype_and_shape": self.same_spec}

    @property
    def text(self) -> str:
        return f"{self.key} ({'; '.join(self.reasons)})"


@dataclass(frozen=True)
class _Parsed:
    components: tuple[str, ...]
    raw_last: str
    tf2: bool
    tensor_suffix: bool


def parse_key(key: str) -> _Parsed:
    """Split ``key`` into normalized components, remembering what normalization removed."""
    name, tensor_suffix = (key[: -len(TENSOR_SUFFIX)], True) if key.endswith(TENSOR_SUFFIX) else (key, False)
    name, tf2 = (name[: -len(TF2_SUFFIX)], True) if name.endswith(TF2_SUFFIX) else (name, False)
    parts = name.split("/")
    raw_last = parts[-1]
    parts[-1] = SYNONYMS.get(raw_last, raw_last)
    return _Parsed(tuple(parts), raw_last, tf2, tensor_suffix)


def scope_move(wanted: str, found: str) -> tuple[str, str] | None:
    """The differing leading scopes of two keys with a common tail, e.g. ``("net/", "model/")``.

    None when the keys share no tail of components or differ in nothing but normalization.
    """
    a, b = parse_key(wanted).components, parse_key(found).components
    common = _common_tail(a, b)
    if common == 0 or (common == len(a) and common == len(b)):
        return None
    return _scope(a[: len(a) - common]), _scope(b[: len(b) - common])


def rename_rule(graph_scope: str, checkpoint_scope: str) -> str:
    """The ``--rename`` rule that turns the checkpoint's scope into the graph's."""
    old, new = checkpoint_scope.rstrip("/"), graph_scope.rstrip("/")
    if old:
        return f"{old}={new}"
    return f"re:^={new}/"


class KeyMatcher:
    """Finds near misses for wanted keys among a checkpoint's keys.

    ``specs`` maps every checkpoint key to its (dtype, shape); ``unused`` are the keys nothing
    restores (preferred as candidates).
    """

    def __init__(self, specs: dict[str, tuple[str, tuple[int, ...]]], unused: Iterable[str] = ()) -> None:
        self.specs = specs
        self.unused = frozenset(unused)
        self._tails: dict[tuple[str, ...], list[str]] | None = None
        self._by_spec: dict[tuple[str, tuple[int, ...]], list[str]] | None = None
        self._fuzzy_queries = 0

    def suggest(self, key: str, dtype: str | None, shape: Shape, limit: int = 3) -> list[Suggestion]:
        """Up to ``limit`` candidates for ``key``, best first."""
        wanted = parse_key(key)
        found = self._by_tail(wanted)
        if found:
            length, candidates = found
            ranked = sorted(candidates, key=lambda c: (not self._same(c, dtype, shape), c not in self.unused, c))
            if length == 1 and len(wanted.components) > 1:
                # only the last name in common ("kernel"): worth naming only with a matching spec
                ranked = [c for c in ranked if self._same(c, dtype, shape)]
            return [self._suggestion(key, wanted, c, dtype, shape) for c in ranked[:limit]]
        return self._similar(key, dtype, shape, limit)

    # -- candidates -------------------------------------------------------------------------
    def _by_tail(self, wanted: _Parsed) -> tuple[int, list[str]] | None:
        """Keys sharing the longest tail with ``wanted``; None when none do or too many do."""
        tails = self._tail_index()
        parts = wanted.components
        for length in range(len(parts), 0, -1):
            candidates = tails.get(parts[len(parts) - length:])
            if candidates:
                # a tail hundreds of keys share ("kernel") tells nothing, and ranking them all for
                # every missing key would make a big mismatched pair quadratic
                return (length, candidates) if len(candidates) <= _CROWD else None
        return None

    def _similar(self, key: str, dtype: str | None, shape: Shape, limit: int) -> list[Suggestion]:
        if dtype is None or shape is None or self._fuzzy_queries >= _FUZZY_QUERIES:
            return []
        self._fuzzy_queries += 1
        known = tuple(d for d in shape if d is not None)
        if len(known) != len(shape):  # a checkpoint stores every dimension: no tensor has this spec
            return []
        pool = self._spec_index().get((dtype, known), [])
        if not pool or len(pool) > _FUZZY_POOL:
            return []
        close = difflib.get_close_matches(key, pool, n=limit, cutoff=_FUZZY_CUTOFF)
        return [Suggestion(c, ("similar name, same dtype and shape",), True) for c in close]

    def _suggestion(self, key: str, wanted: _Parsed, candidate: str, dtype: str | None, shape: Shape) -> Suggestion:
        found = parse_key(candidate)
        reasons: list[str] = []
        move = scope_move(key, candidate)
        if move:
            reasons.append(f"scope prefix moved: {move[0] or '(none)'} -> {move[1] or '(none)'}")
        if found.tf2 and not wanted.tf2:
            reasons.append(f"TF2 naming: {candidate}")
        elif wanted.tf2 and not found.tf2:
            reasons.append(f"TF1 naming: {candidate}")
        if found.raw_last != wanted.raw_last and found.components[-1] == wanted.components[-1]:
            reasons.append(f"{wanted.raw_last} <-> {found.raw_last} rename")
        if found.tensor_suffix != wanted.tensor_suffix:
            reasons.append("':0' suffix")
        same = self._same(candidate, dtype, shape)
        if not same and candidate in self.specs:
            have_dtype, have_shape = self.specs[candidate]
            reasons.append(f"but it is {have_dtype} {list(have_shape)}")
        return Suggestion(candidate, tuple(reasons) or ("same name after normalization",), same)

    def _same(self, candidate: str, dtype: str | None, shape: Shape) -> bool:
        have = self.specs.get(candidate)
        if have is None:
            return False
        return (dtype is None or have[0] == dtype) and (shape is None or shapes_match(shape, have[1]))

    # -- indexes (built on first use) -------------------------------------------------------
    def _tail_index(self) -> dict[tuple[str, ...], list[str]]:
        if self._tails is None:
            tails: dict[tuple[str, ...], list[str]] = {}
            for key in self.specs:
                parts = parse_key(key).components
                for start in range(len(parts)):
                    tails.setdefault(parts[start:], []).append(key)
            self._tails = tails
        return self._tails

    def _spec_index(self) -> dict[tuple[str, tuple[int, ...]], list[str]]:
        if self._by_spec is None:
            by_spec: dict[tuple[str, tuple[int, ...]], list[str]] = {}
            for key in self.unused:
                by_spec.setdefault(self.specs[key], []).append(key)
            self._by_spec = by_spec
        return self._by_spec


def shapes_match(wanted: Sequence[int | None], have: Sequence[int]) -> bool:
    return len(wanted) == len(have) and all(w is None or w < 0 or w == h for w, h in zip(wanted, have))


def _common_tail(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _scope(parts: Sequence[str]) -> str:
    return "/".join(parts) + "/" if parts else ""
