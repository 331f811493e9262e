"""TensorFlow's ``DataType`` enum: names, element sizes in a checkpoint, numpy equivalents.

Names are TensorFlow's own ``tf.DType.name`` spellings (``float32``, ``bfloat16``, ``qint8``…).
Non-standard numpy types come from ``ml_dtypes``, imported only when such a tensor is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import numpy as np
    from tensorboard.compat.proto.types_pb2 import DataType

REF_OFFSET = 100


@dataclass(frozen=True)
class DType:
    """One TensorFlow data type."""

    enum: DataType
    name: str
    #: bytes per element in a checkpoint; 0 for variable-length (string, variant) or unsavable
    itemsize: int
    #: numpy type name, ``ml_dtypes.<name>`` for the extended types, "" when there is none
    numpy_name: str

    @property
    def is_numeric(self) -> bool:
        """True for fixed-size types that decode to a numpy array."""
        return self.itemsize > 0

    @property
    def is_floating(self) -> bool:
        """True for real floating types (the ones a cast to float16/bfloat16 makes sense for)."""
        return self.name.startswith(("float", "bfloat"))

    def numpy(self) -> np.dtype:
        """The numpy dtype that holds one element (quantized types use their storage type)."""
        import numpy as np

        if not self.numpy_name:
            raise TypeError(f"{self.name} has no numpy equivalent")
        if self.numpy_name.startswith("ml_dtypes."):
            import ml_dtypes

            extended: np.dtype[Any] = np.dtype(getattr(ml_dtypes, self.numpy_name.split(".", 1)[1]))
            return extended
        return np.dtype(self.numpy_name)


_TABLE = [
    (1, "float32", 4, "float32"),
    (2, "float64", 8, "float64"),
    (3, "int32", 4, "int32"),
    (4, "uint8", 1, "uint8"),
    (5, "int16", 2, "int16"),
    (6, "int8", 1, "int8"),
    (7, "string", 0, "object"),
    (8, "complex64", 8, "complex64"),
    (9, "int64", 8, "int64"),
    (10, "bool", 1, "bool"),
    (11, "qint8", 1, "int8"),
    (12, "quint8", 1, "uint8"),
    (13, "qint32", 4, "int32"),
    (14, "bfloat16", 2, "ml_dtypes.bfloat16"),
    (15, "qint16", 2, "int16"),
    (16, "quint16", 2, "uint16"),
    (17, "uint16", 2, "uint16"),
    (18, "complex128", 16, "complex128"),
    (19, "float16", 2, "float16"),
    (20, "resource", 0, ""),
    (21, "variant", 0, "object"),
    (22, "uint32", 4, "uint32"),
    (23, "uint64", 8, "uint64"),
    (24, "float8_e5m2", 1, "ml_dtypes.float8_e5m2"),
    (25, "float8_e4m3fn", 1, "ml_dtypes.float8_e4m3fn"),
    (26, "float8_e4m3fnuz", 1, "ml_dtypes.float8_e4m3fnuz"),
    (27, "float8_e4m3b11fnuz", 1, "ml_dtypes.float8_e4m3b11fnuz"),
    (28, "float8_e5m2fnuz", 1, "ml_dtypes.float8_e5m2fnuz"),
    (29, "int4", 1, "ml_dtypes.int4"),
    (30, "uint4", 1, "ml_dtypes.uint4"),
    (31, "int2", 1, "ml_dtypes.int2"),
    (32, "uint2", 1, "ml_dtypes.uint2"),
    (33, "float4_e2m1fn", 1, "ml_dtypes.float4_e2m1fn"),
]

#: the proto stubs type DataType values apart from plain ints; the table holds exactly those values
BY_ENUM: dict[int, DType] = {row[0]: DType(cast("DataType", row[0]), *row[1:]) for row in _TABLE}
BY_NAME: dict[str, DType] = {d.name: d for d in BY_ENUM.values()}
#: TensorFlow's alternative spellings accepted on input (``half`` is ``float16``…)
ALIASES = {"half": "float16", "float": "float32", "double": "float64"}


def from_enum(value: int) -> DType:
    """Look up a ``DataType`` enum value; ``*_REF`` values map to their base type."""
    base = value - REF_OFFSET if value > REF_OFFSET else value
    try:
        return BY_ENUM[base]
    except KeyError:
        raise ValueError(f"unknown TensorFlow DataType {value}") from None


def name_of(value: int) -> str:
    """TensorFlow's name for an enum value; unknown values read ``unknown_dtype_<n>``."""
    try:
        return from_enum(value).name
    except ValueError:
        return f"unknown_dtype_{value}"


def from_name(name: str) -> DType:
    """Look up a type by TensorFlow name (``float32``, ``half``, ``DT_FLOAT`` all work)."""
    key = name.lower().removeprefix("dt_").removesuffix("_ref")
    key = ALIASES.get(key, key)
    try:
        return BY_NAME[key]
    except KeyError:
        raise ValueError(f"unknown TensorFlow dtype {name!r}") from None


def name_for_array(array: np.ndarray) -> str:
    """TensorFlow dtype name for a numpy array (object arrays: ``string``, or ``variant`` for protos)."""
    if array.dtype.kind == "O":
        first = next(iter(array.flat), b"")
        return "variant" if hasattr(first, "SerializeToString") else "string"
    if array.dtype.kind in "SU":
        return "string"
    name: str = array.dtype.name
    record = BY_NAME.get(name)
    if record is not None and record.numpy_name in (name, f"ml_dtypes.{name}"):
        return name
    raise ValueError(f"numpy dtype {name} has no TensorFlow equivalent")
