from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return ROOT / "samples" / "large"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return Path(__file__).resolve().parent / "reference"
