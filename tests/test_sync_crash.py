"""Killed with SIGKILL at random points, the gateway still delivers every event exactly once.

Default run: 12 kills. Nightly (``EDGE_NIGHTLY=1``): 120 kills and more events.
"""

from __future__ import annotations

import os

from edge.sync.crashtest import kill_test

NIGHTLY = os.environ.get("EDGE_NIGHTLY") == "1"


def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path):
    kills, events = (120, 400) if NIGHTLY else (12, 120)
    report = kill_test(tmp_path, kills=kills, n_events=events, seed=7,
                       max_delay_s=1.0)
    print(report.to_dict())
    assert report.kills == kills
    assert (report.lost, report.duplicated, report.stale_revision) == (0, 0, 0), report
