"""``tf.DType`` objects for the types a checkpoint can hold.

Each carries TensorFlow's ``name`` (``float32``, ``bfloat16``…), ``as_datatype_enum`` and
``as_numpy_dtype`` as TensorFlow gives it: the numpy scalar type (``numpy.float32``,
``ml_dtypes.bfloat16``), ``object`` for strings, and the one-field record types TensorFlow
uses for quantized types (``[('qint8', 'i1')]``). Everything comes from
:mod:`metainspect.formats.dtypes`.
"""

from __future__ import annotations

from typing import Any

from metainspect.formats import dtypes as _table


class DType:
    """One TensorFlow data type; equal to another DType of the same type or to its name."""

    __slots__ = ("_record",)

    def __init__(self, record: _table.DType) -> None:
        self._record = record

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def as_datatype_enum(self) -> int:
        return self._record.enum

    @property
    def size(self) -> int:
        """Bytes per element (1 for bool; strings and variants report 8, as TensorFlow does)."""
        return self._record.itemsize or 8

    @property
    def is_floating(self) -> bool:
        return self._record.is_floating

    @property
    def is_quantized(self) -> bool:
        return self.name.startswith(("qint", "quint"))

    @property
    def as_numpy_dtype(self) -> Any:
        import numpy as np

        if self.name in ("string", "variant"):
            return object
        storage = self._record.numpy()
        if self.is_quantized:
            return np.dtype([(self.name, storage)])
        return storage.type

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return other.name == self.name
        if isinstance(other, str):
            try:
                return _table.from_name(other).name == self.name
            except ValueError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __str__(self) -> str:
        return f"<dtype: '{self.name}'>"


_BY_NAME = {name: DType(record) for name, record in _table.BY_NAME.items()}


def as_dtype(value: object) -> DType:
    """A DType from a DType, a name (``"float32"``, ``"half"``) or an enum value."""
    if isinstance(value, DType):
        return value
    try:
        if isinstance(value, int):
            return _BY_NAME[_table.from_enum(value).name]
        if isinstance(value, str):
            return _BY_NAME[_table.from_name(value).name]
    except ValueError as exc:
        raise TypeError(str(exc)) from None
    raise TypeError(f"cannot convert {value!r} to a dtype")


#: every type as a module attribute: ``float32``, ``bfloat16``, ``string``…
TYPES: dict[str, DType] = dict(_BY_NAME)
