"""What differs between two checkpoints: tensors removed, added, renamed, changed.

Any two checkpoints :func:`metainspect.open_checkpoint` reads are compared (V1 with V2, TF1
with TF2). Names pair up as they are, or after rename rules applied to A's names (the rules
``rewrite`` applies: :mod:`metainspect.checkpoint.renames`); the TF2 object graph entry is
never renamed. A pair is *changed* when its dtype or shape differs or any element is outside
the tolerances (:mod:`metainspect.diff.values`). Tensors are read one pair at a time (a
partitioned tensor is reassembled and compared whole), so memory stays near twice the largest
tensor plus the chunk buffers; without values only the indexes are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.diff.results import Renamed, name_filter
from metainspect.diff.values import ValueDiff, comparable, compare_values
from metainspect.errors import MetainspectError
from metainspect.progress import Progress

if TYPE_CHECKING:
    import numpy as np

    from metainspect.checkpoint import Checkpoint, TensorInfo

CHECKPOINT = "checkpoint"
#: the step a diff reports progress under: ``progress(COMPARING, done, total)`` with the bytes of both
#: checkpoints compared so far
COMPARING = "comparing tensors"


@dataclass(frozen=True)
class TensorEntry:
    """A tensor only one side holds."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class TensorChange:
    """A tensor both sides hold (under ``name`` in B) that differs; None where a field does not apply."""

    name: str
    #: its name in A, when a rename rule paired it
    renamed_from: str | None
    dtype_a: str
    dtype_b: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    nbytes: int
    values: ValueDiff | None = None

    @property
    def dtype_changed(self) -> bool:
        return self.dtype_a != self.dtype_b

    @property
    def shape_changed(self) -> bool:
        return self.shape_a != self.shape_b

    @property
    def nan_appeared(self) -> bool:
        v = self.values
        return v is not None and v.nan_b is not None and v.nan_b > (v.nan_a or 0)

    @property
    def inf_appeared(self) -> bool:
        v = self.values
        return v is not None and v.inf_b is not None and v.inf_b > (v.inf_a or 0)

    def to_json(self) -> dict[str, Any]:
        v = self.values
        return {
            "name": self.name, "renamed_from": self.renamed_from,
            "dtype_a": self.dtype_a, "dtype_b": self.dtype_b,
            "shape_a": list(self.shape_a), "shape_b": list(self.shape_b),
            "elements": v.elements if v else None,
            "max_abs_diff": v.max_abs_diff if v else None,
            "mean_abs_diff": v.mean_abs_diff if v else None,
            "rel_l2": v.rel_l2 if v else None,
            "cosine": v.cosine if v else None,
            "mismatched": v.mismatched if v else None,
            "mismatched_elements": v.mismatched_elements if v else None,
            "nan_a": v.nan_a if v else None, "nan_b": v.nan_b if v else None,
            "inf_a": v.inf_a if v else None, "inf_b": v.inf_b if v else None,
        }


@dataclass(frozen=True)
class CheckpointDiff:
    """The result of :func:`diff_checkpoints`."""

    a: str
    b: str
    format_a: str
    format_b: str
    #: tensors in A and B (after ``match``)
    tensors_a: int
    tensors_b: int
    values_compared: bool
    atol: float
    rtol: float
    #: pairs held by both sides
    compared: int
    #: pairs whose values are exactly equal (NaN equal to NaN), dtype and shape too
    equal: int
    #: pairs whose values differ but stay within the tolerances
    within_tolerance: int
    added: tuple[TensorEntry, ...]
    removed: tuple[TensorEntry, ...]
    renamed: tuple[Renamed, ...]
    #: pairs whose dtype, shape or values (outside the tolerances) differ, in B's name order
    changed: tuple[TensorChange, ...]
    notes: tuple[str, ...] = ()
    kind: str = field(default=CHECKPOINT, init=False)

    @property
    def identical(self) -> bool:
        """No tensor added, removed or changed (renames given as rules do not count)."""
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        """The ``diff --json`` document (schema in docs/diff.md)."""
        return {
            "a": self.a, "b": self.b, "kind": self.kind, "identical": self.identical,
            "format_a": self.format_a, "format_b": self.format_b,
            "values_compared": self.values_compared, "atol": self.atol, "rtol": self.rtol,
            "counts": {
                "a": self.tensors_a, "b": self.tensors_b, "compared": self.compared, "equal": self.equal,
                "within_tolerance": self.within_tolerance, "changed": len(self.changed),
                "added": len(self.added), "removed": len(self.removed), "renamed": len(self.renamed),
            },
            "added": [_entry_json(e) for e in self.added],
            "removed": [_entry_json(e) for e in self.removed],
            "renamed": [r.to_json() for r in self.renamed],
            "changed": [c.to_json() for c in self.changed],
            "notes": list(self.notes),
        }


def _entry_json(entry: TensorEntry) -> dict[str, Any]:
    return {"name": entry.name, "dtype": entry.dtype, "shape": list(entry.shape), "nbytes": entry.nbytes}


def diff_checkpoints(
    a: str | os.PathLike[str] | Checkpoint, b: str | os.PathLike[str] | Checkpoint, *,
    match: str | re.Pattern[str] | None = None, renames: Iterable[str | Rename] = (), values: bool = True,
    atol: float = 0.0, rtol: float = 0.0, verify: bool = True, progress: Progress | None = None,
) -> CheckpointDiff:
    """Compare checkpoint ``a`` with checkpoint ``b`` (paths or opened :class:`Checkpoint` objects).

    ``renames`` (``OLD=NEW`` scopes, ``re:PATTERN=REPL``) apply to A's names before pairing;
    ``match`` (a regular expression, searched) keeps the names it finds, A's after renaming;
    ``values=False`` compares names, dtypes and shapes only (the indexes alone are read);
    ``atol``/``rtol`` as numpy's ``isclose``; ``verify`` checks CRC32C of every tensor read.
    Checkpoints given as objects are left open. Raises :class:`MetainspectError` for an
    unusable input (missing, corrupt, a tensor failing its checksum).
    """
    if not (atol >= 0 and rtol >= 0):  # NaN fails too
        raise ValueError(f"tolerances must be non-negative numbers, not atol={atol} rtol={rtol}")
    keep = name_filter(match)
    with ExitStack() as stack:
        ckpt_a = _opened(a, verify, stack)
        ckpt_b = _opened(b, verify, stack)
        infos_a = {i.name: i for i in ckpt_a.infos()}
        infos_b = {i.name: i for i in ckpt_b.infos() if keep(i.name)}
        notes: list[str] = [f"A: {n}" for n in ckpt_a.notes] + [f"B: {n}" for n in ckpt_b.notes]
        new_names = _rename(ckpt_a.prefix, list(infos_a), renames, notes)
        pairs_a = {new: old for old, new in new_names.items() if keep(new)}
        common = [name for name in infos_b if name in pairs_a]
        removed = tuple(_entry(infos_a[old]) for old, new in new_names.items() if keep(new) and new not in infos_b)
        added = tuple(_entry(info) for name, info in infos_b.items() if name not in pairs_a)
        renamed = tuple(Renamed(pairs_a[n], n) for n in common if pairs_a[n] != n)
        pairs = [(infos_a[pairs_a[name]], infos_b[name]) for name in common]
        if values:
            total = sum(_value_bytes(ia, ib) for ia, ib in pairs)
            compared = _compare_pairs(ckpt_a, ckpt_b, pairs, atol, rtol, _Progress(progress, total))
        else:
            compared = ((ia, ib, None) for ia, ib in pairs)
        changed, equal, close = [], 0, 0
        for info_a, info_b, found in compared:
            change = TensorChange(info_b.name, info_a.name if info_a.name != info_b.name else None, info_a.dtype,
                                  info_b.dtype, info_a.shape, info_b.shape, info_b.nbytes, found)
            if change.dtype_changed or change.shape_changed or (found is not None and found.mismatched_elements):
                changed.append(change)
            elif found is not None and found.max_abs_diff:
                close += 1
            else:
                equal += 1
        return CheckpointDiff(
            a=ckpt_a.prefix, b=ckpt_b.prefix, format_a=ckpt_a.format, format_b=ckpt_b.format,
            tensors_a=len(pairs_a), tensors_b=len(infos_b), values_compared=values, atol=atol, rtol=rtol,
            compared=len(pairs), equal=equal, within_tolerance=close, added=added, removed=removed,
            renamed=renamed, changed=tuple(changed), notes=tuple(notes),
        )


def _opened(source: str | os.PathLike[str] | Checkpoint, verify: bool, stack: ExitStack) -> Checkpoint:
    from metainspect.checkpoint import Checkpoint, open_checkpoint

    if isinstance(source, Checkpoint):
        return source
    return stack.enter_context(open_checkpoint(source, verify=verify))


def _rename(prefix: str, names: list[str], rules: Iterable[str | Rename], notes: list[str]) -> dict[str, str]:
    """A's name -> the name it is paired under (every name of A; the object graph keeps its own)."""
    renamer = Renamer(rules)
    if not renamer:
        return {name: name for name in names}
    try:
        mapping = renamer.mapping(n for n in names if n != OBJECT_GRAPH_KEY)
    except MetainspectError as exc:
        raise MetainspectError(prefix, exc.message) from None
    notes += [f"rename rule {rule.text!r} matches no tensor of A" for rule in renamer.unused()]
    return {name: mapping.get(name, name) for name in names}


def _entry(info: TensorInfo) -> TensorEntry:
    return TensorEntry(info.name, info.dtype, info.shape, info.nbytes)


def _value_bytes(a: TensorInfo, b: TensorInfo) -> int:
    return a.nbytes + b.nbytes if _values_comparable(a, b) else 0


def _values_comparable(a: TensorInfo, b: TensorInfo) -> bool:
    return a.shape == b.shape and comparable(a.dtype, b.dtype)


class _Progress:
    """Turns per-chunk element counts into ``progress("comparing tensors", done_bytes, total_bytes)`` calls."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def tensor(self, pair_bytes: int, elements: int) -> Callable[[int], None] | None:
        if self.callback is None:
            return None
        per_element = pair_bytes / elements if elements else 0.0
        start = self.done
        counted = [0]

        def report(n: int) -> None:
            counted[0] += n
            self.done = start + int(counted[0] * per_element)
            assert self.callback is not None
            self.callback(COMPARING, self.done, self.total)

        return report

    def finish(self, pair_bytes: int, start: int) -> None:
        self.done = start + pair_bytes


def _compare_pairs(ckpt_a: Checkpoint, ckpt_b: Checkpoint, pairs: list[tuple[TensorInfo, TensorInfo]],
                   atol: float, rtol: float, progress: _Progress) -> Iterator[tuple[TensorInfo, TensorInfo, ValueDiff | None]]:
    """Read and compare one pair at a time; pairs whose values cannot be compared give None."""
    for info_a, info_b in pairs:
        if not _values_comparable(info_a, info_b):
            yield info_a, info_b, None
            continue
        start = progress.done
        pair_bytes = info_a.nbytes + info_b.nbytes
        value_a = ckpt_a.get(info_a.name)
        value_b = ckpt_b.get(info_b.name)
        found = compare_values(value_a, value_b, info_a.dtype, info_b.dtype, atol=atol, rtol=rtol,
                               progress=progress.tensor(pair_bytes, value_a.size))
        _drop_resident_pages(value_a)
        _drop_resident_pages(value_b)
        del value_a, value_b
        progress.finish(pair_bytes, start)
        yield info_a, info_b, found


def _drop_resident_pages(array: np.ndarray) -> None:
    """Let this process drop the pages of an array that views a read-only file mapping.

    Arrays read from a V2 bundle view its memory-mapped data file; the pages a comparison
    touched would otherwise stay counted in this process until the checkpoint is closed, so the
    resident size would grow to both checkpoints' sizes. The data stays in the page cache and
    the array stays valid (its pages come back from the file if read again). Other arrays
    (decoded copies, partitioned tensors, V1 records) are left alone.
    """
    import mmap

    import numpy as np

    owner: object = array
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    if isinstance(owner, memoryview):
        owner = owner.obj
    if not isinstance(owner, mmap.mmap) or not hasattr(owner, "madvise") or not array.nbytes:
        return
    with memoryview(owner) as view:
        if not view.readonly:  # a private, writable mapping would lose its changes
            return
        origin = np.frombuffer(view, np.uint8).__array_interface__["data"][0]
    start = array.__array_interface__["data"][0] - origin
    if start < 0 or start + array.nbytes > len(owner):
        return
    aligned = start - start % mmap.PAGESIZE
    owner.madvise(mmap.MADV_DONTNEED, aligned, start + array.nbytes - aligned)
