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


class StoreError(EdgeError):
    """The outbox could not store or read an event."""


class SyncError(EdgeError):
    """Events could not be delivered to the clinical backend."""


class PipelineError(EdgeError):
    """The processing pipeline was used wrongly or stopped on a failure."""
