"""Names a user may have meant: the one rule behind every "did you mean" of metainspect."""

from __future__ import annotations

from collections.abc import Iterable


def close_names(text: str, names: Iterable[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` of ``names`` that ``text`` may have meant, best first.

    Names containing ``text`` (case-insensitive) come before close spellings: first those where
    it is whole path components (``w`` in ``model/w/...``), then where it starts one, then the
    rest, shortest first within each (so a TF2 object path such as ``model/w`` finds
    ``model/w/.ATTRIBUTES/VARIABLE_VALUE`` before its optimizer slots).
    """
    import difflib

    pool = list(names)
    lowered = text.lower()
    found = sorted((n for n in pool if lowered and lowered in n.lower() and n != text),
                   key=lambda n: (_fit(lowered, n.lower()), len(n), n))
    found = found[:limit]
    for name in difflib.get_close_matches(text, pool, n=limit):
        if name not in found and name != text:
            found.append(name)
    return found[:limit]


def did_you_mean(text: str, names: Iterable[str], limit: int = 3) -> str:
    """``"; did you mean 'a', 'b'?"`` (empty when nothing is close), to end an error message."""
    close = close_names(text, names, limit)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _fit(text: str, name: str) -> int:
    """0: ``text`` is whole ``/``-separated components of ``name``; 1: it starts one; 2: inside one."""
    padded = f"/{name}/"
    if f"/{text.strip('/')}/" in padded:
        return 0
    return 1 if f"/{text}" in padded else 2
