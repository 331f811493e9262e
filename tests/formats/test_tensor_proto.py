"""TensorProto decoding, on protos exactly as TF 2.21's make_tensor_proto writes them."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from tensorboard.compat.proto.tensor_pb2 import TensorProto

from metainspect.formats import dtypes
from metainspect.formats.tensor_proto import to_numpy


def _proto(dtype: str, shape: list[int], **fields: object) -> TensorProto:
    proto = TensorProto(dtype=dtypes.from_name(dtype).enum, **fields)  # type: ignore[arg-type]
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


# what tensor_util.make_tensor_proto(values, dtype=...) printed under TF 2.21
@pytest.mark.parametrize(("dtype", "values"), [
    ("int4", [-3, 1, -8]), ("uint4", [1, 15, 3]), ("int2", [-2, 1]), ("uint2", [3, 0]),
])
def test_narrow_integers_are_signed_values_in_int_val(dtype: str, values: list[int]) -> None:
    array = to_numpy(_proto(dtype, [len(values)], int_val=values))
    assert array.dtype == np.dtype(getattr(ml_dtypes, dtype))
    assert array.astype(np.int64).tolist() == values


def test_narrow_floats_in_tensor_content_and_float8_val() -> None:
    content = to_numpy(_proto("float8_e4m3fn", [2], tensor_content=b"<\xc0"))
    assert content.astype(np.float32).tolist() == [1.5, -2.0]
    packed = to_numpy(_proto("float4_e2m1fn", [2], tensor_content=b"\x03\x0c"))
    assert packed.astype(np.float32).tolist() == [1.5, -2.0]
    splat = to_numpy(_proto("float8_e4m3fn", [3], float8_val=b"<"))
    assert splat.astype(np.float32).tolist() == [1.5, 1.5, 1.5]


def test_splat_and_empty_fill() -> None:
    assert to_numpy(_proto("float32", [2, 2], float_val=[7.0])).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert to_numpy(_proto("int32", [3])).tolist() == [0, 0, 0]
    assert to_numpy(_proto("string", [2], string_val=[b"a"])).tolist() == [b"a", b"a"]
