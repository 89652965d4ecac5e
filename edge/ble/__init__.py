"""Bluetooth LE: SIG health-characteristic decoders, the vendor waveform stream, BlueZ helpers.

* :mod:`edge.ble.ieee11073`: SFLOAT/FLOAT (medfloat16/32) with explicit special values.
* :mod:`edge.ble.gatt`: pure decoders of 0x2A37, 0x2A5E/0x2A5F, 0x2A1C, 0x2A35, 0x2A19, DIS.
* :mod:`edge.ble.vendor`: the vitals-edge waveform service (firmware_bridge frames over GATT).
* :mod:`edge.ble.beats`: RR-interval beat-time reconstruction for 0x2A37.
* :mod:`edge.ble.scan`: scan filters (service UUIDs, name regex, address allow-list).
* :mod:`edge.ble.agent`: the org.bluez.Agent1 pairing agent, pairing, bonded devices.
"""
