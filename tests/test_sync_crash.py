"""Killed with SIGKILL at random points, the gateway still delivers every event exactly once.

Against both test servers (tests/sync_helpers.py). Default run: 12 kills. Nightly
(``EDGE_NIGHTLY=1``): 120 kills and more events.
"""

from __future__ import annotations

import os

import pytest

from edge.sync.crashtest import kill_test
from tests.sync_helpers import FHIR_BACKENDS, require_backend

NIGHTLY = os.environ.get("EDGE_NIGHTLY") == "1"


@pytest.mark.parametrize("backend_kind", FHIR_BACKENDS)
def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path, backend_kind):
    require_backend(backend_kind)
    kills, events = (120, 400) if NIGHTLY else (12, 120)
    report = kill_test(tmp_path, kills=kills, n_events=events, seed=7,
                       max_delay_s=1.0, backend_kind=backend_kind)
    print(report.to_dict())
    assert report.kills == kills
    assert (report.lost, report.duplicated, report.stale_revision) == (0, 0, 0), report
