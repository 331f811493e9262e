"""Export a TF2 object-based checkpoint: the model comes from Python code, the values from the file.

A TF2 checkpoint holds values and an object graph but no computation. A model factory
``module:function`` (or ``path/to/file.py:function``) names a function returning the model (a
``tf.Module`` or a Keras model); :class:`InputSpec` s describe the serving inputs.
The model is traced once (building its variables), attached to the checkpoint where its
variables match (the root, or one of the root's children such as ``model``), restored, and
saved with ``tf.saved_model.save``. Every model variable must get a value and every model value
in the checkpoint must be used; optimizer state and counters may stay behind.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metainspect.errors import Hint, MetainspectError, WrongKindError
from metainspect.export.tf_engine import first_line, import_tensorflow
from metainspect.graph.endpoints import SERVE_TAG, SERVING_DEFAULT
from metainspect.progress import Progress, silent

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.checkpoint.object_graph import ObjectGraph


@dataclass(frozen=True)
class InputSpec:
    """One serving input: its name, TensorFlow dtype name and shape (``[None, 3]``: any batch of 3)."""

    name: str
    dtype: str
    #: None: unknown rank
    shape: list[int | None] | None


def load_factory(spec: str) -> Any:
    """The function ``module:function`` or ``file.py:function`` names (the working directory is importable)."""
    hint = Hint("factory", spec)
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise MetainspectError(None, f"{hint.text}: expected module:function or path/to/file.py:function", hint)
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            location = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(module_name))[0],
                                                              module_name)
            if location is None or location.loader is None or not os.path.isfile(module_name):
                raise MetainspectError(module_name, "no such Python file")
            module = importlib.util.module_from_spec(location)
            location.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except MetainspectError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: any failure is reported in one line
        raise MetainspectError(None, f"{hint.text}: importing {module_name} failed: "
                               f"{type(exc).__name__}: {exc}", hint) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise MetainspectError(None, f"{hint.text}: {module_name} has no function {attr!r}", hint)
    return factory


def export_from_factory(checkpoint: str, out: str, factory: str, input_specs: list[InputSpec], *,
                        signature_name: str = SERVING_DEFAULT, tags: tuple[str, ...] = (SERVE_TAG,),
                        progress: Progress = silent) -> dict[str, Any]:
    """Build the model with ``factory``, restore ``checkpoint`` into it, save a SavedModel to ``out``.

    Returns a summary: ``{"saved_model", "checkpoint", "attached_as", "signature_name", "inputs",
    "outputs", "variables", "left_in_checkpoint"}``.
    """
    from metainspect.checkpoint import open_checkpoint
    from metainspect.formats.atomic import new_directory

    if tuple(tags) != (SERVE_TAG,):
        raise MetainspectError(None, "TF2 exports (tf.saved_model.save) always carry the single tag 'serve'")
    if not input_specs:
        hint = Hint("factory_needs_inputs")
        raise MetainspectError(None, hint.text, hint)
    if os.path.lexists(out):
        raise MetainspectError(out, "already exists; choose a new output directory or remove it first")
    with open_checkpoint(checkpoint) as ckpt:
        graph = ckpt.object_graph()
        if graph is None:
            hint = Hint("graph_not_factory")
            raise WrongKindError(ckpt.prefix, f"is a name-based (TF1) checkpoint; {hint.text}", hint)
        prefix = ckpt.prefix
        tf = import_tensorflow(Hint("factory_needs_tf"))
        progress("building the model", 0, 1)
        model = _call(factory)
        serve = _serving_function(tf, model, input_specs)
        concrete = _trace(serve, factory)
        variables = list(getattr(model, "variables", []))
        if not variables:
            hint = Hint("factory", factory)
            raise MetainspectError(None, f"{hint.text}: the model has no variables after tracing", hint)
        progress("building the model", 1, 1)
        progress("restoring checkpoint", 0, 1)
        attached, matched = _attach(tf, model, prefix, graph)
        unused = _unused_model_keys(graph, matched)
        if unused:
            built = _built_keys(tf, model, attached)
            raise MetainspectError(prefix, _unused_message(ckpt, graph, unused, built, attached))
        progress("restoring checkpoint", 1, 1)
    progress("writing SavedModel", 0, 1)
    root = tf.Module()
    root.model = model
    root.serve = serve
    # Keras 3 variables wrap a tf.Variable; the SavedModel must track the wrapped ones directly
    root.model_variables = [v if isinstance(v, tf.Variable) else v.value for v in variables]
    try:
        with new_directory(out) as tmp:
            tf.saved_model.save(root, tmp, signatures={signature_name: concrete})
    except (ValueError, TypeError, tf.errors.OpError) as exc:
        raise MetainspectError(out, f"TensorFlow could not save the model: {first_line(exc)}") from None
    progress("writing SavedModel", 1, 1)
    return {
        "saved_model": os.path.abspath(out), "checkpoint": prefix, "attached_as": attached or "(root)",
        "signature_name": signature_name,
        "inputs": {s.name: {"dtype": s.dtype, "shape": s.shape} for s in input_specs},
        "outputs": {k: {"dtype": v.dtype.name, "shape": v.shape.as_list() if v.shape.rank is not None else None}
                    for k, v in concrete.structured_outputs.items()},
        "variables": len(variables),
        "left_in_checkpoint": _role_counts(graph, matched),
    }


def _call(factory: str) -> Any:
    function = load_factory(factory)
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - user code
        hint = Hint("factory", factory)
        raise MetainspectError(None, f"{hint.text} raised {type(exc).__name__}: {exc}", hint) from None


def _serving_function(tf: Any, model: Any, specs: list[InputSpec]) -> Any:
    """A tf.function over the input specs calling the model, returning a dict of named outputs."""
    signature = [tf.TensorSpec(s.shape, tf.dtypes.as_dtype(s.dtype), name=s.name) for s in specs]
    names = [s.name for s in specs]

    def serve(*args: Any) -> dict[str, Any]:
        result = model(args[0]) if len(args) == 1 else model(**dict(zip(names, args)))
        if isinstance(result, dict):
            return {str(k): v for k, v in result.items()}
        if isinstance(result, (list, tuple)):
            return {f"output_{i}": v for i, v in enumerate(result)}
        return {"output_0": result}

    return tf.function(serve, input_signature=signature)


def _trace(serve: Any, factory: str) -> Any:
    try:
        return serve.get_concrete_function()
    except Exception as exc:  # noqa: BLE001 - user code
        hint = Hint("input_specs")
        raise MetainspectError(None, f"calling the model from {factory!r} on {hint.text} inputs failed: "
                               f"{first_line(exc)}", hint) from None


def _attach(tf: Any, model: Any, prefix: str, graph: ObjectGraph) -> tuple[str | None, set[int]]:
    """Restore into the model where it fits: a root child (``model`` first) or the root itself.

    Returns the child name (None: root) and the checkpoint node ids TF matched.
    """
    # "root" cannot be a keyword of tf.train.Checkpoint: it names the root object itself
    children = [name for name, _ in graph.nodes[0].children if name != "root"] if graph.nodes else []
    candidates: list[str | None] = sorted(children, key=lambda n: n != "model") + [None]
    first_error = None
    for name in candidates:
        checkpoint = tf.train.Checkpoint(**{name: model}) if name else tf.train.Checkpoint(root=model)
        try:
            status = checkpoint.read(prefix)
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            first_error = first_error or first_line(exc)
            continue
        return name, set(status._checkpoint.matched_proto_ids)
    raise MetainspectError(prefix, f"the model's variables do not match the checkpoint's objects "
                           f"(tried {', '.join(c or '(root)' for c in candidates)}): {first_error}")


def _unused_model_keys(graph: ObjectGraph, matched: set[int]) -> list[str]:
    """Model values (not optimizer state or counters) of objects TF did not match."""
    from metainspect.checkpoint.roles import MODEL, classify

    return [attribute.checkpoint_key for node in graph.nodes if node.id not in matched
            for attribute in node.attributes if classify(attribute.checkpoint_key, graph) == MODEL]


def _model_paths(graph: ObjectGraph, attached: str | None) -> dict[int, str]:
    """Object paths inside the attached model (Keras 3 keys its weights under the optimizer)."""
    from collections import deque

    from metainspect.checkpoint.object_graph import escape

    start = dict(graph.nodes[0].children).get(attached) if attached else 0
    if start is None:
        return {}
    paths = {start: attached or ""}
    queue = deque([start])
    while queue:
        node_id = queue.popleft()
        for name, child in graph.nodes[node_id].children:
            if child not in paths:
                paths[child] = f"{paths[node_id]}/{escape(name)}" if paths[node_id] else escape(name)
                queue.append(child)
    return paths


def _built_keys(tf: Any, model: Any, attached: str | None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Checkpoint keys (with dtype and shape) the built model itself writes, attached the same way."""
    import tempfile

    from metainspect.checkpoint import open_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = tf.train.Checkpoint(**{attached: model}) if attached else tf.train.Checkpoint(root=model)
        prefix = checkpoint.write(os.path.join(tmp, "built"))
        with open_checkpoint(prefix) as built:
            return {info.name: (info.dtype, info.shape) for info in built.infos()}


def _unused_message(ckpt: Checkpoint, graph: ObjectGraph, unused: list[str],
                    built: dict[str, tuple[str, tuple[int, ...]]], attached: str | None) -> str:
    """Name the unused values by their path in the saved model, each with the built model's
    closest key (check's key matching)."""
    from metainspect.check.key_matching import KeyMatcher

    paths = _model_paths(graph, attached)
    matcher = KeyMatcher(built)
    shown = []
    for key in unused[:5]:
        info = ckpt.info(key)
        node = graph.node_for_key(key)
        path = paths.get(node.id) if node is not None else None
        wanted = f"{path}/.ATTRIBUTES/VARIABLE_VALUE" if path else key
        suggestions = matcher.suggest(wanted, info.dtype, info.shape, limit=1)
        near = f" (the built model has {suggestions[0].key.split('/.ATTRIBUTES/')[0]})" if suggestions else ""
        shown.append(f"{path or key} {info.dtype}{list(info.shape)}{near}")
    more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
    where = f"attached as {attached!r}" if attached else "attached at the root"
    return (f"{len(unused)} model value(s) in the checkpoint have no variable in the built model ({where}): "
            f"{'; '.join(shown)}{more}; the factory must build the model that was saved")


def _role_counts(graph: ObjectGraph, matched: set[int]) -> dict[str, int]:
    """How many checkpoint values were left unused, by role (optimizer, bookkeeping)."""
    from metainspect.checkpoint.roles import classify

    counts: dict[str, int] = {}
    for node in graph.nodes:
        if node.id in matched:
            continue
        for attribute in node.attributes:
            role = classify(attribute.checkpoint_key, graph)
            counts[role] = counts.get(role, 0) + 1
    return dict(sorted(counts.items()))

