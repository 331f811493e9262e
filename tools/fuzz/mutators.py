"""Generic mutation primitives: integers, byte strings, protobuf wire data and protobuf messages.

Everything takes a ``random.Random`` and nothing else random, so an input is reproduced from
its seed alone. The protobuf mutators come in two kinds: :func:`mutate_message` edits a parsed
message through its descriptor (the result always serializes: hostile values, valid encoding),
and :func:`mutate_wire` edits the serialized bytes field by field (lengths that lie, wire types
that do not match, strings that are not UTF-8: what a parser must refuse).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from metainspect.formats.wire import WireError, encode_varint, iter_fields

#: values at the edges of every integer type a decoder meets, and a few sizes that multiply badly
INTERESTING_INTS = (
    0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 127, 128, 255, 256, 1000, 4096, 65535, 65536,
    2**20, 2**24, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
    -1, -2, -128, -129, -32768, -(2**31), -(2**31) - 1, -(2**63),
)
#: byte strings that exercise name and path handling
INTERESTING_BYTES = (
    b"", b"\x00", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc", b"a\x00b", b"..", b"/", b"a/b", b"^x",
    b"x:0", b"x:99999999999", b":", b"\n", b"\t\r", b"\\", b"%s%n", b"{", b"}", "é".encode(), b"\xe2\x82",
    b"x" * 300, b"save/", b"_CHECKPOINTABLE_OBJECT_GRAPH", b".ATTRIBUTES/VARIABLE_VALUE",
)
INTERESTING_FLOATS = (0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e38, 3.5e38, 1e308, 5e-324)

_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
}


def pick_weighted(rng: random.Random, choices: list[tuple[int, Callable[..., Any]]]) -> Callable[..., Any]:
    """One callable of ``[(weight, callable)]``."""
    total = sum(w for w, _ in choices)
    point = rng.randrange(total)
    for weight, item in choices:
        if point < weight:
            return item
        point -= weight
    raise AssertionError("weights exhausted")


def mutate_int(rng: random.Random, value: int, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    """A neighbour, an edge value, a power of two or a random value, within ``[low, high]``."""
    roll = rng.random()
    if roll < 0.45:
        out = rng.choice(INTERESTING_INTS)
    elif roll < 0.65:
        out = value + rng.choice((-1, 1, -2, 2, 8, -8, 1000))
    elif roll < 0.8:
        out = value * rng.choice((2, 10, 1000, 2**20)) or 1
    elif roll < 0.9:
        out = -value
    else:
        out = rng.getrandbits(rng.choice((8, 16, 32, 63)))
    return min(max(out, low), high)


def mutate_bytes(rng: random.Random, data: bytes, donors: tuple[bytes, ...] = ()) -> bytes:
    """Havoc on raw bytes: flips, edge bytes, inserts, deletes, duplicates, truncation, splicing."""
    buf = bytearray(data)
    op = rng.randrange(9)
    if not buf and op < 7:
        op = 7
    if op == 0:
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        buf[rng.randrange(len(buf))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    elif op == 2:
        i = rng.randrange(len(buf))
        del buf[i : i + rng.choice((1, 2, 4, 8, rng.randrange(1, len(buf) + 1)))]
    elif op == 3:
        i = rng.randrange(len(buf))
        j = min(len(buf), i + rng.randrange(1, 64))
        buf[i:i] = buf[i:j] * rng.choice((1, 2, 16))
    elif op == 4:
        del buf[rng.randrange(len(buf)) :]
    elif op == 5:
        i = rng.randrange(len(buf))
        width = rng.choice((1, 2, 4, 8))
        buf[i : i + width] = rng.choice(INTERESTING_INTS).to_bytes(16, "little", signed=True)[:width]
    elif op == 6:
        i = rng.randrange(len(buf))
        buf[i : i + 1] = encode_varint(rng.choice(INTERESTING_INTS) % 2**64)
    elif op == 7:
        i = rng.randrange(len(buf) + 1)
        buf[i:i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randbytes(rng.randrange(1, 32))
    else:
        donor = rng.choice(donors) if donors else bytes(buf)
        if donor:
            i, j = sorted((rng.randrange(len(donor) + 1), rng.randrange(len(donor) + 1)))
            k = rng.randrange(len(buf) + 1)
            buf[k:k] = donor[i:j]
    return bytes(buf)


def mutate_string(rng: random.Random, value: str) -> str:
    """A text field's new value: an interesting string, a prefix, a doubling, or a neighbour."""
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(INTERESTING_BYTES).decode("utf-8", "replace")
    if roll < 0.65:
        return value[: rng.randrange(len(value) + 1)]
    if roll < 0.8:
        return value + rng.choice(("/", ":0", ":1", "_1", "^", "/.ATTRIBUTES/VARIABLE_VALUE", value))
    return "".join(rng.choice("ab/:_^.0") for _ in range(rng.randrange(1, 12)))


# -- protobuf wire data ---------------------------------------------------------------------------

#: one field of a message: (number, wire type, int value or raw bytes)
Field = tuple[int, int, int | bytes]


def parse_wire(data: bytes) -> list[Field] | None:
    """The top-level fields of ``data``, or None when it does not read as a message."""
    try:
        return [(number, wire_type, value if isinstance(value, int) else bytes(value))
                for number, wire_type, value in iter_fields(data)]
    except WireError:
        return None


def serialize_wire(fields: list[Field]) -> bytes:
    """Encode fields back (fixed fields keep their width; int values are masked to it)."""
    out = bytearray()
    for number, wire_type, value in fields:
        out += encode_varint(number << 3 | wire_type)
        if wire_type == 0:
            out += encode_varint(int(value) % 2**64)
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            out += (int(value) % 2 ** (8 * width)).to_bytes(width, "little")
        else:
            assert isinstance(value, bytes)
            out += encode_varint(len(value)) + value
    return bytes(out)


def mutate_wire(rng: random.Random, data: bytes, depth: int = 0) -> bytes:
    """Edit one field somewhere in a serialized message (descending into nested messages).

    The edits keep the rest of the message intact, so the damage sits at a chosen depth:
    a length that claims more (or fewer) bytes than follow, a changed wire type, a value
    replaced by an edge integer, a payload that is not UTF-8, a field repeated or dropped.
    """
    fields = parse_wire(data)
    if not fields:
        return mutate_bytes(rng, data)
    i = rng.randrange(len(fields))
    number, wire_type, value = fields[i]
    if wire_type == 2 and isinstance(value, bytes) and depth < 12 and rng.random() < 0.6 and parse_wire(value):
        fields[i] = (number, 2, mutate_wire(rng, value, depth + 1))
        return serialize_wire(fields)
    op = rng.randrange(8)
    if op == 0:  # a length that lies: the field claims more or fewer bytes than it has
        head = serialize_wire(fields[:i])
        tail = serialize_wire(fields[i + 1 :])
        body = value if isinstance(value, bytes) else encode_varint(int(value) % 2**64)
        claim = mutate_int(rng, len(body), 0, 2**64 - 1)
        return head + encode_varint(number << 3 | 2) + encode_varint(claim) + body + tail
    if op == 1:  # another wire type for the same field number
        new_type = rng.choice([t for t in (0, 1, 2, 5) if t != wire_type])
        fields[i] = (number, new_type, b"\x01\x02" if new_type == 2 else 1)
    elif op == 2:
        if isinstance(value, int):
            fields[i] = (number, wire_type, mutate_int(rng, value, -(2**63), 2**64 - 1))
        else:
            fields[i] = (number, 2, rng.choice(INTERESTING_BYTES) + value[: rng.randrange(len(value) + 1)])
    elif op == 3:  # not UTF-8 inside a (text) field
        if isinstance(value, bytes):
            k = rng.randrange(len(value) + 1)
            fields[i] = (number, 2, value[:k] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80")) + value[k:])
    elif op == 4:
        fields.insert(i, fields[i])
    elif op == 5:
        del fields[i]
    elif op == 6:  # an unknown field number, or field number 0 / the largest
        fields.insert(i, (rng.choice((0, 19000, 2**29 - 1, number + 100)), 0, rng.choice(INTERESTING_INTS) % 2**64))
    else:
        fields[i] = (number, wire_type, mutate_bytes(rng, value) if isinstance(value, bytes) else value ^ 1)
    return serialize_wire(fields)


# -- protobuf messages through their descriptors -----------------------------------------------------

#: a field descriptor, of protobuf's Python or upb implementation (their stubs differ)
Field_ = Any


def mutate_message(rng: random.Random, message: Message, *, descend: float = 0.7) -> None:
    """Change one field of ``message`` or of a message below it (in place).

    Walks down from the root, at each level picking a set field; stops and edits with
    probability ``1 - descend`` or when it reaches a scalar. Repeated fields gain copies, lose
    elements or are reordered; maps gain and lose keys; scalars take edge values.
    """
    for _ in range(32):
        present = message.ListFields()
        if not present or rng.random() < 0.15:
            if _set_new_field(rng, message):
                return
            if not present:
                return
        descriptor, value = rng.choice(present)
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            if _mutate_map(rng, descriptor, value, descend):
                return
            continue
        if descriptor.is_repeated:
            if rng.random() < 0.3 or not len(value):
                _mutate_repeated(rng, descriptor, value)
                return
            index = rng.randrange(len(value))
            if descriptor.message_type is not None:
                message = value[index]
                if rng.random() < descend:
                    continue
                mutate_message(rng, message, descend=0.0)
                return
            value[index] = _scalar(rng, descriptor, value[index])
            return
        if descriptor.message_type is not None:
            if rng.random() < 0.08:
                message.ClearField(descriptor.name)
                return
            message = value
            continue
        setattr(message, descriptor.name, _scalar(rng, descriptor, value))
        return


def _set_new_field(rng: random.Random, message: Message) -> bool:
    """Set a field the message does not have yet; False when there is none to set."""
    fields: list[Field_] = [f for f in message.DESCRIPTOR.fields if f.is_repeated
              or (f.message_type is not None and not message.HasField(f.name))
              or (f.message_type is None and not getattr(message, f.name))]
    if not fields:
        return False
    descriptor = rng.choice(fields)
    if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
        container = getattr(message, descriptor.name)
        key_field = descriptor.message_type.fields_by_name["key"]
        key = _scalar(rng, key_field, key_field.default_value)
        value_field = descriptor.message_type.fields_by_name["value"]
        if value_field.message_type is not None:
            mutate_message(rng, container[key], descend=0.5)
        else:
            container[key] = _scalar(rng, value_field, value_field.default_value)
        return True
    if descriptor.is_repeated:
        container = getattr(message, descriptor.name)
        if descriptor.message_type is not None:
            mutate_message(rng, container.add(), descend=0.5)
        else:
            container.append(_scalar(rng, descriptor, _zero(descriptor)))
        return True
    if descriptor.message_type is not None:
        mutate_message(rng, getattr(message, descriptor.name), descend=0.5)
        getattr(message, descriptor.name).SetInParent()
        return True
    setattr(message, descriptor.name, _scalar(rng, descriptor, _zero(descriptor)))
    return True


def _mutate_map(rng: random.Random, descriptor: Field_, container: Any, descend: float) -> bool:
    keys = list(container)
    value_field = descriptor.message_type.fields_by_name["value"]
    roll = rng.random()
    if not keys or roll < 0.15:
        key_field = descriptor.message_type.fields_by_name["key"]
        key = _scalar(rng, key_field, key_field.default_value)
        if value_field.message_type is not None:
            if keys:
                container[key].CopyFrom(container[rng.choice(keys)])
            mutate_message(rng, container[key], descend=descend)
        else:
            container[key] = _scalar(rng, value_field, value_field.default_value)
        return True
    key = rng.choice(keys)
    if roll < 0.25:
        del container[key]
        return True
    if value_field.message_type is not None:
        mutate_message(rng, container[key], descend=descend)
    else:
        container[key] = _scalar(rng, value_field, container[key])
    return True


def _mutate_repeated(rng: random.Random, descriptor: Field_, container: Any) -> None:
    n = len(container)
    roll = rng.random()
    if n and roll < 0.3:
        del container[rng.randrange(n)]
    elif n and roll < 0.6:
        source = container[rng.randrange(n)]
        for _ in range(rng.choice((1, 1, 2, 40))):
            if descriptor.message_type is not None:
                container.add().CopyFrom(source)
            else:
                container.append(source)
    elif n > 1 and roll < 0.75:
        items = list(container)
        rng.shuffle(items)
        if descriptor.message_type is not None:
            copies = [type(item)() for item in items]
            for copy, item in zip(copies, items):
                copy.CopyFrom(item)
            del container[:]
            for copy in copies:
                container.add().CopyFrom(copy)
        else:
            container[:] = items
    elif n and roll < 0.85:
        del container[rng.randrange(n) :]
    elif descriptor.message_type is not None:
        mutate_message(rng, container.add(), descend=0.5)
    else:
        container.append(_scalar(rng, descriptor, container[0] if n else _zero(descriptor)))


def _zero(descriptor: Field_) -> Any:
    """The zero value of a scalar field's type."""
    if descriptor.type == FieldDescriptor.TYPE_BYTES:
        return b""
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        return ""
    if descriptor.type == FieldDescriptor.TYPE_BOOL:
        return False
    if descriptor.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 0.0
    return 0


def _scalar(rng: random.Random, descriptor: Field_, value: Any) -> Any:
    """A new value for one scalar field, within what its type can hold."""
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_BOOL:
        return not value
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice(INTERESTING_FLOATS) if rng.random() < 0.7 else float(value) * rng.choice((-1, 2, 1e10))
    if kind == FieldDescriptor.TYPE_STRING:
        return mutate_string(rng, value)
    if kind == FieldDescriptor.TYPE_BYTES:
        if rng.random() < 0.4:
            return rng.choice(INTERESTING_BYTES)
        return mutate_bytes(rng, value)
    low, high = _RANGES.get(kind, (-(2**63), 2**63 - 1))
    if kind == FieldDescriptor.TYPE_ENUM and descriptor.enum_type.is_closed:
        return rng.choice([v.number for v in descriptor.enum_type.values])
    return mutate_int(rng, int(value), low, high)
