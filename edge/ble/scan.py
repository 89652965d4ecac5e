"""Scan filters: pick a patient's wearable by what it advertises (no fixed address).

A :class:`ScanFilter` combines service UUIDs (handed to BlueZ as the discovery
filter, so the adapter drops other advertisers), a name regular expression and
an address allow-list; a device must pass all the filters that are set.
:func:`find_device` scans until the first device that passes and that no other
source of this process holds (:func:`claim`), and claims it inside bleak's
detection callback, so two sources with the same filters never take the same
device even when their scans overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from edge.errors import ConfigError

ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def normalize_uuid(u: str) -> str:
    """'180d', '0x180D' or a 128-bit UUID -> the lower-case 128-bit form bleak uses."""
    s = u.strip().lower().removeprefix("0x")
    if re.fullmatch(r"[0-9a-f]{4}", s):
        return f"0000{s}{BASE_UUID_TAIL}"
    if re.fullmatch(r"[0-9a-f]{8}", s):
        return f"{s}{BASE_UUID_TAIL}"
    if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", s):
        return s
    raise ConfigError(f"{u!r} is not a service UUID (16-bit like '180d', or 128-bit)")


@dataclass(frozen=True)
class ScanFilter:
    service_uuids: tuple[str, ...] = ()
    name_pattern: str = ""
    address_allow: tuple[str, ...] = ()
    _name_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, service_uuids: Iterable[str] = (), name_pattern: str = "",
              address_allow: Iterable[str] = ()) -> ScanFilter:
        uuids = tuple(normalize_uuid(u) for u in service_uuids)
        allow = tuple(a.upper() for a in address_allow)
        for a in allow:
            if not ADDRESS_RE.match(a):
                raise ConfigError(f"address_allow: {a!r} is not a BLE address "
                                  "(AA:BB:CC:DD:EE:FF)")
        try:
            name_re = re.compile(name_pattern) if name_pattern else None
        except re.error as exc:
            raise ConfigError(f"name_pattern {name_pattern!r}: {exc}") from exc
        return cls(uuids, name_pattern, allow, name_re)

    @property
    def empty(self) -> bool:
        return not (self.service_uuids or self.name_pattern or self.address_allow)

    def matches(self, address: str, name: str | None, uuids: Iterable[str]) -> bool:
        if self.address_allow and address.upper() not in self.address_allow:
            return False
        if self._name_re is not None and not self._name_re.search(name or ""):
            return False
        return not self.service_uuids or bool(set(self.service_uuids)
                                              & {u.lower() for u in uuids})

    def describe(self) -> str:
        parts = []
        if self.service_uuids:
            parts.append("services " + ",".join(u[4:8] if u.endswith(BASE_UUID_TAIL) else u
                                                for u in self.service_uuids))
        if self.name_pattern:
            parts.append(f"name ~ {self.name_pattern!r}")
        if self.address_allow:
            parts.append(f"{len(self.address_allow)} allowed addresses")
        return "; ".join(parts) or "any device"


# address -> owner, per event loop (one gateway process owns its adapters)
_CLAIMS: dict[tuple[int, str], object] = {}


def _key(address: str) -> tuple[int, str]:
    return (id(asyncio.get_running_loop()), address.upper())


def claim(address: str, owner: object) -> bool:
    """Take ``address`` for ``owner``; False if another owner holds it."""
    holder = _CLAIMS.setdefault(_key(address), owner)
    return holder is owner


def release(address: str, owner: object) -> None:
    key = _key(address)
    if _CLAIMS.get(key) is owner:
        del _CLAIMS[key]


def release_all(owner: object) -> None:
    for key in [k for k, v in _CLAIMS.items() if v is owner]:
        del _CLAIMS[key]


async def find_device(flt: ScanFilter, owner: object, *, adapter: str = "hci0",
                      timeout: float = 10.0) -> tuple[BLEDevice, AdvertisementData] | None:
    """Scan until a device passes ``flt`` and is claimed for ``owner``; None after ``timeout``."""
    found: asyncio.Future[tuple[BLEDevice, AdvertisementData]] = \
        asyncio.get_running_loop().create_future()

    def seen(dev: BLEDevice, adv: AdvertisementData) -> None:
        if found.done() or not flt.matches(dev.address, adv.local_name or dev.name,
                                           adv.service_uuids):
            return
        if claim(dev.address, owner):
            found.set_result((dev, adv))

    scanner = BleakScanner(seen, service_uuids=list(flt.service_uuids) or None,
                           bluez={"adapter": adapter})
    await scanner.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(found), timeout)
        return found.result() if found.done() and not found.cancelled() else None
    finally:
        with contextlib.suppress(Exception):
            await scanner.stop()
        if not found.done():
            found.cancel()
