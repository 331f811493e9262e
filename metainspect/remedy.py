"""A way out that is a call of metainspect itself: "rewrite the checkpoint with this cast".

Findings and proposals say how to fix what they found; often the fix is one of metainspect's
own operations. A :class:`Remedy` holds that operation as data (what to do, to which file, with
which options), and its :attr:`~Remedy.text` words it as the Python API, which is how the library
writes it into a finding's ``fix``. The command line words the same remedy as a command with its
flags (``metainspect.cli.options.command_line``) and puts that in place of the API text, so
that the library never names a flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

#: the operations a remedy can be
RemedyAction = Literal["check", "edit", "rewrite", "verify", "nodes", "export"]
#: placeholders for what a remedy cannot know (the user chooses them)
OUT = "OUT"
KEY_TENSOR: Mapping[str, str] = {"KEY": "TENSOR"}


class Remedy(NamedTuple):
    """Run ``action`` on ``target`` with ``options`` (API argument names and values).

    Options by action: ``check``: ``checkpoint``, ``inputs``, ``outputs`` (mappings); ``edit``:
    ``remove_signature``, ``add_signature`` (a name, with ``inputs``/``outputs``), ``prune_to``
    (node names), ``clear_devices`` (True); ``rewrite``: ``renames``, ``drop`` (tuples), ``cast``
    (``(from, to)``), ``drop_optimizer`` (True). ``verify``, ``nodes`` and ``export`` take none.
    (A NamedTuple, like :class:`metainspect.errors.Hint`.)
    """

    action: RemedyAction
    target: str
    options: tuple[tuple[str, object], ...] = ()

    def strings(self, name: str) -> tuple[str, ...]:
        """Option ``name`` as strings: a name is one, a tuple of names many, an absent option none."""
        value = dict(self.options).get(name)
        if value is None:
            return ()
        return tuple(str(v) for v in value) if isinstance(value, (tuple, list)) else (str(value),)

    def mapping(self, name: str) -> dict[str, str]:
        """Option ``name`` as a mapping of signature keys to tensors (empty when absent)."""
        value = dict(self.options).get(name)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}

    def to_json(self) -> dict[str, object]:
        """``{action, target, options}`` with the options' API names and plain values."""
        return {"action": self.action, "target": self.target,
                "options": {k: self.mapping(k) if isinstance(v, Mapping) else list(self.strings(k))
                            if isinstance(v, (tuple, list)) else v for k, v in self.options}}

    @property
    def text(self) -> str:
        """The remedy in the words of the Python API."""
        target, opts = repr(self.target), dict(self.options)
        if self.action == "check":
            args = [target, *(repr(c) for c in self.strings("checkpoint"))]
            args += [f"{key}={self.mapping(key)!r}" for key in ("inputs", "outputs") if key in opts]
            return f"check({', '.join(args)})"
        if self.action == "edit":
            calls = [f".remove_signature({name!r})" for name in self.strings("remove_signature")]
            calls += [f".add_signature({name!r}, {self.mapping('inputs')!r}, {self.mapping('outputs')!r})"
                      for name in self.strings("add_signature")]
            if "prune_to" in opts:
                calls.append(f".prune_to({', '.join(repr(n) for n in self.strings('prune_to'))})")
            if opts.get("clear_devices"):
                calls.append(".clear_devices()")
            return f"load_model({target}).edit(){''.join(calls)}.save({OUT})"
        if self.action == "rewrite":
            fields = [f"{key}={value!r}" for key, value in self.options]
            return f"rewrite_checkpoint({target}, {OUT}, RewriteOptions({', '.join(fields)}))"
        if self.action == "verify":
            return f"open_checkpoint({target}).verify()"
        if self.action == "nodes":
            return f"load_model({target}).nodes()"
        return f"export_saved_model({target}, {OUT})"
