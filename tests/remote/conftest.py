"""Fixtures of the remote tests: the loopback HTTP server over the samples, big generated checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers.paths import SAMPLES
from helpers.servers import HttpFiles

pytest.importorskip("fsspec", reason="the remote extra is not installed: pip install -e '.[remote]'")
pytest.importorskip("aiohttp", reason="the remote extra is not installed: pip install -e '.[remote]'")


@pytest.fixture
def samples_http() -> Iterator[HttpFiles]:
    """The shipped samples served over HTTP on 127.0.0.1 (Range support, counted)."""
    with HttpFiles(SAMPLES) as server:
        yield server


@pytest.fixture(scope="session")
def big_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``many/model.ckpt``: 20,000 small tensors; ``one/model.ckpt``: a 1.3 MB data file holding a
    32 KiB tensor ``target`` among others. Written by metainspect's bundle writer (TensorFlow's layout)."""
    from metainspect.formats.bundle_writer import BundleWriter

    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    with BundleWriter(root / "many" / "model.ckpt") as writer:
        for i in range(20_000):
            writer.add(f"layer_{i // 100:03d}/unit_{i % 100:02d}/kernel", rng.standard_normal(4).astype(np.float32))
    with BundleWriter(root / "one" / "model.ckpt") as writer:
        for i in range(19):
            writer.add(f"block_{i:02d}/weights", rng.standard_normal(16_384).astype(np.float32))  # 64 KiB each
        writer.add("target", rng.standard_normal(8192).astype(np.float32))  # 32 KiB
        for i in range(19, 20):
            writer.add(f"block_{i:02d}/weights", rng.standard_normal(16_384).astype(np.float32))
    return root
