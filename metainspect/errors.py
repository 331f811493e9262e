"""Errors raised for inputs and arguments metainspect cannot use.

Every error names the file concerned (``path``, None when the problem is an argument alone)
and says what is wrong in one line, in the words of the Python API. An error about one
argument of a call, or with a way out that names one, carries a :class:`Hint`: the phrase of
the message that speaks of that argument, so that the command line can say the same thing
with its own flags (``cast float64->float16: …`` from the API is ``--cast 'float64:float16': …``
on the command line).
"""

from __future__ import annotations

import os
from typing import Literal, NamedTuple

#: what a :class:`Hint` is about: an argument of the API (first group) or a way out of the error
HintTopic = Literal[
    # arguments (value: the value given, when the message quotes it)
    "renames", "drop", "keep", "drop_optimizer", "cast", "in_place", "prune_to", "set_shapes",
    "add_signature", "remove_signatures", "drop_collections", "set_tags", "factory", "input_specs",
    # ways out
    "write_elsewhere", "other_output", "renamed_variables", "give_checkpoint", "engine_tf",
    "tf_engine_needs_tf", "factory_needs_tf", "factory_needs_inputs", "rebuild_from_factory",
    "graph_not_factory", "force", "remove_signature", "signature_endpoints", "choose_endpoints",
    "list_tensors", "list_nodes",
]

#: each topic's phrase in API words (``{v}``: the hint's value)
_API_PHRASES: dict[str, str] = {
    "renames": "renames", "drop": "drop", "keep": "keep", "drop_optimizer": "drop_optimizer",
    "cast": "cast {v[0]}->{v[1]}", "in_place": "in_place", "prune_to": "prune_to", "set_shapes": "set_shapes",
    "add_signature": "add_signature", "remove_signatures": "remove_signatures",
    "drop_collections": "drop_collections", "set_tags": "set_tags", "factory": "factory",
    "input_specs": "the input specs'",
    "write_elsewhere": "save it elsewhere, or save it in place (save_in_place keeps a backup)",
    "other_output": "choose another output prefix or rewrite in place (in_place=True)",
    "renamed_variables": "the renames change the checkpoint keys its variables/ must hold; save a new SavedModel "
                         "directory instead (variables/ is rewritten there)",
    "give_checkpoint": "name one (checkpoint=)",
    "engine_tf": 'use engine="tf" (it adds a saver) or export the graph with a Saver',
    "tf_engine_needs_tf": "TensorFlow is not installed; the tf engine needs it: pip install 'metainspect[tf]' "
                          '(or use engine="pure")',
    "factory_needs_tf": "TensorFlow is not installed; rebuilding a TF2 model from a model factory needs it: "
                        "pip install 'metainspect[tf]'",
    "factory_needs_inputs": "a model factory needs at least one input spec (InputSpec(name, dtype, shape))",
    "rebuild_from_factory": "rebuild the model in Python: export_from_factory(checkpoint, out, "
                            "'module:function', [InputSpec(name, dtype, shape)])",
    "graph_not_factory": "export it with its .meta graph instead of a model factory",
    "force": "the report says how to fix it, or pass force=True to export anyway",
    "remove_signature": "remove it first, or add it with replace=True",
    "signature_endpoints": "at least one input and one output",
    "choose_endpoints": "name them in ExportOptions(inputs=, outputs=)",
    "list_tensors": "open it with open_checkpoint",
    "list_nodes": "load it with load_model",
}
#: topics naming an argument: the phrase is the argument's name, then its value if the hint has one
_ARGUMENTS = frozenset({
    "renames", "drop", "keep", "drop_optimizer", "in_place", "prune_to", "set_shapes", "add_signature",
    "remove_signatures", "drop_collections", "set_tags", "factory",
})
#: argument topics whose value is shown as is rather than quoted
_UNQUOTED = frozenset({"set_shapes"})


class Hint(NamedTuple):
    """The phrase of an error message that names an API argument or a way out of the error.

    ``topic`` says what the phrase is about; ``value`` is the value it concerns (the value an
    argument was given, a signature name…), None when the phrase names none. (A NamedTuple:
    ``import metainspect`` stays free of the dataclasses machinery.)
    """

    topic: HintTopic
    value: str | tuple[str, ...] | None = None

    @property
    def text(self) -> str:
        """The phrase in API words, as it appears in the error message."""
        phrase = _API_PHRASES[self.topic].format(v=self.value)
        if self.value is not None and self.topic in _ARGUMENTS:
            phrase += f" {self.value}" if self.topic in _UNQUOTED else f" {self.value!r}"
        return phrase


class MetainspectError(Exception):
    """An input that cannot be read or used, with the path it concerns.

    ``message`` is the one-line description (without the path); ``hint``, when set, marks the
    phrase of ``message`` that speaks of an API argument (see :class:`Hint`).
    """

    def __init__(self, path: str | os.PathLike[str] | None, message: str, hint: Hint | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def with_path(self, path: str | os.PathLike[str]) -> MetainspectError:
        """The same error (same class, message and hint) about ``path``."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.path = os.fspath(path)
        clone.args = (str(clone),)
        return clone


class NotFoundError(MetainspectError):
    """The path (or a file it implies, such as a data shard) does not exist."""


class WrongKindError(MetainspectError):
    """The file is readable but is not the kind of file the command needs."""


class CorruptError(MetainspectError):
    """The file is truncated, malformed or fails a checksum."""


class TensorNotFoundError(MetainspectError, KeyError):
    """A tensor, node, collection, signature or function name that is not there.

    Also a :class:`KeyError`, as a missing key of a mapping is; ``name`` is the name looked up.
    """

    def __init__(self, path: str | os.PathLike[str] | None, message: str, name: str,
                 hint: Hint | None = None) -> None:
        self.name = name
        super().__init__(path, message, hint)


class LfsPointerError(WrongKindError):
    """The file is a Git LFS pointer: a few lines naming the real file (by ``oid``, ``size``
    bytes), which was never fetched."""

    def __init__(self, path: str | os.PathLike[str], oid: str, size: int) -> None:
        super().__init__(path, f"is a Git LFS pointer (oid {oid}, {size} bytes)")
        self.oid = oid
        self.size = size


def one_line(text: str, limit: int = 300) -> str:
    """``text`` (a parser's message quoting the input, say) on one line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
