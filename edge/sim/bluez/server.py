# ruff: noqa: F722, F821, N802 - dbus-fast reads D-Bus signatures from annotations
"""A virtual BlueZ: the part of the ``org.bluez`` D-Bus API that bleak's BlueZ backend uses.

Exported on a (private) bus under the well-known name ``org.bluez``:

* ``/`` ObjectManager: dbus-fast answers ``GetManagedObjects`` and emits
  ``InterfacesAdded`` / ``InterfacesRemoved`` as objects are exported/unexported;
* ``/org/bluez/hciN`` Adapter1: ``StartDiscovery``, ``StopDiscovery``,
  ``SetDiscoveryFilter`` (UUIDs filter honoured), ``RemoveDevice``, properties
  ``Address``, ``Powered``, ``Discovering``, ``Roles``...;
* ``.../dev_XX_XX_XX_XX_XX_XX`` Device1 (exported when discovery sees it):
  ``Connect``, ``Disconnect``, ``Pair``; ``Connected``, ``ServicesResolved``,
  ``RSSI`` (updated while discovering), ``UUIDs``, ``Name``, ``Alias``,
  ``Address``, ``Paired``, ``Bonded``, ``Trusted`` (writable);
* ``.../serviceHHHH`` GattService1 and ``.../serviceHHHH/charHHHH``
  GattCharacteristic1 (exported on connect, as bluetoothd does after service
  discovery, then ``ServicesResolved`` = true): ``ReadValue``, ``WriteValue``,
  ``StartNotify`` / ``StopNotify``, ``Value`` sent as ``PropertiesChanged``.

Peripherals are :class:`Peripheral` objects; their "firmware" calls
:meth:`Peripheral.notify`. Faults: :meth:`Peripheral.drop_link` (the link is
lost: supervision timeout), ``refuse_connects`` (the next N ``Connect`` calls
fail with ``org.bluez.Error.Failed: le-connection-abort-by-local``, as BlueZ
6.62+ reports it), ``mute`` (connected, but notifications stop: a silent link),
``out_of_range`` (not advertising; ``Connect`` fails with ``Page Timeout``).
Pairing: ``Pair`` on a ``Peripheral(passkey=N)`` calls the registered agent's
``RequestPasskey`` over the bus (the agent's bus name is noted from the
RegisterAgent message by a low-level message handler) and checks the answer.
What it does not reproduce is listed in docs/ble.md.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ERR_FAILED = "org.bluez.Error.Failed"
ERR_IN_PROGRESS = "org.bluez.Error.InProgress"
ERR_NOT_READY = "org.bluez.Error.NotReady"
ERR_DOES_NOT_EXIST = "org.bluez.Error.DoesNotExist"
ERR_NOT_CONNECTED = "org.bluez.Error.NotConnected"
ERR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"


@dataclass
class Characteristic:
    uuid: str
    flags: list[str]
    value: bytes = b""
    on_write: Callable[[bytes], None] | None = None
    on_read: Callable[[], bytes] | None = None


@dataclass
class Service:
    uuid: str
    characteristics: list[Characteristic]


@dataclass
class PeripheralStats:
    connects: int = 0
    refused: int = 0
    disconnects: int = 0
    link_drops: int = 0
    notifications: int = 0
    notifications_unsent: int = 0


@dataclass
class Peripheral:
    """A virtual BLE device: advertising data, a GATT table, fault switches."""

    address: str
    name: str
    services: list[Service]
    rssi: int = -55
    advertised: list[str] = field(default_factory=list)  # service UUIDs in advertising
    mtu: int = 23
    refuse_connects: int = 0
    refuse_error: str = "le-connection-abort-by-local"
    mute: bool = False
    out_of_range: bool = False
    requires_pairing: bool = False
    #: passkey entry (MITM): the 6-digit passkey the device "shows"; pairing asks the
    #: registered agent (RequestPasskey) and compares
    passkey: int | None = None
    stats: PeripheralStats = field(default_factory=PeripheralStats)
    on_subscribe: Callable[[str], None] | None = None  # char uuid: notifications enabled
    on_connection: Callable[[bool], None] | None = None
    _device: "Device1 | None" = field(default=None, repr=False)

    @property
    def connected(self) -> bool:
        return self._device is not None and self._device.connected

    def notifying(self, char_uuid: str) -> bool:
        d = self._device
        if d is None or not d.connected:
            return False
        ch = d.chars.get(char_uuid.lower())
        return ch is not None and ch.notifying

    def notify(self, char_uuid: str, value: bytes) -> bool:
        """Send a notification; False if it could not go out (no link, not enabled, muted)."""
        d = self._device
        ch = None if d is None or not d.connected else d.chars.get(char_uuid.lower())
        if ch is None or not ch.notifying or self.mute:
            self.stats.notifications_unsent += 1
            return False
        ch.set_value(value)
        self.stats.notifications += 1
        return True

    def set_value(self, char_uuid: str, value: bytes) -> None:
        for s in self.services:
            for c in s.characteristics:
                if c.uuid.lower() == char_uuid.lower():
                    c.value = value

    def drop_link(self) -> bool:
        """The radio link is lost (supervision timeout); False if it was not connected."""
        if not self.connected:
            return False
        assert self._device is not None
        self.stats.link_drops += 1
        self._device.link_down()
        return True


def _path_part(address: str) -> str:
    return "dev_" + address.upper().replace(":", "_")


class GattCharacteristic1(ServiceInterface):
    def __init__(self, device: "Device1", path: str, service_path: str, ch: Characteristic):
        super().__init__("org.bluez.GattCharacteristic1")
        self.device = device
        self.path = path
        self.service_path = service_path
        self.ch = ch
        self.notifying = False

    def set_value(self, value: bytes) -> None:
        self.ch.value = bytes(value)
        self.emit_properties_changed({"Value": bytes(value)})

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":  # noqa: N802,F821
        self.device.check_connected()
        if self.ch.on_read is not None:
            self.ch.value = self.ch.on_read()
        return bytes(self.ch.value)

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}") -> None:  # noqa: N802,F821
        self.device.check_connected()
        if self.ch.on_write is not None:
            self.ch.on_write(bytes(value))
        else:
            self.ch.value = bytes(value)

    @method()
    def StartNotify(self) -> None:  # noqa: N802
        self.device.check_connected()
        if not ({"notify", "indicate"} & set(self.ch.flags)):
            raise DBusError(ERR_NOT_PERMITTED, "Operation is not supported")
        if self.notifying:
            return  # BlueZ answers success to a second client too
        self.notifying = True
        self.emit_properties_changed({"Notifying": True})
        cb = self.device.peripheral.on_subscribe
        if cb is not None:
            asyncio.get_running_loop().call_soon(cb, self.ch.uuid.lower())

    @method()
    def StopNotify(self) -> None:  # noqa: N802
        if self.notifying:
            self.notifying = False
            self.emit_properties_changed({"Notifying": False})

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # noqa: N802,F821
        return self.ch.uuid.lower()

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":  # noqa: N802,F821
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":  # noqa: N802,F821
        return bytes(self.ch.value)

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> "b":  # noqa: N802,F821
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":  # noqa: N802,F821
        return list(self.ch.flags)

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> "q":  # noqa: N802,F821
        return self.device.peripheral.mtu


class GattService1(ServiceInterface):
    def __init__(self, device_path: str, svc: Service):
        super().__init__("org.bluez.GattService1")
        self.device_path = device_path
        self.svc = svc

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # noqa: N802,F821
        return self.svc.uuid.lower()

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":  # noqa: N802,F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> "o":  # noqa: N802,F821
        return self.device_path

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> "ao":  # noqa: N802,F821
        return []


class Device1(ServiceInterface):
    def __init__(self, bluez: "VirtualBlueZ", adapter: "Adapter1", peripheral: Peripheral):
        super().__init__("org.bluez.Device1")
        self.bluez = bluez
        self.adapter = adapter
        self.peripheral = peripheral
        self.path = f"{adapter.path}/{_path_part(peripheral.address)}"
        self.connected = False
        self.resolved = False
        self.paired = False
        self.trusted = False
        self.rssi = peripheral.rssi
        self.chars: dict[str, GattCharacteristic1] = {}
        self._gatt_paths: list[tuple[str, ServiceInterface]] = []
        peripheral._device = self

    def check_connected(self) -> None:
        if not self.connected:
            raise DBusError(ERR_NOT_CONNECTED, "Not Connected")

    def _export_gatt(self) -> None:
        handle = 0x000A
        for svc in self.peripheral.services:
            spath = f"{self.path}/service{handle:04x}"
            si = GattService1(self.path, svc)
            self.bluez.bus.export(spath, si)
            self._gatt_paths.append((spath, si))
            handle += 1
            for ch in svc.characteristics:
                cpath = f"{spath}/char{handle:04x}"
                ci = GattCharacteristic1(self, cpath, spath, ch)
                self.bluez.bus.export(cpath, ci)
                self._gatt_paths.append((cpath, ci))
                self.chars[ch.uuid.lower()] = ci
                handle += 2
            handle += 1

    def _unexport_gatt(self) -> None:
        for path, iface in reversed(self._gatt_paths):
            self.bluez.bus.unexport(path, iface)
        self._gatt_paths.clear()
        self.chars.clear()

    def link_down(self) -> None:
        """What bluetoothd does when a link ends: GATT objects go, then Connected=false."""
        if not self.connected:
            return
        self.peripheral.stats.disconnects += 1
        self.resolved = False
        self.emit_properties_changed({"ServicesResolved": False})
        self._unexport_gatt()
        self.connected = False
        self.adapter.slots_used -= 1
        self.emit_properties_changed({"Connected": False})
        if self.peripheral.on_connection is not None:
            self.peripheral.on_connection(False)

    @method()
    async def Connect(self) -> None:  # noqa: N802
        await self.connect()

    async def connect(self) -> None:
        """Connect (the method body: dbus-fast's decorated method cannot be awaited here)."""
        p = self.peripheral
        if self.connected:
            return
        await asyncio.sleep(self.bluez.connect_latency)
        if not self.adapter.powered:
            raise DBusError(ERR_NOT_READY, "Resource Not Ready")
        if p.out_of_range:
            raise DBusError(ERR_FAILED, "Page Timeout")
        if p.refuse_connects > 0:
            p.refuse_connects -= 1
            p.stats.refused += 1
            if p.refuse_error == "le-connection-abort-by-local":
                # BlueZ >= 5.62 connected at the HCI level and then aborted: bleak waits for
                # Connected to go true and false again before it retries by itself
                self.emit_properties_changed({"Connected": True})
                self.emit_properties_changed({"Connected": False})
            raise DBusError(ERR_FAILED, p.refuse_error)
        if self.adapter.slots_used >= self.adapter.max_connections:
            raise DBusError(ERR_FAILED, "Connection rejected due to limited resources (0x0d)")
        self.adapter.slots_used += 1
        p.stats.connects += 1
        self.connected = True
        self.emit_properties_changed({"Connected": True})
        self._export_gatt()
        self.resolved = True
        self.emit_properties_changed({"ServicesResolved": True})
        if p.on_connection is not None:
            p.on_connection(True)

    @method()
    async def Disconnect(self) -> None:  # noqa: N802
        self.link_down()

    @method()
    async def Pair(self) -> None:  # noqa: N802
        await asyncio.sleep(self.bluez.connect_latency)
        if self.paired:
            raise DBusError("org.bluez.Error.AlreadyExists", "Already Exists")
        p = self.peripheral
        if p.passkey is not None:
            await self.bluez.passkey_entry(self)
        elif p.requires_pairing and self.bluez.agent is None:
            raise DBusError("org.bluez.Error.AuthenticationFailed", "Authentication Failed")
        self.bluez.pairings.append((p.address.upper(), "passkey" if p.passkey is not None
                                    else "just_works"))
        self.paired = True
        self.emit_properties_changed({"Paired": True, "Bonded": True})
        if not self.connected:
            await self.connect()

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":  # noqa: N802,F821
        return self.peripheral.address.upper()

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":  # noqa: N802,F821
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":  # noqa: N802,F821
        return self.peripheral.name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":  # noqa: N802,F821
        return self.peripheral.name

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> "o":  # noqa: N802,F821
        return self.adapter.path

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> "b":  # noqa: N802,F821
        return self.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> "b":  # noqa: N802,F821
        return self.resolved

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> "b":  # noqa: N802,F821
        return self.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> "b":  # noqa: N802,F821
        return self.paired

    @dbus_property()
    def Trusted(self) -> "b":  # noqa: N802,F821
        return self.trusted

    @Trusted.setter  # type: ignore[no-redef]
    def Trusted(self, value: "b") -> None:  # noqa: N802,F821,F811
        self.trusted = bool(value)

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> "b":  # noqa: N802,F821
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> "b":  # noqa: N802,F821
        return False

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> "n":  # noqa: N802,F821
        return self.rssi

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":  # noqa: N802,F821
        return [u.lower() for u in (self.peripheral.advertised
                                    or [s.uuid for s in self.peripheral.services])]

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> "a{qv}":  # noqa: N802,F821
        return {}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> "a{sv}":  # noqa: N802,F821
        return {}


class Adapter1(ServiceInterface):
    def __init__(self, bluez: "VirtualBlueZ", name: str, address: str, max_connections: int):
        super().__init__("org.bluez.Adapter1")
        self.bluez = bluez
        self.path = f"/org/bluez/{name}"
        self.address = address
        self.powered = True
        self.discovering = False
        self.uuid_filter: set[str] = set()
        self.clients: set[str] = set()
        self.max_connections = max_connections
        self.slots_used = 0
        self.stuck_in_progress = False  # fault: StartDiscovery answers InProgress
        self.devices: dict[str, Device1] = {}
        self._adv_task: asyncio.Task[None] | None = None
        self.discovery_calls = 0
        self.resets = 0

    @method()
    def SetDiscoveryFilter(self, filters: "a{sv}") -> None:  # noqa: N802,F821
        uuids = filters.get("UUIDs")
        self.uuid_filter = {u.lower() for u in uuids.value} if uuids is not None else set()

    @method()
    def GetDiscoveryFilters(self) -> "as":  # noqa: N802,F821
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable",
                "Pattern"]

    @method()
    def StartDiscovery(self) -> None:  # noqa: N802
        self.discovery_calls += 1
        if not self.powered:
            raise DBusError(ERR_NOT_READY, "Resource Not Ready")
        if self.stuck_in_progress:
            raise DBusError(ERR_IN_PROGRESS, "Operation already in progress")
        if not self.discovering:
            self.discovering = True
            self.emit_properties_changed({"Discovering": True})
            self._adv_task = asyncio.get_running_loop().create_task(self._advertise())

    @method()
    def StopDiscovery(self) -> None:  # noqa: N802
        if not self.discovering:
            raise DBusError(ERR_FAILED, "No discovery started")
        self.discovering = False
        if self._adv_task is not None:
            self._adv_task.cancel()
            self._adv_task = None
        self.emit_properties_changed({"Discovering": False})

    @method()
    def RemoveDevice(self, device: "o") -> None:  # noqa: N802,F821
        for addr, d in list(self.devices.items()):
            if d.path == device:
                d.link_down()
                self.bluez.bus.unexport(d.path, d)
                del self.devices[addr]
                d.peripheral._device = None
                return
        raise DBusError(ERR_DOES_NOT_EXIST, "Does Not Exist")

    def _matches(self, p: Peripheral) -> bool:
        if not self.uuid_filter:
            return True
        uu = {u.lower() for u in (p.advertised or [s.uuid for s in p.services])}
        return bool(uu & self.uuid_filter)

    async def _advertise(self) -> None:
        """While discovering: export newly seen devices, refresh RSSI of known ones."""
        tick = 0
        while True:
            for p in self.bluez.peripherals:
                if p.out_of_range or p.connected or not self._matches(p):
                    continue
                d = self.devices.get(p.address.upper())
                if d is None:
                    d = Device1(self.bluez, self, p)
                    self.devices[p.address.upper()] = d
                    self.bluez.bus.export(d.path, d)
                else:
                    d.rssi = p.rssi - (tick % 3)
                    d.emit_properties_changed({"RSSI": d.rssi})
            tick += 1
            await asyncio.sleep(self.bluez.advertising_interval)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":  # noqa: N802,F821
        return self.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":  # noqa: N802,F821
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":  # noqa: N802,F821
        return "vitals-edge virtual adapter"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":  # noqa: N802,F821
        return "vitals-edge virtual adapter"

    @dbus_property()
    def Powered(self) -> "b":  # noqa: N802,F821
        return self.powered

    @Powered.setter  # type: ignore[no-redef]
    def Powered(self, value: "b") -> None:  # noqa: N802,F821,F811
        self.powered = bool(value)
        self.resets += int(not value)
        if not value:
            for d in self.devices.values():
                d.link_down()
            self.stuck_in_progress = False
            if self.discovering:
                self.StopDiscovery()  # type: ignore[call-arg]

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> "b":  # noqa: N802,F821
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> "as":  # noqa: N802,F821
        return ["central", "peripheral"]

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":  # noqa: N802,F821
        return []


class AgentManager1(ServiceInterface):
    def __init__(self, bluez: "VirtualBlueZ"):
        super().__init__("org.bluez.AgentManager1")
        self.bluez = bluez

    @method()
    def RegisterAgent(self, agent: "o", capability: "s") -> None:  # noqa: N802,F821
        if capability not in AGENT_CAPABILITIES:
            raise DBusError("org.bluez.Error.InvalidArguments", "Invalid Arguments")
        # the caller's unique name was recorded by VirtualBlueZ._note_sender, a low-level
        # message handler that sees this very message just before this method runs
        self.bluez.agent = (agent, capability)
        self.bluez.agent_owner = self.bluez._last_register_sender

    @method()
    def UnregisterAgent(self, agent: "o") -> None:  # noqa: N802,F821
        if self.bluez.agent is None or self.bluez.agent[0] != agent:
            raise DBusError(ERR_DOES_NOT_EXIST, "Does Not Exist")
        self.bluez.agent = None
        self.bluez.agent_owner = None

    @method()
    def RequestDefaultAgent(self, agent: "o") -> None:  # noqa: N802,F821
        pass


AGENT_CAPABILITIES = ("DisplayOnly", "DisplayYesNo", "KeyboardOnly", "NoInputNoOutput",
                      "KeyboardDisplay", "")


class VirtualBlueZ:
    """``async with VirtualBlueZ(address, peripherals) as bz:`` owns ``org.bluez`` on that bus."""

    def __init__(self, bus_address: str, peripherals: list[Peripheral] | None = None, *,
                 adapters: int = 1, max_connections: int = 7, connect_latency: float = 0.01,
                 advertising_interval: float = 0.05) -> None:
        self.bus_address = bus_address
        self.peripherals: list[Peripheral] = list(peripherals or [])
        self.n_adapters = adapters
        self.max_connections = max_connections
        self.connect_latency = connect_latency
        self.advertising_interval = advertising_interval
        self.adapters: list[Adapter1] = []
        self.agent: tuple[str, str] | None = None  # (path, capability) of a registered agent
        self.agent_owner: str | None = None  # the agent's unique bus name (":1.42")
        self._last_register_sender: str | None = None
        self.pairings: list[tuple[str, str]] = []  # (address, method) of successful pairings
        self.agent_timeout = 30.0  # BlueZ cancels an agent request after about 30 s
        self._bus: MessageBus | None = None

    @property
    def bus(self) -> MessageBus:
        assert self._bus is not None, "VirtualBlueZ is not started"
        return self._bus

    async def start(self) -> None:
        self._bus = await MessageBus(bus_address=self.bus_address,
                                    bus_type=BusType.SYSTEM).connect()
        for i in range(self.n_adapters):
            a = Adapter1(self, f"hci{i}", f"00:00:5E:00:53:{i:02X}", self.max_connections)
            self.adapters.append(a)
            self.bus.export(a.path, a)
        self.bus.export("/org/bluez", AgentManager1(self))
        self.bus.add_message_handler(self._note_sender)
        await self.bus.request_name(BLUEZ)

    def _note_sender(self, msg: Message) -> None:
        """dbus-fast's service API hides the caller: a message handler (run before the
        exported interfaces, returning None so the call still reaches them) notes who
        calls RegisterAgent, as bluetoothd does, so that Pair can call that agent back."""
        if msg.message_type == MessageType.METHOD_CALL and msg.member == "RegisterAgent" \
                and msg.interface == "org.bluez.AgentManager1":
            self._last_register_sender = msg.sender

    async def passkey_entry(self, device: Device1) -> None:
        """Passkey entry as bluetoothd drives it: the device shows a passkey, the agent
        (KeyboardOnly/KeyboardDisplay) is asked for it with RequestPasskey, a mismatch
        fails the pairing with AuthenticationFailed. The agent is called as a D-Bus
        client: introspect its object, then a proxy call."""
        if self.agent is None or self.agent_owner is None:
            raise DBusError("org.bluez.Error.AuthenticationFailed", "Authentication Failed")
        path, capability = self.agent
        if capability not in ("KeyboardOnly", "KeyboardDisplay"):
            # the device needs MITM protection; the agent cannot type: no method fits
            raise DBusError("org.bluez.Error.AuthenticationFailed", "Authentication Failed")
        node = await self.bus.introspect(self.agent_owner, path)
        # dbus-fast adds the call_* methods to the proxy at runtime, from the
        # introspection data: the static type cannot list them
        agent: Any = self.bus.get_proxy_object(self.agent_owner, path, node) \
            .get_interface("org.bluez.Agent1")
        try:
            entered = await asyncio.wait_for(agent.call_request_passkey(device.path),
                                             self.agent_timeout)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await agent.call_cancel()
            raise DBusError("org.bluez.Error.AuthenticationTimeout",
                            "Authentication Timeout") from None
        except DBusError as exc:
            if exc.type == "org.bluez.Error.Canceled":
                raise DBusError("org.bluez.Error.AuthenticationCanceled",
                                "Authentication Canceled") from None
            raise DBusError("org.bluez.Error.AuthenticationRejected",
                            "Authentication Rejected") from None
        if entered != device.peripheral.passkey:
            raise DBusError("org.bluez.Error.AuthenticationFailed", "Authentication Failed")

    async def stop(self) -> None:
        for a in self.adapters:
            if a._adv_task is not None:
                a._adv_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await a._adv_task
                a._adv_task = None
        if self._bus is not None:
            self._bus.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._bus.wait_for_disconnect(), 2)
            self._bus = None

    async def __aenter__(self) -> "VirtualBlueZ":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add(self, p: Peripheral) -> Peripheral:
        self.peripherals.append(p)
        return p

    def reset_adapter(self, index: int = 0) -> None:
        """Power-cycle an adapter (what the gateway's watchdog would ask for): drops links,
        clears a stuck discovery state."""
        a = self.adapters[index]
        for d in a.devices.values():
            d.link_down()
        a.stuck_in_progress = False
        if a.discovering:
            a.StopDiscovery()  # type: ignore[call-arg]


__all__ = ["Characteristic", "Peripheral", "PeripheralStats", "Service", "Variant",
           "VirtualBlueZ"]
