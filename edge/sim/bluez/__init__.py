"""A virtual BlueZ on a private dbus-daemon, and virtual wearables, for tests and firmware work."""

from edge.sim.bluez.bus import PrivateBus, dbus_daemon_path, system_bus_env
from edge.sim.bluez.server import Characteristic, Peripheral, Service, VirtualBlueZ

__all__ = ["Characteristic", "Peripheral", "PrivateBus", "Service", "VirtualBlueZ",
           "dbus_daemon_path", "system_bus_env"]
