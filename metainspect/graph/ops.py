"""The ops stock TensorFlow registers (``data/tf_op_registry.json``), loaded once on first use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class OpRegistry:
    """Every op name registered in one TensorFlow release."""

    tf_version: str
    ops: frozenset[str]

    def __contains__(self, op: object) -> bool:
        return op in self.ops


@lru_cache(maxsize=1)
def stock_registry() -> OpRegistry:
    """The registry of the TensorFlow release ``tools/dump_op_registry.py`` was run with."""
    text = resources.files("metainspect").joinpath("data/tf_op_registry.json").read_text()
    data = json.loads(text)
    return OpRegistry(data["tf_version"], frozenset(data["ops"]))
