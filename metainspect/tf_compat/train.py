"""``tf.train``'s checkpoint reading, on metainspect's reader.

Results are what TensorFlow returns: ``get_tensor`` gives a fresh writable numpy array (a
numpy scalar for a 0-d number, ``bytes`` for a 0-d string, an object array of ``bytes`` for
strings), ``list_variables`` sorted ``(name, shape)`` pairs, ``load_variable`` strips a ``:0``
suffix. Unlike TensorFlow, which opens a new reader on every ``load_variable`` call, readers
are cached per checkpoint (keyed by its files' modification times, so a rewritten checkpoint
is reopened): a loader calling ``load_variable`` for each of thousands of variables reads the
index once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from metainspect.errors import MetainspectError
from metainspect.tf_compat import errors
from metainspect.tf_compat.dtypes import DType, as_dtype

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.proto.checkpoint_state_pb2 import CheckpointState

#: readers kept open at a time
CACHE_SIZE = 8
_cache: OrderedDict[tuple[object, ...], CheckpointReader] = OrderedDict()
_lock = threading.Lock()


@contextmanager
def _as_tf_errors() -> Iterator[None]:
    try:
        yield
    except MetainspectError as exc:
        raise errors.translate(exc) from None


class CheckpointReader:
    """TensorFlow's ``CheckpointReader``: the tensors of one checkpoint."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._infos = {info.name: info for info in checkpoint.infos()}

    def has_tensor(self, name: str) -> bool:
        return name in self._infos

    def get_tensor(self, name: str) -> Any:
        """A copy of tensor ``name`` (NotFoundError when absent, DataLossError when corrupt)."""
        import numpy as np

        if name not in self._infos:
            raise errors.NotFoundError(f"Key {name} not found in checkpoint")
        with _as_tf_errors():
            value = self._checkpoint.get(name)
        dtype = as_dtype(self._infos[name].dtype)
        if dtype.is_quantized:
            value = value.view(dtype.as_numpy_dtype)
        if value.shape == ():
            return value[()]  # a numpy scalar, or bytes for a string
        return np.array(value, copy=True)

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(info.shape) for name, info in self._infos.items()}

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        return {name: as_dtype(info.dtype) for name, info in self._infos.items()}


def _cache_key(path: str) -> tuple[object, ...]:
    """Which checkpoint ``path`` means, and the state of its files."""
    from metainspect.checkpoint.reader import resolve

    target = resolve(path)
    files = [target.prefix + ".index"] if target.format == "v2" else list(target.files)
    stamps = []
    for file in files:
        stat = os.stat(file)
        stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return (os.path.abspath(target.prefix), target.format, tuple(stamps))


def load_checkpoint(ckpt_dir_or_file: str | os.PathLike[str]) -> CheckpointReader:
    """The reader of a checkpoint prefix, file, or directory (its latest checkpoint)."""
    from metainspect.checkpoint import open_checkpoint

    path = os.fspath(ckpt_dir_or_file)
    with _as_tf_errors():
        key = _cache_key(path)
        with _lock:
            reader = _cache.get(key)
            if reader is not None:
                _cache.move_to_end(key)
                return reader
        reader = CheckpointReader(open_checkpoint(path))
    with _lock:
        _cache[key] = reader
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)[1]._checkpoint.close()
    return reader


def NewCheckpointReader(filepattern: str | os.PathLike[str]) -> CheckpointReader:
    """``tf.compat.v1.train.NewCheckpointReader``: the same reader as :func:`load_checkpoint`."""
    return load_checkpoint(filepattern)


def list_variables(ckpt_dir_or_file: str | os.PathLike[str]) -> list[tuple[str, list[int]]]:
    """``(name, shape)`` of every tensor, sorted by name."""
    shapes = load_checkpoint(ckpt_dir_or_file).get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(ckpt_dir_or_file: str | os.PathLike[str], name: str) -> Any:
    """The value of tensor ``name`` (a trailing ``:0`` is ignored, as TensorFlow does)."""
    if name.endswith(":0"):
        name = name[:-2]
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name)


def get_checkpoint_state(checkpoint_dir: str | os.PathLike[str],
                         latest_filename: str | None = None) -> CheckpointState | None:
    """The directory's ``checkpoint`` state file, relative paths joined onto the directory;
    None when there is none."""
    from metainspect.formats.checkpoint_state import STATE_FILE, read_state

    directory = os.fspath(checkpoint_dir)
    path = os.path.join(directory, latest_filename or STATE_FILE)
    if not os.path.isfile(path):
        return None
    with _as_tf_errors():
        state = read_state(path)
    join: Callable[[str], str] = lambda p: p if os.path.isabs(p) else os.path.join(directory, p)  # noqa: E731
    if state.model_checkpoint_path:
        state.model_checkpoint_path = join(state.model_checkpoint_path)
    paths = [join(p) for p in state.all_model_checkpoint_paths]
    del state.all_model_checkpoint_paths[:]
    state.all_model_checkpoint_paths.extend(paths)
    return state


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None) -> str | None:
    """The latest checkpoint prefix the directory's state file names, or None. A path recorded
    on another machine is found beside the state file too."""
    from metainspect.formats.checkpoint_state import STATE_FILE
    from metainspect.formats.checkpoint_state import latest_checkpoint as latest

    directory = os.fspath(checkpoint_dir)
    if not os.path.isfile(os.path.join(directory, latest_filename or STATE_FILE)):
        return None
    try:
        return latest(directory, latest_filename or STATE_FILE).prefix
    except MetainspectError:
        return None
