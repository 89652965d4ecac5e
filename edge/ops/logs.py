"""Log formats: plain text for a terminal, JSON lines, or journald priorities.

Never log patient data: no sample values, vital values, names or patient
identifiers. Log what happened to the machine (a link dropped, a frame was
corrupt, a store failed) and counts. ``tests/test_privacy.py`` scans the logs
of a full demo run at debug level for patient data.
"""

from __future__ import annotations

import json
import logging
import time

#: syslog priorities journald reads from a "<N>" line prefix (sd-daemon(3))
_JOURNAL_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4,
                     logging.INFO: 6, logging.DEBUG: 7}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _JOURNAL_PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{record.name}: {record.getMessage()}"


def setup_logging(level: int, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "journal":
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # HTTP client libraries log full request URLs at INFO/DEBUG; FHIR search URLs can
    # carry identifiers, so they only ever speak about failures.
    for name in ("httpx", "httpcore", "hpack", "urllib3"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
