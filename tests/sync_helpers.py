"""The FHIR servers the sync tests run against, and how to skip one that cannot run."""

from __future__ import annotations

import os

import pytest

#: the FHIR servers the sync tests run against: this project's fault-injecting test server
#: and Medplum's FHIR router (a FHIR implementation nobody here wrote), under Node
FHIR_BACKENDS = ("own", "medplum")


def require_backend(kind: str) -> None:
    """Skip (or, with ``EDGE_REQUIRE_NODE=1`` as .ci/run sets, fail) when it cannot run."""
    if kind != "medplum":
        return
    from edge.sync.testserver import medplum_unavailable

    reason = medplum_unavailable()
    if reason:
        if os.environ.get("EDGE_REQUIRE_NODE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
