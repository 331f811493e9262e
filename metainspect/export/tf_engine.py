"""Export with TensorFlow itself: import the meta graph, restore the checkpoint, let TF write.

The SavedModel comes from ``tf.compat.v1.saved_model.Builder`` (tags, signatures, assets, the
variables saved by the graph's own V2 saver, else by a fresh sharded V2 saver); the frozen graph
from ``convert_variables_to_constants``. TensorFlow is imported here only, on first use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from metainspect.errors import Hint, MetainspectError
from metainspect.export.assets import SAVED_MODEL_ASSETS, Asset
from metainspect.graph.model import op_name
from metainspect.progress import Progress, silent

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

_SAVER_V2 = 2


#: what the tf engine says when TensorFlow is missing
TF_ENGINE_NEEDS_TF = Hint("tf_engine_needs_tf")


def import_tensorflow(missing: Hint = TF_ENGINE_NEEDS_TF) -> Any:
    """The ``tensorflow`` module, quiet; ``missing`` says what needs it and what to install if absent."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _stderr_silenced():  # TF's C++ start-up banners bypass its log level
            import tensorflow as tf
    except ImportError:
        raise MetainspectError(None, missing.text, missing) from None
    tf.get_logger().setLevel("ERROR")
    return tf


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Python exceptions still propagate)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _Session:
    """The prepared meta graph imported into a TF graph with the checkpoint restored."""

    def __init__(self, tf: Any, meta_graph: MetaGraphDef, checkpoint: str | None, path: str) -> None:
        from tensorflow.core.protobuf import meta_graph_pb2

        v1 = tf.compat.v1
        self.tf = tf
        self.graph = tf.Graph()
        with self.graph.as_default():
            proto = meta_graph_pb2.MetaGraphDef.FromString(meta_graph.SerializeToString())
            self.saver = v1.train.import_meta_graph(proto)
        # placement does not matter for exporting; pinned devices stay in the exported graph
        self.session = v1.Session(graph=self.graph, config=v1.ConfigProto(allow_soft_placement=True))
        if self.saver is None:
            return
        if checkpoint is None:
            hint = Hint("give_checkpoint")
            raise MetainspectError(path, f"the graph has variables but there is no checkpoint; {hint.text}", hint)
        try:
            with self.graph.as_default():  # outside its graph, Saver.restore takes the eager path
                self.saver.restore(self.session, checkpoint)
        except (tf.errors.OpError, ValueError) as exc:
            raise MetainspectError(checkpoint, f"TensorFlow could not restore it: {first_line(exc)}") from None

    def close(self) -> None:
        self.session.close()


def write_saved_model(directory: str, meta_graph: MetaGraphDef, checkpoint: str | None, assets: list[Asset],
                      path: str, progress: Progress = silent) -> None:
    """Write a SavedModel into the (new, empty) ``directory`` with TensorFlow's builder."""
    tf = import_tensorflow()
    v1 = tf.compat.v1
    progress("restoring checkpoint with TensorFlow", 0, 1)
    state = _Session(tf, _with_asset_sources(meta_graph, assets), checkpoint, path)
    try:
        progress("restoring checkpoint with TensorFlow", 1, 1)
        progress("writing SavedModel with TensorFlow", 0, 1)
        with state.graph.as_default():
            state.graph.clear_collection(SAVED_MODEL_ASSETS)  # the builder records the assets again
            builder = v1.saved_model.Builder(directory)
            saver = state.saver if state.saver is not None and state.saver.saver_def.version == _SAVER_V2 else None
            builder.add_meta_graph_and_variables(
                state.session, list(meta_graph.meta_info_def.tags),
                signature_def_map=_signatures(meta_graph),
                assets_collection=[state.graph.get_tensor_by_name(a.tensor) for a in assets] or None,
                saver=saver,
            )
            builder.save()
        progress("writing SavedModel with TensorFlow", 1, 1)
    except (tf.errors.OpError, ValueError, TypeError, AssertionError) as exc:
        raise MetainspectError(path, f"TensorFlow could not export: {first_line(exc)}") from None
    finally:
        state.close()


def freeze_graph_def(meta_graph: MetaGraphDef, checkpoint: str | None, outputs: list[str], path: str,
                     progress: Progress = silent) -> bytes:
    """A serialized GraphDef frozen to ``outputs`` by TensorFlow's ``convert_variables_to_constants``."""
    tf = import_tensorflow()
    progress("freezing with TensorFlow", 0, 1)
    state = _Session(tf, meta_graph, checkpoint, path)
    try:
        with state.graph.as_default():
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                state.session, state.graph.as_graph_def(), [op_name(o) for o in outputs])
    except (tf.errors.OpError, ValueError, TypeError, AssertionError) as exc:
        raise MetainspectError(path, f"TensorFlow could not freeze: {first_line(exc)}") from None
    finally:
        state.close()
    progress("freezing with TensorFlow", 1, 1)
    return frozen.SerializeToString()  # type: ignore[no-any-return]


def _signatures(meta_graph: MetaGraphDef) -> dict[str, Any]:
    """The meta graph's SignatureDefs as TensorFlow's own messages."""
    from tensorflow.core.protobuf import meta_graph_pb2

    return {key: meta_graph_pb2.SignatureDef.FromString(sig.SerializeToString())
            for key, sig in meta_graph.signature_def.items()}


def _with_asset_sources(meta_graph: MetaGraphDef, assets: list[Asset]) -> MetaGraphDef:
    """A copy whose asset path constants hold the files' current paths (the builder copies from there)."""
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    copy = MetaGraphDef()
    copy.CopyFrom(meta_graph)
    sources = {op_name(a.tensor): a.source for a in assets}
    for node in copy.graph_def.node:
        if node.name in sources and node.op == "Const":
            tensor = node.attr["value"].tensor
            del tensor.string_val[:]
            tensor.string_val.append(sources[node.name].encode("utf-8"))
    return copy


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (TF's are long)."""
    text = getattr(exc, "message", None) or str(exc)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
