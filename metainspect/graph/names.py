"""Node references as they appear in NodeDef inputs and tensor names: ``^op``, ``op``, ``op:1``."""

from __future__ import annotations

import re

#: TensorFlow's rule for node names (graph import refuses anything else)
_VALID_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*(>[A-Za-z0-9.][A-Za-z0-9_.\-/]*)*")


def split_reference(ref: str) -> tuple[str, str, str]:
    """``"^a"`` -> ``("^", "a", "")``; ``"a:1"`` -> ``("", "a", ":1")``; ``"a"`` -> ``("", "a", "")``."""
    if ":" not in ref and not ref.startswith("^"):  # the common case, kept fast
        return "", ref, ""
    control = "^" if ref.startswith("^") else ""
    name = ref[len(control):]
    head, sep, tail = name.rpartition(":")
    if sep and tail.isdigit():
        return control, head, sep + tail
    return control, name, ""


def rename_reference(ref: str, mapping: dict[str, str]) -> str:
    """``ref`` with its op part renamed by ``mapping`` (unchanged when the op is not in it)."""
    control, op, suffix = split_reference(ref)
    new = mapping.get(op)
    return ref if new is None else control + new + suffix


def output_index(ref: str) -> int:
    """The output a data input reads: ``a`` and ``a:0`` are 0, ``a:2`` is 2."""
    suffix = split_reference(ref)[2]
    return int(suffix[1:]) if suffix else 0


def tensor_name(name: str) -> str:
    """``"x"`` -> ``"x:0"``; a name with an output index is kept."""
    return name if split_reference(name)[2] else f"{name}:0"


def is_valid_node_name(name: str) -> bool:
    return bool(_VALID_NODE_NAME.fullmatch(name))
