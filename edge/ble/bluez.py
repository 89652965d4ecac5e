"""Direct BlueZ D-Bus calls bleak has no public API for: forget a device (stale GATT
cache, phantom connection) and power-cycle an adapter (stuck InProgress / NotReady)."""

from __future__ import annotations

import asyncio
import logging

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

log = logging.getLogger(__name__)


def device_path(adapter: str, address: str) -> str:
    return f"/org/bluez/{adapter}/dev_{address.upper().replace(':', '_')}"


async def _call(msg: Message, timeout: float = 5.0) -> Message | None:
    bus = MessageBus(bus_type=BusType.SYSTEM)
    try:
        await asyncio.wait_for(bus.connect(), timeout)
        return await asyncio.wait_for(bus.call(msg), timeout)
    finally:
        bus.disconnect()


async def remove_device(adapter: str, address: str) -> bool:
    """``Adapter1.RemoveDevice``: drops BlueZ's cached services and any stale connection
    (a bond is removed too: only for unbonded devices). True if BlueZ did it."""
    reply = await _call(Message(destination="org.bluez", path=f"/org/bluez/{adapter}",
                                interface="org.bluez.Adapter1", member="RemoveDevice",
                                signature="o", body=[device_path(adapter, address)]))
    return reply is not None and reply.message_type != MessageType.ERROR


async def set_powered(adapter: str, powered: bool) -> bool:
    reply = await _call(Message(destination="org.bluez", path=f"/org/bluez/{adapter}",
                                interface="org.freedesktop.DBus.Properties", member="Set",
                                signature="ssv",
                                body=["org.bluez.Adapter1", "Powered", Variant("b", powered)]))
    return reply is not None and reply.message_type != MessageType.ERROR


async def reset_adapter(adapter: str, pause: float = 0.5) -> bool:
    """Power-cycle ``adapter`` (clears a discovery stuck in InProgress, drops every link)."""
    ok = await set_powered(adapter, False)
    await asyncio.sleep(pause)
    return await set_powered(adapter, True) and ok
