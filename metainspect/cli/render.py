"""Output for the CLI: rich tables on a terminal, plain columns when piped, JSON on request."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any


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


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
               right: Sequence[str] = ()) -> None:
    """A table: rich on a terminal, space-aligned plain columns (header first) when piped."""
    text_rows = [[_cell(c) for c in row] for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for name in columns:
            table.add_column(name, justify="right" if name in right else "left", overflow="fold")
        for row in text_rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [len(c) for c in columns]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = sys.stdout
    for row in [list(columns), *text_rows]:
        cells = [cell.rjust(w) if name in right else cell.ljust(w) for cell, w, name in zip(row, widths, columns)]
        out.write("  ".join(cells).rstrip() + "\n")


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
