"""Clinical sync: FHIR R4 mapping (pure), sync policy, HTTP transport, a test receiver.

* :mod:`edge.sync.fhir`: Episode / VitalSample -> validated ``fhir.resources`` models
  -> transaction Bundle dicts; no I/O.
* :mod:`edge.sync.engine`: :class:`SyncEngine` (batches, backoff with jitter,
  Retry-After, circuit breaker, urgent first, status).
* :mod:`edge.sync.codes`: the SNOMED CT / MDC codes of every episode kind (pure data).
* :mod:`edge.sync.transport`: :class:`Uploader` (httpx, TLS, gzip negotiated with a
  415 fallback) and :mod:`edge.sync.auth` (bearer token, SMART Backend Services).
* :mod:`edge.sync.check`: ``edge sync check``, a synthetic test bundle against a backend.
* :mod:`edge.sync.testserver`: a FHIR test receiver with fault injection (a test
  fixture and reference receiver, not for production), and the starter of the
  Medplum FHIR router backend under Node (``tests/fhir_medplum``).
"""

from edge.sync.engine import SyncEngine, SyncReport, SyncStatus, sync_status
from edge.sync.transport import Uploader

__all__ = ["SyncEngine", "SyncReport", "SyncStatus", "Uploader", "sync_status"]
