"""Shared fixtures. Real recordings are found through one setting: EDGE_DATA_DIR.

Default: ``../shared/data`` beside the checkout. Where it is absent (a user's
fresh clone) data-driven tests skip with a visible reason; with
``EDGE_REQUIRE_DATA=1`` (set by ``.ci/run``) they fail instead, so CI never
skips them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    from edge.trace.recordings import data_dir

    return data_dir().resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not (root / "README.md").exists():
        reason = f"real recordings not found at {root} (set EDGE_DATA_DIR)"
        if os.environ.get("EDGE_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return root
