"""``--add-signature``, ``--remove-signature`` and ``--set-tags``: what a serving loader sees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import Hint, MetainspectError, TensorNotFoundError
from metainspect.graph.endpoints import METHODS, PREDICT, method_name, method_problems

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef, TensorInfo

    from metainspect.graph.model import Model
    from metainspect.graph.outputs import OutputSpec

__all__ = ["METHODS", "add_signature", "method_name", "remove_signature", "set_tags"]


def add_signature(meta_graph: MetaGraphDef, name: str, inputs: dict[str, str], outputs: dict[str, str],
                  method: str = PREDICT, *, replace: bool = False, log: ChangeLog | None = None) -> None:
    """Add SignatureDef ``name`` mapping keys to tensors (``x`` or ``x:0``).

    Dtype and shape of each tensor are read from the graph. Raises MetainspectError when a
    tensor does not exist, the signature exists (unless ``replace``), or a classify/regress
    signature breaks TensorFlow Serving's rules for its keys and dtypes.
    """
    from metainspect.edit.shapes import format_shape
    from metainspect.edit.target import model_of

    log = log_for(log, "add-signature")
    method = method_name(method)
    if not name:
        hint = Hint("add_signature")
        raise MetainspectError(None, f"{hint.text}: the signature needs a name", hint)
    if name in meta_graph.signature_def and not replace:
        hint = Hint("remove_signature", name)
        raise MetainspectError(None, f"signature {name!r} exists; {hint.text}", hint)
    if not inputs or not outputs:
        hint = Hint("signature_endpoints")
        raise MetainspectError(None, f"signature {name!r} needs {hint.text}", hint)
    model = model_of(meta_graph)
    specs = {("input", key): _spec(model, tensor) for key, tensor in inputs.items()}
    specs |= {("output", key): _spec(model, tensor) for key, tensor in outputs.items()}
    problems = method_problems(method, {k: s.dtype for (d, k), s in specs.items() if d == "input"},
                               {k: s.dtype for (d, k), s in specs.items() if d == "output"})
    if problems:
        raise MetainspectError(None, f"signature {name!r} ({method}): {'; '.join(problems)}")
    signature = meta_graph.signature_def[name]
    signature.Clear()
    signature.method_name = method
    for (direction, key), spec in specs.items():
        info = (signature.inputs if direction == "input" else signature.outputs)[key]
        _fill(info, spec)
        log.add(f"signature {name}",
                f"{direction} {key} = {spec.tensor} {spec.dtype or 'dtype unknown'} {format_shape(spec.shape)}")
    log.add(f"signature {name}", f"method {method}")


def _spec(model: Model, tensor: str) -> OutputSpec:
    from metainspect.graph.names import tensor_name
    from metainspect.graph.outputs import output_spec

    try:
        return output_spec(model, tensor_name(tensor))
    except TensorNotFoundError as exc:
        raise TensorNotFoundError(None, f"signature tensor {tensor!r}: {exc}", exc.name) from None
    except (LookupError, ValueError) as exc:
        raise MetainspectError(None, f"signature tensor {tensor!r}: {exc}") from None


def _fill(info: TensorInfo, spec: OutputSpec) -> None:
    from metainspect.formats import dtypes

    info.name = spec.tensor
    if spec.dtype:
        info.dtype = dtypes.from_name(spec.dtype).enum
    if spec.shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        for dim in spec.shape:
            info.tensor_shape.dim.add(size=-1 if dim is None else dim)


def remove_signature(meta_graph: MetaGraphDef, name: str, log: ChangeLog | None = None) -> None:
    """Delete SignatureDef ``name``; MetainspectError (listing the others) when there is none."""
    log = log_for(log, "remove-signature")
    if name not in meta_graph.signature_def:
        known = ", ".join(sorted(meta_graph.signature_def)) or "none"
        raise TensorNotFoundError(None, f"no signature {name!r} to remove (signatures: {known})", name)
    del meta_graph.signature_def[name]
    log.add(f"signature {name}", "removed")


def set_tags(meta_graph: MetaGraphDef, tags: list[str], log: ChangeLog | None = None) -> None:
    """Replace the meta graph's tag set (``meta_info_def.tags``)."""
    log = log_for(log, "set-tags")
    old = list(meta_graph.meta_info_def.tags)
    if old == list(tags):
        return
    meta_graph.meta_info_def.tags[:] = list(tags)
    log.add("meta_info_def.tags", f"{','.join(old) or '(none)'} -> {','.join(tags) or '(none)'}")
