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


#: Debian's chromium (``apt-get install chromium``); Playwright's own browser download
#: is never used. Flags: headless, and no background connections (closed networks).
CHROMIUM = os.environ.get("EDGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium driven by Playwright; skips (or, with EDGE_REQUIRE_BROWSER=1,
    fails) with the reason when either is missing.

    Module scope: Playwright's sync API keeps an event loop running in this thread while
    it is open, so it must be closed before other modules' tests call asyncio.run().
    """
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright for Python not installed (pip install -e '.[dev]')"
    if reason is None and not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EDGE_CHROMIUM)"
    if reason is not None:
        if os.environ.get("EDGE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
