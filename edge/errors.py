"""One exception hierarchy for the whole package.

Callers catch :class:`EdgeError` for "anything vitals-edge refused or could not
do"; each subclass names a failure a caller can act on. Messages are one line,
say what was expected, and never contain patient data (sample values, names).
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error raised on purpose by vitals-edge."""


class ConfigError(EdgeError):
    """A configuration file or value is missing, malformed or out of range."""


class SourceError(EdgeError):
    """A sensor source could not be opened or failed while streaming."""


class LinkLostError(SourceError):
    """The link to a device dropped; the source may reconnect."""


class DecodeError(EdgeError):
    """Bytes from a device or a file could not be decoded."""


class TraceError(EdgeError):
    """A trace file is not a trace, has an unsupported version, or is corrupt."""


class RecordFormatError(EdgeError):
    """A recording (WFDB, CSV) cannot be read as a signal."""


class ModelError(EdgeError):
    """A model file is missing, does not match its manifest, or cannot run."""


class ModelIntegrityError(ModelError):
    """A model file's sha256 or size differs from its manifest: reinstall the model."""


class ModelSpecError(ModelError):
    """A model's input spec does not fit the stream or this runtime: pick another model."""


class BackendUnavailableError(ModelError):
    """The runtime a model file needs (onnxruntime, LiteRT) is not installed here."""


class StoreError(EdgeError):
    """The outbox could not store or read an event."""


class OutboxFullError(StoreError):
    """The outbox is full (its size limit, or the disk): nothing more can be stored.

    Alarms are never pruned to make room, so this can still happen; the pipeline keeps
    the episode in memory and retries, detection goes on.
    """


class SyncError(EdgeError):
    """Events could not be delivered to the clinical backend."""


class TransientSyncError(SyncError):
    """The backend could not take the upload now (5xx, 429, timeout, dropped connection).

    Retry later with backoff; ``retry_after`` is the delay (seconds) the server asked
    for with ``Retry-After``, or ``None``.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(SyncError):
    """The backend or its token endpoint refused our credentials (401/403 after a refresh).

    A configuration problem: retrying the same credentials will not help.
    """


class BundleRejectedError(SyncError):
    """The backend refused the content of a bundle (400, 412, 422): do not resend it as is."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PipelineError(EdgeError):
    """The processing pipeline was used wrongly or stopped on a failure."""


class MissingExtraError(EdgeError):
    """A command needs an optional part of the package (an extra) that is not installed.

    The gateway install (``pip install vitals-edge``) leaves out what only
    developers use (WFDB records, plots, training); the message names the extra.
    """
