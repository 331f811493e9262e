"""How long operations report progress: one callback shape for the whole library.

A :data:`Progress` callback is called as ``progress(step, done, total)``: ``step`` is a short
description of the current stage ("writing", "copying variables"), ``done`` and ``total``
count whatever that stage counts (bytes, tensors, nodes). ``done == total`` ends the stage.
Callbacks must be cheap; callers may call them often. The default, :func:`silent`, ignores
every report; the command line draws them as progress bars on a terminal.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``progress(step, done, total)``: ``done`` of ``total`` units of ``step`` are finished."""

    def __call__(self, step: str, done: int, total: int) -> None: ...


def silent(step: str, done: int, total: int) -> None:
    """The default :data:`Progress`: report nothing."""


__all__ = ["Progress", "silent"]
