"""Protobuf text format (graphs as ``.pbtxt``, the ``checkpoint`` state file), parsed defensively.

Python's text-format parser recurses once per nested message, so a file nesting thousands of
levels would exhaust the interpreter's stack: nesting is measured first (without recursion) and
refused beyond :data:`MAX_DEPTH`, the limit protobuf itself applies to binary messages. Parser
messages quote the offending line, so they are reduced to one bounded line.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

from metainspect.errors import CorruptError, one_line

if TYPE_CHECKING:
    from google.protobuf.message import Message

#: deepest message nesting read (protobuf's default recursion limit for binary messages)
MAX_DEPTH = 100
#: strings and comments (skipped whole) and the brackets that open and close messages
_TOKENS = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|#[^\n]*|[{}<>]""")


def nesting_depth(text: str) -> int:
    """How deep messages nest in ``text`` (brackets inside strings and comments do not count)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("{", "<"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("}", ">"):
            depth -= 1
    return deepest


def parse(text: str, message: Message, path: str, what: str) -> None:
    """Merge ``text`` into ``message``; CorruptError naming ``path`` (``what: why``) if it cannot."""
    from google.protobuf import text_format

    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise CorruptError(path, f"{what}: messages nest {depth} levels deep, more than {MAX_DEPTH}")
    try:
        with warnings.catch_warnings():
            # protobuf decodes escapes through a codec that warns about unknown ones ("\m"); it keeps them
            warnings.simplefilter("ignore", DeprecationWarning)
            text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise CorruptError(path, f"{what}: {one_line(str(exc))}") from None
