"""Output for the CLI: rich tables on a terminal, plain columns when piped, JSON on request."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Hashable, Iterable, Iterator, Sequence
from json.encoder import encode_basestring as json_string
from typing import Any, Literal

__all__ = ["JsonTexts", "emit_json", "emit_lines", "emit_table", "format_bytes", "format_shape", "is_terminal",
           "json_string", "to_jsonable", "write_json_array"]


def is_terminal() -> bool:
    return sys.stdout.isatty()


def to_jsonable(value: Any) -> Any:
    """Convert protos, numpy values, bytes and dataclasses into JSON-ready values."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "DESCRIPTOR"):
        from google.protobuf import json_format

        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist())
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__ if k != "proto"}
    return str(value)


def emit_json(value: Any) -> None:
    """Write ``value`` as JSON to stdout: indented on a terminal, compact (and fast) when piped.

    Plain values go straight to the C encoder; only other types (protos, numpy, bytes,
    dataclasses) pass through :func:`to_jsonable`, and non-finite floats become strings.
    """
    indent = 2 if is_terminal() else None
    try:
        text = json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False, default=to_jsonable)
    except ValueError:  # NaN or Inf somewhere: convert everything, spelling them as strings
        text = json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False)
    sys.stdout.write(text)
    sys.stdout.write("\n")


class JsonTexts(dict[Hashable, str]):
    """``texts[value]``: the JSON text of a value that repeats (a dtype, a shape, an op), encoded once."""

    def __missing__(self, value: Hashable) -> str:
        text = self[value] = json.dumps(value, ensure_ascii=False)
        return text


def write_json_array(rows: Iterable[str]) -> None:
    """Write rows that are JSON texts already as one array, exactly as :func:`emit_json` writes a list when piped.

    For listings of 10^4-10^5 rows, where building a dict per row and encoding it costs more than
    the rest of the command (``json_string`` is the encoder's own string escaping).
    """
    out = sys.stdout
    out.write("[")
    batch: list[str] = []
    separator = ""
    for row in rows:  # written in batches: 10^5 rows never sit in memory as one string
        batch.append(row)
        if len(batch) == 4096:
            out.write(separator + ", ".join(batch))
            batch.clear()
            separator = ", "
    if batch:
        out.write(separator + ", ".join(batch))
    out.write("]\n")


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
               right: Sequence[str] = ()) -> None:
    """A table: rich on a terminal, space-aligned plain columns (header first) when piped.

    Names (the "name" or "tensor" column, else the first) are never split across lines: other
    columns fold first. A table taller than the terminal goes to the pager instead, as plain
    columns (as git does: ``$PAGER``, else ``less`` with ``LESS=FRX`` unless ``LESS`` is set).
    """
    text_rows = [[_cell(c) for c in row] for row in rows]
    if is_terminal():
        import shutil

        if len(text_rows) + 6 > shutil.get_terminal_size().lines and _page(_plain(columns, text_rows, right), title):
            return
        _rich_table(columns, text_rows, title, right)
        return
    sys.stdout.writelines(_plain(columns, text_rows, right))


#: the columns tables hold names in
_NAME_COLUMNS = ("name", "tensor")


def _rich_table(columns: Sequence[str], text_rows: list[list[str]], title: str | None, right: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=title, title_justify="left", header_style="bold")
    # the name column ("name" or "tensor", else the first) keeps its names whole while the
    # others (at least 8 wide each) fold
    names = next((i for i, c in enumerate(columns) if c in _NAME_COLUMNS), 0)
    longest = max((len(row[names]) for row in text_rows), default=0)
    name_width = max(len(columns[names]), min(longest, console.width - 4 - 11 * (len(columns) - 1)))
    for i, name in enumerate(columns):
        justify: Literal["left", "right"] = "right" if name in right else "left"
        if i == names:
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis", min_width=name_width)
        else:
            table.add_column(name, justify=justify, overflow="fold", min_width=min(8, len(name)))
    for row in text_rows:
        table.add_row(*row)
    console.print(table)


def _plain(columns: Sequence[str], text_rows: list[list[str]], right: Sequence[str]) -> Iterator[str]:
    """Plain aligned lines. A column is as wide as its cells, outliers apart: a cell more than
    twice the width of nine cells in ten (and over 40 characters) sticks out on its row only."""
    widths = []
    for i, column in enumerate(columns):
        lengths = sorted(len(row[i]) for row in text_rows)
        if not lengths:
            widths.append(len(column))
            continue
        limit = max(2 * lengths[(len(lengths) - 1) * 9 // 10], 40)
        widths.append(max(len(column), max((n for n in lengths if n <= limit), default=0)))
    for row in [list(columns), *text_rows]:
        cells = [cell.rjust(w) if name in right else cell.ljust(w) for cell, w, name in zip(row, widths, columns)]
        yield "  ".join(cells).rstrip() + "\n"


def _page(lines: Iterable[str], title: str | None) -> bool:
    """Show ``lines`` through the user's pager; False when there is none to run (then print)."""
    import os
    import shlex
    import shutil
    import subprocess

    command = os.environ.get("PAGER", "less")
    if not command.strip() or command.strip() == "cat":
        return False
    if shutil.which(shlex.split(command)[0]) is None:
        return False
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX")}
    sys.stdout.flush()
    with subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env) as pager:
        assert pager.stdin is not None
        try:
            if title:
                pager.stdin.write((title + "\n").encode("utf-8"))
            for line in lines:
                pager.stdin.write(line.encode("utf-8"))
            pager.stdin.close()
        except BrokenPipeError:  # the user quit the pager early
            pass
    return True


def emit_lines(lines: Iterable[str]) -> None:
    """Plain lines (rich markup is not interpreted)."""
    for line in lines:
        sys.stdout.write(line + "\n")


def format_shape(shape: Any) -> str:
    """``[None, 4]`` -> ``[?, 4]``; unknown rank -> ``<unknown>``."""
    if shape is None:
        return "<unknown>"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def format_bytes(n: int) -> str:
    """Human size: 1.5 MiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
