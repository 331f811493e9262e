"""A lazy handle on one tensor of a checkpoint: what ``ckpt[name]`` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from metainspect.checkpoint.reader import Checkpoint, TensorInfo

__all__ = ["StoredTensor"]


class StoredTensor:
    """One tensor, read only when asked: :meth:`numpy` (or ``np.asarray``) reads it whole,
    ``tensor[2:4]`` reads only the bytes of those rows when the tensor is stored whole and
    numeric, and only the overlapping slices of a partitioned tensor.

    Indexing takes integers, slices and ``...`` (anything else reads the whole tensor first).
    The rows of a whole tensor are not checksummed (its CRC32C covers all of it); whole reads
    and the slices of a partitioned tensor are, unless the checkpoint was opened with
    ``verify=False``. Arrays returned are read-only.
    """

    __slots__ = ("_checkpoint", "dtype", "name", "shape")

    def __init__(self, checkpoint: Checkpoint, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        self._checkpoint = checkpoint
        self.name = name
        #: TensorFlow dtype name, e.g. ``float32``, ``bfloat16``, ``string``
        self.dtype = dtype
        self.shape = shape

    @property
    def info(self) -> TensorInfo:
        """Where the tensor lies (:meth:`Checkpoint.info`)."""
        return self._checkpoint.info(self.name)

    @property
    def nbytes(self) -> int:
        """The tensor's bytes (:attr:`TensorInfo.nbytes`; stored bytes: ``info.stored_nbytes``)."""
        return self.info.nbytes

    def numpy(self) -> np.ndarray:
        """The whole tensor as a read-only array (strings: bytes objects; variants: protos)."""
        return self._checkpoint.get(self.name)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        import numpy as np

        array = self.numpy()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            if copy is False:
                raise ValueError(f"tensor {self.name!r} is {self.dtype}: a {np.dtype(dtype)} array needs a copy")
            return array.astype(dtype)
        return array.copy() if copy else array

    def __getitem__(self, key: Any) -> Any:
        import numpy as np

        index = key if isinstance(key, tuple) else (key,)
        if not self.shape or not all(map(_basic, index)) or sum(k is Ellipsis for k in index) > 1:
            return self.numpy()[key]
        ellipsis = tuple(k for k in index if k is Ellipsis)  # kept: with it, numpy gives 0-d arrays, not scalars
        explicit = len(index) - len(ellipsis)
        if explicit > len(self.shape):
            raise IndexError(f"too many indices for tensor {self.name!r}: it has {len(self.shape)} dimension(s), "
                             f"{explicit} were indexed")
        fill = (slice(None),) * (len(self.shape) - explicit)
        at = next((i for i, k in enumerate(index) if k is Ellipsis), len(index))
        index = index[:at] + fill + index[at + 1 :]
        ranges: list[tuple[range, bool]] = []
        for axis, (k, dim) in enumerate(zip(index, self.shape)):
            if isinstance(k, slice):
                ranges.append((range(*k.indices(dim)), False))
                continue
            i = int(k)
            if not -dim <= i < dim:
                raise IndexError(f"index {i} is out of bounds for axis {axis} of tensor {self.name!r} with size {dim}")
            ranges.append((range(i % dim, i % dim + 1), True))
        if any(len(r) == 0 for r, _ in ranges):
            return self._empty([len(r) for r, single in ranges if not single], key)
        box = tuple(slice(min(r[0], r[-1]), max(r[0], r[-1]) + 1) for r, _ in ranges)
        local: list[int | slice] = []
        for (r, single), b in zip(ranges, box):
            if single:
                local.append(r[0] - b.start)
            else:
                stop = r[-1] - b.start + (1 if r.step > 0 else -1)
                local.append(slice(r[0] - b.start, stop if stop >= 0 else None, r.step))
        out = self._checkpoint._read_box(self.name, box)[tuple(local) + ellipsis]
        if isinstance(out, np.ndarray):
            out.flags.writeable = False
        return out

    def _empty(self, shape: list[int], key: Any) -> np.ndarray:
        """An empty selection: nothing to read (unless the dtype is unknown: the read says why)."""
        import numpy as np

        from metainspect.formats import dtypes

        try:
            kind = dtypes.from_name(self.dtype).numpy()
        except (ValueError, TypeError):
            return self.numpy()[key]  # type: ignore[no-any-return]
        out = np.empty(shape, dtype=kind)
        out.flags.writeable = False
        return out

    def __repr__(self) -> str:
        return f"<StoredTensor {self.name!r} {self.dtype} {list(self.shape)}>"


def _basic(key: object) -> bool:
    """True for the index keys read without the whole tensor: integers, slices, ``...``."""
    import numpy as np

    if key is Ellipsis or isinstance(key, slice):
        return True
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))
