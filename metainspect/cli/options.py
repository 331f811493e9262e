"""What the command line alone knows: exit codes, shared options, flag parsers, flag wording.

The library takes typed values (``cast=("float32", "float16")``, sizes in bytes, shapes as
lists); the parsers here turn flag text into them and refuse malformed text in one line naming
the flag. Library errors speak of API arguments; :func:`flag_phrase` words each
:class:`~metainspect.errors.Hint` with the flags a user of the command line types instead, and
:func:`command_line` each :class:`~metainspect.remedy.Remedy` a finding proposes as a command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.errors import LfsPointerError, MetainspectError

if TYPE_CHECKING:
    from metainspect.check.findings import Finding
    from metainspect.checkpoint.selection import Dropped
    from metainspect.errors import Hint
    from metainspect.export.tf2_factory import InputSpec
    from metainspect.graph.attrs import Shape
    from metainspect.remedy import Remedy

EXIT_OK = 0
#: ``verify`` found corrupt tensors, ``check`` found errors, ``export`` refused because of them
EXIT_FINDINGS = 1
#: unusable input, a usage error, or a refused edit/rewrite/export
EXIT_UNUSABLE = 2

# -- options shared by several commands ---------------------------------------------------------
PathArg = Annotated[str, typer.Argument(
    help="A .meta/.pb/.pbtxt file, SavedModel dir, or checkpoint prefix.", show_default=False)]
CkptArg = Annotated[str, typer.Argument(
    help="A checkpoint prefix, .index, .data-* or V1 file, a directory with a `checkpoint` file, or a SavedModel dir.",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (schema in README) instead of a table.")]
TagsOpt = Annotated[str | None, typer.Option(
    "--tags", help="SavedModel meta graph to use, by tag set: serve or serve,gpu.")]
MatchOpt = Annotated[str | None, typer.Option(
    "--match", help="Keep names matching this regular expression (searched).")]
NoVerifyOpt = Annotated[bool, typer.Option("--no-verify", help="Skip CRC32C checks of the tensors read.")]
#: the serving endpoints, as check and export take them
InputOpt = Annotated[list[str] | None, typer.Option(
    "--input", metavar="KEY=TENSOR", show_default=False,
    help="An input the server feeds: signature key = tensor (x=input:0). Repeatable.")]
OutputOpt = Annotated[list[str] | None, typer.Option(
    "--output", metavar="KEY=TENSOR", show_default=False,
    help="An output the server fetches: signature key = tensor (probs=probs:0). Repeatable.")]


# -- parsers ------------------------------------------------------------------------------------
def parse_tags(text: str | None) -> list[str] | None:
    """``"serve,gpu"`` -> ``["serve", "gpu"]``; None (or nothing but commas) -> None."""
    tags = [t for t in (text or "").split(",") if t]
    return tags or None


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``["x=input:0"]`` -> ``{"x": "input:0"}`` (spaces around either side ignored)."""
    result: dict[str, str] = {}
    for value in values:
        key, sep, tensor = value.partition("=")
        key, tensor = key.strip(), tensor.strip()
        if not sep or not key or not tensor:
            raise MetainspectError(None, f"{option} {value!r}: expected KEY=TENSOR, e.g. {option} x=input:0")
        if key in result:
            raise MetainspectError(None, f"{option} {key!r} given twice")
        result[key] = tensor
    return result


def matcher(pattern: str | None) -> Callable[[str], object]:
    """A test for ``--match PATTERN`` (searched anywhere in the name); everything passes without one."""
    if pattern is None:
        return lambda name: True
    try:
        return re.compile(pattern).search
    except re.error as exc:
        raise typer.BadParameter(f"invalid regular expression {pattern!r}: {exc}", param_hint="--match") from None


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, option: str = "--shard-size") -> int:
    """``"512M"``, ``"1G"``, ``"1.5GiB"``, ``"4096"`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise MetainspectError(None, f"{option} {text!r}: expected a size such as 512M, 1G or a byte count")
    value = int(float(match[1]) * _UNITS[match[2].lower()])
    if value <= 0:
        raise MetainspectError(None, f"{option} {text!r}: must be more than 0 bytes")
    return value


def parse_cast(text: str) -> tuple[str, str]:
    """``"float32:float16"`` -> ``("float32", "float16")`` (the rewrite checks the types)."""
    source, sep, target = text.partition(":")
    if not sep:
        raise MetainspectError(None, f"--cast {text!r}: expected SRC:DST, e.g. float32:float16")
    return source.strip(), target.strip()


def _dims(text: str) -> list[int | None] | str | None:
    """Comma-separated sizes (``?``, ``-1`` or ``None`` unknown; empty: a scalar; ``*``: unknown rank).

    Returns the shape, or the first part that is not a dimension.
    """
    if text == "*":
        return None
    dims: list[int | None] = []
    for part in (p.strip() for p in text.split(",")) if text else ():
        if part in ("?", "-1", "None"):
            dims.append(None)
        elif part.isdigit():
            dims.append(int(part))
        else:
            return part
    return dims


def parse_shape_assignment(text: str) -> tuple[str, Shape]:
    """``x=?,784`` -> ``("x", [None, 784])``; ``x=`` or ``x=[]`` is a scalar, ``x=*`` unknown rank.

    Brackets are optional; ``?`` and ``-1`` mean an unknown dimension.
    """
    name, sep, dims = text.partition("=")
    if not sep or not name:
        raise MetainspectError(None, f"--set-shape {text!r}: expected NAME=DIMS, e.g. x=?,784")
    shape = _dims(dims.strip().removeprefix("[").removesuffix("]").replace(" ", ""))
    if isinstance(shape, str):
        raise MetainspectError(None, f"--set-shape {text!r}: dimension {shape!r} is not a size, ? or -1")
    return name, shape


def parse_input_spec(text: str) -> InputSpec:
    """``name:dtype:shape`` -> :class:`InputSpec`, e.g. ``x:float32:?,3`` (``*``: unknown rank)."""
    from metainspect.export.tf2_factory import InputSpec
    from metainspect.formats import dtypes

    parts = text.split(":")
    if len(parts) != 3 or not parts[0]:
        raise MetainspectError(None, f"--input-spec {text!r}: expected name:dtype:shape, e.g. x:float32:?,3")
    name, dtype, dims = parts
    try:
        dtype = dtypes.from_name(dtype).name
    except ValueError as exc:
        raise MetainspectError(None, f"--input-spec {text!r}: {exc}") from None
    shape = _dims(dims.strip())
    if isinstance(shape, str):
        raise MetainspectError(None, f"--input-spec {text!r}: dimension {shape!r} is not a size or '?'")
    return InputSpec(name, dtype, shape)


# -- library hints in flag words ----------------------------------------------------------------
def _quoted(flag: str) -> Callable[[Hint, MetainspectError], str]:
    return lambda hint, exc: flag if hint.value is None else f"{flag} {hint.value!r}"


def _endpoints(hint: Hint, exc: MetainspectError) -> str:
    proposal = getattr(exc, "proposal", None)
    if proposal is not None and proposal.outputs:
        flags = [f"--input {k}={v}" for k, v in proposal.inputs.items()]
        flags += [f"--output {k}={v}" for k, v in proposal.outputs.items()]
        return "add for example: " + " ".join(flags)
    return "name them with --input KEY=TENSOR and --output KEY=TENSOR"


_FLAG_PHRASES: dict[str, Callable[[Hint, MetainspectError], str]] = {
    "renames": _quoted("--rename"),
    "drop": _quoted("--drop"),
    "keep": _quoted("--keep"),
    "drop_optimizer": _quoted("--drop-optimizer"),
    "cast": lambda hint, exc: "--cast " + repr(":".join(hint.value or ())),
    "in_place": _quoted("--in-place"),
    "prune_to": _quoted("--prune-to"),
    "set_shapes": lambda hint, exc: "--set-shape" if hint.value is None else f"--set-shape {hint.value}",
    "add_signature": _quoted("--add-signature"),
    "remove_signatures": _quoted("--remove-signature"),
    "drop_collections": _quoted("--drop-collection"),
    "set_tags": _quoted("--set-tags"),
    "factory": _quoted("--model-factory"),
    "input_specs": lambda hint, exc: "the --input-spec",
    "write_elsewhere": lambda hint, exc: "write elsewhere with -o, or use --in-place (keeps a backup)",
    "other_output": lambda hint, exc: "choose another output prefix or use --in-place",
    "renamed_variables": lambda hint, exc: "--rename changes the checkpoint keys its variables/ must hold; "
                                           "write a new SavedModel with -o (variables/ is rewritten there)",
    "give_checkpoint": lambda hint, exc: "give --checkpoint",
    "engine_tf": lambda hint, exc: "use --engine tf (it adds a saver) or export the graph with a Saver",
    "tf_engine_needs_tf": lambda hint, exc: "TensorFlow is not installed; the tf engine needs it: "
                                            "pip install 'metainspect[tf]' (or use --engine pure)",
    "factory_needs_tf": lambda hint, exc: "TensorFlow is not installed; rebuilding a TF2 model from "
                                          "--model-factory needs it: pip install 'metainspect[tf]'",
    "factory_needs_inputs": lambda hint, exc: "--model-factory needs at least one --input-spec name:dtype:shape",
    "rebuild_from_factory": lambda hint, exc: "rebuild the model in Python: --model-factory module:function "
                                              "--input-spec name:dtype:shape",
    "graph_not_factory": lambda hint, exc: "export it with its .meta graph instead of --model-factory",
    "force": lambda hint, exc: "`metainspect check` says how to fix it, or pass --force to export anyway",
    "remove_signature": lambda hint, exc: f"remove it first (--remove-signature {hint.value})",
    "signature_endpoints": lambda hint, exc: "at least one --input and one --output",
    "choose_endpoints": _endpoints,
    "list_tensors": lambda hint, exc: "use `metainspect vars`",
    "list_nodes": lambda hint, exc: f"use `metainspect nodes {hint.value}` to inspect it",
}


def command_line(remedy: Remedy) -> str:
    """A library :class:`~metainspect.remedy.Remedy` as the command that does it
    (``metainspect rewrite PREFIX -o OUT --cast float16:float32``)."""
    from metainspect.remedy import OUT

    opts = dict(remedy.options)
    words = ["metainspect", remedy.action, remedy.target]
    if remedy.action in ("edit", "rewrite", "export"):
        words += ["-o", OUT]
    words += [f"--checkpoint {c}" for c in remedy.strings("checkpoint")]
    words += [f"--remove-signature {name}" for name in remedy.strings("remove_signature")]
    words += [f"--add-signature {name}" for name in remedy.strings("add_signature")]
    for option, flag in (("inputs", "--input"), ("outputs", "--output")):
        words += [f"{flag} {key}={tensor}" for key, tensor in remedy.mapping(option).items()]
    if "prune_to" in opts:
        words.append("--prune-to " + ",".join(remedy.strings("prune_to")))
    words += [f"--rename '{rule}'" for rule in remedy.strings("renames")]
    words += [f"--drop '{pattern}'" for pattern in remedy.strings("drop")]
    if "cast" in opts:
        words.append("--cast " + ":".join(remedy.strings("cast")))
    words += [flag for option, flag in (("clear_devices", "--clear-devices"), ("drop_optimizer", "--drop-optimizer"))
              if opts.get(option)]
    return " ".join(words)


def fix_line(finding: Finding) -> str:
    """A finding's ``fix`` as the command line says it: its remedy as a command."""
    if finding.remedy is None:
        return finding.fix
    return finding.fix.replace(finding.remedy.text, command_line(finding.remedy), 1)


def dropped_by(reason: Dropped) -> str:
    """Why a tensor is left out, as the flags say it: ``--drop PATTERN``, ``--keep``, ``--drop-optimizer``
    (or ``object graph``: a format with no place for the TF2 object graph)."""
    if reason.rule == "drop":
        return f"--drop {reason.pattern}"
    return "object graph" if reason.rule == "object_graph" else "--" + reason.rule.replace("_", "-")


def with_dropped_by(document: dict[str, Any]) -> dict[str, Any]:
    """A plan's JSON with each tensor's ``dropped_by`` (``drop_reason`` in flag words) beside ``drop_reason``."""
    from metainspect.checkpoint.selection import Dropped

    for row in document["tensors"]:
        reason = row["drop_reason"]
        row["dropped_by"] = dropped_by(Dropped(**reason)) if reason else None
    return document


def flag_phrase(hint: Hint, exc: MetainspectError) -> str:
    """``hint``'s phrase as the command line says it (``--cast 'float32:float16'``)."""
    return _FLAG_PHRASES[hint.topic](hint, exc)


def error_line(exc: MetainspectError) -> str:
    """The one line the command line prints for ``exc``: its message, in flag words."""
    message = exc.message
    if exc.hint is not None and exc.hint.text in message:
        message = message.replace(exc.hint.text, flag_phrase(exc.hint, exc), 1)
    if isinstance(exc, LfsPointerError):
        message += ": fetch it with `git lfs pull`"
    return f"{exc.path}: {message}" if exc.path else message
