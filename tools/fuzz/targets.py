"""What every input is run through: metainspect's public API, as the commands use it.

Each target returns the :class:`~metainspect.errors.MetainspectError` instances it met (a
refusal is a fine answer to a hostile file); any other exception escapes to the worker, which
records it as a crash. Operations are independent: an error reading one tensor does not stop
the others from being read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metainspect.errors import MetainspectError


class Errors(list[MetainspectError]):
    """Collects the MetainspectErrors of the calls made through :meth:`call`.

    ``refused`` is True when the first call (opening the file) failed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.refused = False

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            return function(*args, **kwargs)
        except MetainspectError as exc:
            self.append(exc)
            self.refused = self.refused or self.calls == 1
            return None


def exercise_checkpoint(path: Path) -> Errors:
    """open_checkpoint, then every listing, read, verification and object-graph call."""
    from metainspect import open_checkpoint
    from metainspect.checkpoint.roles import classify
    from metainspect.checkpoint.stats import tensor_stats

    errors = Errors()
    ckpt = errors.call(open_checkpoint, path)
    if ckpt is None:
        return errors
    with ckpt:
        graph = errors.call(ckpt.object_graph)
        if graph is not None:
            graph.key_paths()
            for node in graph.nodes:
                if node.path is not None:
                    graph.node_at(node.path)
        errors.call(ckpt.infos)
        for name in ckpt.keys():  # noqa: SIM118  (keys() is the API under test)
            errors.call(ckpt.info, name)
            errors.call(ckpt.pieces, name)
            classify(name, graph)
            value = errors.call(ckpt.get, name)
            if value is not None:
                tensor_stats(value)
            handle = errors.call(ckpt.__getitem__, name)
            if handle is not None and handle.shape and handle.shape[0] > 0:
                errors.call(handle.__getitem__, 0)  # reads only the first row (or the slices holding it)
                errors.call(handle.__getitem__, (slice(None, None, -1),) * len(handle.shape))
        errors.call(ckpt.verify)
        repr(ckpt)
    return errors


def exercise_graph(path: Path) -> Errors:
    """load_model, then everything the graph commands list (attrs of every node decoded)."""
    from metainspect import load_model

    errors = Errors()
    model = errors.call(load_model, path)
    if model is None:
        return errors
    errors.call(model.meta_info)
    for node in model.nodes():
        errors.call(lambda n=node: (n.attrs, n.colocation))  # every attr decoded: the point
    errors.call(model.op_histogram)
    errors.call(model.consumers)
    for function in errors.call(model.functions) or ():
        for node in function.nodes:
            errors.call(lambda n=node: n.attrs)
    errors.call(model.placeholders, include_saver=True)
    errors.call(model.variables)
    for collection in errors.call(model.collections) or ():
        str(collection.items)
    errors.call(model.signatures)
    errors.call(model.saver_def)
    errors.call(model.saver_keys)
    errors.call(model.likely_outputs)
    return errors


def exercise_check(path: Path) -> Errors:
    """check's whole run, and its JSON document serialized."""
    from metainspect.check.runner import run_checks

    errors = Errors()
    report = errors.call(run_checks, str(path))
    if report is not None:
        json.dumps(report.to_json())
        report.verdict_line()
    return errors


TARGETS: dict[str, Callable[[Path], Errors]] = {
    "checkpoint": exercise_checkpoint, "graph": exercise_graph, "check": exercise_check,
}
