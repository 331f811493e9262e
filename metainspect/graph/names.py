"""Tensor names and node references: the one parser.

Graph level (NodeDef inputs, SignatureDef, SaverDef and collection tensor names): ``op`` and
``op:0`` are output 0 of node ``op``, ``op:2`` output 2, ``^op`` a control input. The rule is
TensorFlow's own (``ParseTensorName``): the text after the last ``:`` is the output index when
it is all digits, otherwise the whole text is the node name (``a:b`` names a node ``a:b``, which
no graph holds: node names never contain ``:``).

Function bodies (FunctionDef ``node_def`` inputs) name tensors differently: ``x`` is the
function argument ``x``, ``node:out:2`` is element 2 of the output list ``out`` of body node
``node``, ``^node`` a control input; :func:`function_input` parses those.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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


def op_name(ref: str) -> str:
    """The node a tensor name or node input refers to: ``^a``, ``a:1`` and ``a`` all give ``a``."""
    if ref[:1] == "^":
        ref = ref[1:]
    head, sep, tail = ref.rpartition(":")
    return head if sep and tail.isdigit() else ref


def output_index(ref: str) -> int:
    """The output a data input reads: ``a`` and ``a:0`` are 0, ``a:2`` is 2."""
    suffix = split_reference(ref)[2]
    return int(suffix[1:]) if suffix else 0


def parse_tensor_name(name: str) -> tuple[str, int]:
    """``"x"`` -> ``("x", 0)``, ``"x:1"`` -> ``("x", 1)``; a ``^x`` control input is not a tensor (ValueError)."""
    if name.startswith("^"):
        raise ValueError(f"{name!r} is a control input, not a tensor")
    head, sep, tail = name.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return name, 0


def tensor_name(name: str) -> str:
    """A tensor name in canonical ``op:index`` form: ``"x"`` -> ``"x:0"``; one with an index is kept."""
    _, sep, tail = name.rpartition(":")
    return name if sep and tail.isdigit() else f"{name}:0"


def rename_reference(ref: str, mapping: dict[str, str]) -> str:
    """``ref`` with its op part renamed by ``mapping`` (unchanged when the op is not in it)."""
    control, op, suffix = split_reference(ref)
    new = mapping.get(op)
    return ref if new is None else control + new + suffix


def is_valid_node_name(name: str) -> bool:
    return bool(_VALID_NODE_NAME.fullmatch(name))


class FunctionInput(NamedTuple):
    """One input of a function-body node: a body node's output (``node``, its ``output`` list,
    ``element`` of that list) or, with ``output`` empty, the function argument named ``node``."""

    node: str
    output: str
    element: int
    control: bool


def function_input(ref: str) -> FunctionInput:
    """``"x"`` -> argument ``x``; ``"mm:product:0"`` -> element 0 of ``mm``'s ``product``
    output; ``"^mm"`` -> a control input on ``mm``; ``"mm:product"`` is element 0 too."""
    control = ref.startswith("^")
    name = ref[1:] if control else ref
    node, sep, rest = name.partition(":")
    if not sep:
        return FunctionInput(node, "", 0, control)
    output, sep, index = rest.partition(":")
    return FunctionInput(node, output, int(index) if sep and index.isdigit() else 0, control)
