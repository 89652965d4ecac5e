# ruff: noqa: F722, F821, N802 - dbus-fast reads D-Bus signatures from annotations
"""Pairing and bonding through BlueZ: an ``org.bluez.Agent1`` and the calls around it.

BlueZ asks a registered *agent* whenever pairing needs the user (a passkey, a
confirmation). :class:`PairingAgent` is one, exported on the system bus with
dbus-fast and registered with ``AgentManager1.RegisterAgent`` (then
``RequestDefaultAgent``) for the time of a :func:`pair` call.

Capability (``agent_capability`` in the config):

* ``NoInputNoOutput``: Just Works. BlueZ never asks the agent for a passkey;
  no protection against a man in the middle.
* ``KeyboardOnly``: passkey entry. The device shows 6 digits; BlueZ calls
  ``RequestPasskey`` and the agent answers from ``--passkey`` or the
  ``passkey_file`` (read at that moment, never logged). No passkey: the
  request is rejected (``org.bluez.Error.Rejected``) and the pairing fails.

Policy for the other requests (the gateway has no screen and no operator at
the moment BlueZ asks):

* ``RequestConfirmation`` (numeric comparison) and ``RequestAuthorization``
  (incoming Just Works): accepted only for the device this agent is pairing
  (the one the operator named on the command line), rejected for any other.
* ``AuthorizeService``: accepted only for that device or one already bonded
  and trusted in BlueZ; rejected otherwise.
* ``RequestPinCode`` (BR/EDR legacy pairing, not used by LE health devices):
  rejected. ``DisplayPasskey``/``DisplayPinCode``: logged without the digits.
* ``Cancel``: the pending request is dropped and logged; ``Release``: BlueZ
  unregistered the agent (logged).

Bonds are kept by BlueZ (``/var/lib/bluetooth``) and used by it on every
reconnection without the agent; :func:`bonded_devices` lists them from
``Device1.Paired``/``Bonded`` through the ObjectManager.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from edge.ble.bluez import device_path
from edge.errors import EdgeError

log = logging.getLogger(__name__)

AGENT_PATH = "/org/vitals_edge/agent"
CAPABILITIES = ("NoInputNoOutput", "KeyboardOnly")
REJECTED = "org.bluez.Error.Rejected"

#: BlueZ pairing errors -> one line an operator can act on
PAIR_HINTS = {
    "org.bluez.Error.AuthenticationFailed": "authentication failed: wrong passkey, or the "
        "device needs passkey entry (agent_capability = \"KeyboardOnly\" and --passkey)",
    "org.bluez.Error.AuthenticationRejected": "the agent or the device rejected pairing "
        "(no passkey given?)",
    "org.bluez.Error.AuthenticationCanceled": "pairing canceled",
    "org.bluez.Error.AuthenticationTimeout": "pairing timed out (nobody entered the passkey "
        "in time)",
    "org.bluez.Error.ConnectionAttemptFailed": "could not connect to pair (out of range?)",
    "org.bluez.Error.AlreadyExists": "already paired",
    "org.bluez.Error.InProgress": "adapter busy (another pairing or connection in progress)",
    "org.bluez.Error.DoesNotExist": "BlueZ does not know the device (scan first)",
}


class PairingError(EdgeError):
    """Pairing failed; the message is one line with BlueZ's error name."""


class PairingAgent(ServiceInterface):
    """``org.bluez.Agent1`` (see the module docstring for the policy)."""

    def __init__(self, capability: str = "NoInputNoOutput", *, passkey: int | None = None,
                 passkey_file: str | Path | None = None, target: str | None = None) -> None:
        if capability not in CAPABILITIES:
            raise PairingError(f"agent capability {capability!r}: expected one of "
                               f"{', '.join(CAPABILITIES)}")
        super().__init__("org.bluez.Agent1")
        self.capability = capability
        self.passkey = passkey
        self.passkey_file = Path(passkey_file) if passkey_file else None
        self.target = target  # the device path this agent pairs
        self.trusted_paths: set[str] = set()
        self.requests: list[str] = []  # method names called, for diagnostics and tests
        self.released = False

    def _passkey(self) -> int | None:
        if self.passkey is not None:
            return self.passkey
        if self.passkey_file is not None:
            text = self.passkey_file.read_text().strip()
            if text.isdigit() and len(text) <= 6:
                return int(text)
            log.warning("ble agent: %s does not hold a 6-digit passkey", self.passkey_file)
        return None

    def _only_target(self, device: str, what: str) -> None:
        if device != self.target and device not in self.trusted_paths:
            log.warning("ble agent: rejected %s for %s (not the device being paired)", what,
                        device.rsplit("/", 1)[-1])
            raise DBusError(REJECTED, f"{what} rejected by policy")

    @method()
    def Release(self) -> None:
        self.requests.append("Release")
        self.released = True
        log.info("ble agent: released by BlueZ")

    @method()
    def RequestPinCode(self, device: "o") -> "s":
        self.requests.append("RequestPinCode")
        raise DBusError(REJECTED, "PIN codes (BR/EDR legacy pairing) are not supported")

    @method()
    def DisplayPinCode(self, device: "o", pincode: "s") -> None:
        self.requests.append("DisplayPinCode")
        log.info("ble agent: the device shows a PIN code")

    @method()
    def RequestPasskey(self, device: "o") -> "u":
        self.requests.append("RequestPasskey")
        self._only_target(device, "passkey request")
        pk = self._passkey()
        if pk is None:
            log.warning("ble agent: BlueZ asks for the passkey but none is configured "
                        "(--passkey or passkey_file)")
            raise DBusError(REJECTED, "no passkey configured")
        return pk

    @method()
    def DisplayPasskey(self, device: "o", passkey: "u", entered: "q") -> None:
        self.requests.append("DisplayPasskey")
        log.info("ble agent: the device asks to type a passkey (%d digits typed)", entered)

    @method()
    def RequestConfirmation(self, device: "o", passkey: "u") -> None:
        self.requests.append("RequestConfirmation")
        self._only_target(device, "confirmation")

    @method()
    def RequestAuthorization(self, device: "o") -> None:
        self.requests.append("RequestAuthorization")
        self._only_target(device, "authorization")

    @method()
    def AuthorizeService(self, device: "o", uuid: "s") -> None:
        self.requests.append("AuthorizeService")
        self._only_target(device, f"service {uuid}")

    @method()
    def Cancel(self) -> None:
        self.requests.append("Cancel")
        log.warning("ble agent: BlueZ canceled the pending request (timeout or the device "
                    "gave up)")


async def _call(bus: MessageBus, path: str, interface: str, member: str, signature: str = "",
                body: "list[Any] | None" = None) -> Message:
    reply = await bus.call(Message(destination="org.bluez", path=path, interface=interface,
                                   member=member, signature=signature, body=body or []))
    assert reply is not None
    return reply


def _raise_for(reply: Message, what: str) -> None:
    if reply.message_type == MessageType.ERROR:
        name = reply.error_name or "org.bluez.Error.Failed"
        hint = PAIR_HINTS.get(name, (reply.body[0] if reply.body else "failed"))
        raise PairingError(f"{what}: {hint} ({name})")


@contextlib.asynccontextmanager
async def registered_agent(bus: MessageBus, agent: PairingAgent, *, default: bool = True,
                           path: str = AGENT_PATH) -> AsyncIterator[PairingAgent]:
    """Export ``agent`` and register it with BlueZ (and as default) for the block."""
    bus.export(path, agent)
    try:
        _raise_for(await _call(bus, "/org/bluez", "org.bluez.AgentManager1", "RegisterAgent",
                               "os", [path, agent.capability]), "register the pairing agent")
        if default:
            _raise_for(await _call(bus, "/org/bluez", "org.bluez.AgentManager1",
                                   "RequestDefaultAgent", "o", [path]),
                       "make the pairing agent the default")
        try:
            yield agent
        finally:
            with contextlib.suppress(Exception):
                await _call(bus, "/org/bluez", "org.bluez.AgentManager1", "UnregisterAgent",
                            "o", [path])
    finally:
        bus.unexport(path, agent)


@dataclass
class PairResult:
    address: str
    paired: bool
    trusted: bool
    capability: str
    agent_requests: list[str] = field(default_factory=list)


async def pair(address: str, *, adapter: str = "hci0", capability: str = "NoInputNoOutput",
               passkey: int | None = None, passkey_file: str | Path | None = None,
               timeout: float = 30.0, disconnect: bool = True) -> PairResult:
    """Pair (bond) with ``address``: scan until BlueZ knows it, register the agent,
    ``Device1.Pair``, then ``Trusted = true`` (BlueZ then reconnects and authorises it
    without asking). Raises :class:`PairingError` with one clear line."""
    from bleak import BleakScanner

    address = address.upper()
    dev = await BleakScanner.find_device_by_address(address, timeout=min(timeout, 20.0),
                                                    bluez={"adapter": adapter})
    if dev is None:
        raise PairingError(f"pair {address}: not found on {adapter} (not advertising or out of "
                           "range; put the device in pairing mode)")
    path = device_path(adapter, address)
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        agent = PairingAgent(capability, passkey=passkey, passkey_file=passkey_file, target=path)
        async with registered_agent(bus, agent):
            try:
                reply = await asyncio.wait_for(
                    _call(bus, path, "org.bluez.Device1", "Pair"), timeout)
            except TimeoutError:
                with contextlib.suppress(Exception):
                    await _call(bus, path, "org.bluez.Device1", "CancelPairing")
                raise PairingError(f"pair {address}: no answer in {timeout:.0f} s "
                                   "(org.bluez.Error.AuthenticationTimeout)") from None
            if not (reply.message_type == MessageType.ERROR
                    and reply.error_name == "org.bluez.Error.AlreadyExists"):
                _raise_for(reply, f"pair {address}")
            _raise_for(await _call(bus, path, "org.freedesktop.DBus.Properties", "Set", "ssv",
                                   ["org.bluez.Device1", "Trusted", Variant("b", True)]),
                       f"trust {address}")
            if disconnect:
                with contextlib.suppress(Exception):
                    await _call(bus, path, "org.bluez.Device1", "Disconnect")
        log.info("ble %s: paired and trusted (%s)", address, capability)
        return PairResult(address, True, True, capability, list(agent.requests))
    finally:
        bus.disconnect()


async def bonded_devices(adapter: str | None = None) -> list[dict[str, Any]]:
    """Devices BlueZ has paired or bonded (``Device1.Paired``/``Bonded``), from the
    ObjectManager: address, name, adapter, paired, bonded, trusted, connected."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        reply = await _call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        if reply.message_type == MessageType.ERROR:
            raise PairingError(f"list bonded devices: {reply.error_name}")
        rows = []
        for path, ifaces in reply.body[0].items():
            props = ifaces.get("org.bluez.Device1")
            if props is None:
                continue

            def get(name: str, default: Any = None, props: dict = props) -> Any:
                v = props.get(name)
                return default if v is None else v.value

            bonded = bool(get("Bonded", False))
            if not (get("Paired", False) or bonded):
                continue
            hci = path.split("/")[3] if path.count("/") >= 4 else ""
            if adapter is not None and hci != adapter:
                continue
            rows.append({"address": get("Address", ""), "name": get("Name", ""),
                         "adapter": hci, "paired": bool(get("Paired", False)),
                         "bonded": bonded, "trusted": bool(get("Trusted", False)),
                         "connected": bool(get("Connected", False))})
        return sorted(rows, key=lambda r: r["address"])
    finally:
        bus.disconnect()

