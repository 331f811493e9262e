"""Progress bars for :data:`metainspect.progress.Progress` callbacks: rich bars on a terminal's stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metainspect.progress import Progress


#: seconds an operation runs before its bar appears: quicker ones draw none
BAR_DELAY = 1.0


@contextmanager
def progress_bars(*, after: float = 0.0, enabled: bool = True) -> Iterator[Progress]:
    """A progress callback drawing one bar per step on stderr when it is a terminal, silent otherwise.

    Bars appear once the operation has run ``after`` seconds (quick ones draw none) and vanish
    when the block ends, leaving only what the command prints. ``enabled=False``: silent.
    """
    from metainspect.progress import silent

    if not enabled or not sys.stderr.isatty():
        yield silent
        return
    start = time.monotonic()
    tasks: dict[str, Any] = {}
    with ExitStack() as stack:
        bars: Any = None

        def report(step: str, done: int, total: int) -> None:
            nonlocal bars
            if bars is None:
                if done >= total or time.monotonic() - start < after:
                    return
                bars = stack.enter_context(_bars())
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        yield report


def _bars() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    console=Console(stderr=True), transient=True)
