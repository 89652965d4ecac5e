"""Shared fixtures: where the recorded test data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of recorded data: ``$EDGE_DATA_DIR``, else ``../shared/data`` of the repo.

    Skips the test (with the path in the reason) when the folder is absent.
    """
    env = os.environ.get("EDGE_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"test data folder not found: {path} (set EDGE_DATA_DIR)")
    return path
