"""For the diff tests: checkpoints written with metainspect's own bundle writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from metainspect.formats.bundle_writer import BundleWriter


def write_checkpoint(prefix: Path, tensors: dict[str, Any], dtypes: dict[str, str] | None = None) -> str:
    """A V2 checkpoint holding ``tensors`` (arrays; a list of (full_shape, extents, array) for
    a partitioned tensor); returns the prefix."""
    with BundleWriter(str(prefix)) as writer:
        for name, value in tensors.items():
            if isinstance(value, list):
                for full_shape, extents, part in value:
                    writer.add_slice(name, full_shape, extents, part)
            else:
                writer.add(name, np.asarray(value), dtype=(dtypes or {}).get(name))
    return str(prefix)
