"""A private dbus-daemon (Debian package ``dbus``) with a permissive policy, for tests and sims.

bleak's BlueZ backend talks to ``org.bluez`` on the *system* bus, which dbus-fast
finds through ``DBUS_SYSTEM_BUS_ADDRESS``; pointing that variable at this bus
makes bleak talk to :class:`~edge.sim.bluez.server.VirtualBlueZ` instead of
bluetoothd, with no radio and no root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
"""


def dbus_daemon_path() -> str | None:
    return shutil.which("dbus-daemon")


class PrivateBus:
    """``with PrivateBus() as bus: bus.address`` starts and always stops a dbus-daemon."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self) -> str:
        exe = dbus_daemon_path()
        if exe is None:
            raise RuntimeError("dbus-daemon not found: install the Debian package 'dbus'")
        self._dir = tempfile.TemporaryDirectory(prefix="edge-dbus-")
        sock = Path(self._dir.name) / "bus"
        cfg = Path(self._dir.name) / "bus.conf"
        cfg.write_text(CONFIG.format(socket=sock))
        self._proc = subprocess.Popen([exe, f"--config-file={cfg}", "--nofork", "--nopidfile",
                                       "--print-address=1"], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise RuntimeError("dbus-daemon did not start")
        self.address = line
        return line

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrivateBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def system_bus_env(address: str):  # type: ignore[no-untyped-def]
    """Point ``DBUS_SYSTEM_BUS_ADDRESS`` (what bleak's BlueZ backend uses) at ``address``."""
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old
