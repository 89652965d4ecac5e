"""The sd_notify protocol (READY, WATCHDOG, STATUS, STOPPING) over ``$NOTIFY_SOCKET``.

systemd's protocol is one datagram of newline-separated ``KEY=VALUE`` lines
sent to the AF_UNIX socket named by ``NOTIFY_SOCKET`` (a leading ``@`` means
the abstract namespace). See sd_notify(3) and systemd.service(5)
(``Type=notify``, ``WatchdogSec=``). Twenty lines of code: not worth a
dependency (the ``sdnotify`` package on PyPI has been unmaintained since 2017).

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._sock: socket.socket | None = None
        self._failed = False
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def _send(self, text: str) -> bool:
        if self._sock is None or not self.address:
            return False
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._sock.sendto(text.encode(), addr)
            return True
        except OSError as exc:
            if not self._failed:  # one line, not one per watchdog ping
                log.error("cannot notify systemd at NOTIFY_SOCKET: %s", exc.strerror)
                self._failed = True
            return False

    def ready(self, status: str = "") -> bool:
        return self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self._send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self._send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s() -> float | None:
    """Half of ``$WATCHDOG_USEC`` (systemd's advice), or None when no watchdog is set.

    ``WATCHDOG_PID``, when set, must be this process: otherwise the watchdog
    is meant for another process and we do not ping.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
