"""Fixtures shared by every test folder; plain helpers live in the ``helpers`` package."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import Cli, invoke
from helpers.paths import REAL_MODELS, REAL_MODELS_2


@pytest.fixture
def real_models() -> Path:
    if not REAL_MODELS.is_dir():
        pytest.skip("../shared/real_models not present (third-party models live beside the repo, not in it)")
    return REAL_MODELS


@pytest.fixture
def real_models_2() -> Path:
    if not REAL_MODELS_2.is_dir():
        pytest.skip("../shared/real_models_2 not present (third-party models live beside the repo, not in it)")
    return REAL_MODELS_2


@pytest.fixture
def cli() -> Cli:
    """``cli("info", path)``: the command line in this process, through the console script's error handling."""
    return invoke
