"""What the web view shows, as JSON: sources with their numerics and NEWS2, the outbox, episodes.

Built from what the daemon already keeps (pipeline, sources, outbox, the live
tap); nothing here changes state. Identifiers are the pseudonymous device and
patient ids of the configuration, never a name.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from edge.config import EdgeConfig, SourceConfig, patient_for_device
from edge.pipeline import Pipeline
from edge.sources.base import Source
from edge.store.outbox import Outbox, StoredEvent
from edge.web.live import LiveView

#: Vital kinds the page shows, in display order.
NUMERICS = ("heart_rate", "pulse_rate", "spo2", "resp_rate", "temperature",
            "systolic_bp", "diastolic_bp", "mean_bp")


def source_device(cfg: SourceConfig, src: Source, index: int) -> str:
    """The device id a source's streams carry (recorded in a trace, configured, learnt from
    the device, or default)."""
    info = getattr(src, "info", None)  # a trace replays the device ids it recorded
    streams = getattr(info, "streams", None)
    if isinstance(streams, dict) and streams:
        return str(next(iter(streams.values()))[0].device)
    if cfg.device:
        return cfg.device
    dev = getattr(src, "device", "") or getattr(getattr(src, "key", None), "device", "")
    if dev:
        return str(dev)
    hello = getattr(src, "hello", None)  # serial: the id the wearable announced
    if hello is not None and isinstance(getattr(hello, "device_id", None), int):
        return f"{hello.device_id:016x}"
    return f"replay{index}" if cfg.type == "replay" else f"{cfg.type}{index}"


def _battery(src: Source | None) -> int | None:
    status = getattr(src, "status", None)  # serial: the device's latest status frame
    pct = getattr(status, "battery_percent", None)
    if isinstance(pct, int) and 0 <= pct <= 100:
        return pct
    pct = getattr(src, "battery_percent", None)
    return pct if isinstance(pct, int) else None


def _age(now: float, t: float | None) -> float | None:
    return None if t is None else round(max(0.0, now - t), 2)


def build_status(config: EdgeConfig, sources: Sequence[tuple[SourceConfig, Source]],
                 pipeline: Pipeline, outbox: Outbox | None, live: LiveView) -> dict[str, Any]:
    """The ``GET /api/status`` document (see README, "Web view")."""
    now = time.monotonic()
    stale_s = config.web.stale_s
    procs = pipeline.stream_processors()
    devices: dict[str, dict[str, Any]] = {}
    for i, (cfg, src) in enumerate(sources):
        dev = source_device(cfg, src, i)
        connected = getattr(src, "connected", None)
        devices[dev] = {
            "device": dev, "transport": cfg.type, "source": i,
            "connected": connected if isinstance(connected, bool) else None,
            "battery_percent": _battery(src), "reconnects": src.stats.reconnects,
            "source_gaps": src.stats.gaps, "errors": sum(src.stats.errors.values()),
        }
    for key in live.streams:
        devices.setdefault(key.device, {"device": key.device, "transport": "unknown",
                                        "source": None, "connected": None,
                                        "battery_percent": None, "reconnects": 0,
                                        "source_gaps": 0, "errors": 0})
    out = []
    for dev, d in devices.items():
        found = patient_for_device(config, dev)
        streams: list[dict[str, Any]] = []
        news2 = None
        for key, st in live.streams.items():
            if key.device != dev:
                continue
            quality = None
            for p in procs.get(key, []):
                if p.name == "ecg_quality" and getattr(p, "latest", None) is not None:
                    quality = round(float(p.latest.sqi), 2)  # type: ignore[attr-defined]
                if p.name == "news2" and getattr(p, "latest", None) is not None:
                    news2 = p.latest.to_dict()  # type: ignore[attr-defined]
            age = _age(now, st.last_sample)
            # a waveform streams continuously: silence is a fault. Numeric-only streams
            # (a cuff, a thermometer) may report once in minutes: their age is shown,
            # their link state decides
            waveform = st.kind != "vitals"
            streams.append({"id": st.id, "stream": key.stream, "kind": st.kind, "fs": st.fs,
                            "last_sample_age_s": age, "gaps": st.gaps, "samples": st.samples,
                            "quality": quality,
                            "silent": waveform and (age is None or age > stale_s)})
        numerics = {k: {"value": round(v.value, 1), "unit": v.unit, "age_s": _age(now, v.at),
                        "quality": round(v.quality, 2), "source": v.source}
                    for k, v in sorted(live.vitals.get(dev, {}).items(),
                                       key=lambda kv: NUMERICS.index(kv[0])
                                       if kv[0] in NUMERICS else 99)}
        ages: list[float] = [s["last_sample_age_s"] for s in streams
                             if s["last_sample_age_s"] is not None]
        newest = min(ages) if ages else None
        wave_ages: list[float] = [s["last_sample_age_s"] for s in streams
                                  if s["kind"] != "vitals" and s["last_sample_age_s"] is not None]
        has_waveform = any(s["kind"] != "vitals" for s in streams)
        newest_wave = min(wave_ages) if wave_ages else None
        silent = (d["connected"] is False
                  or (has_waveform and (newest_wave is None or newest_wave > stale_s))
                  or (not streams and d["connected"] is None))
        if d["connected"] is not None:
            link = "connected" if d["connected"] else "disconnected"
        else:
            link = "silent" if silent else "streaming"
        out.append({**d, "patient": found[0] if found else None, "link": link,
                    "last_sample_age_s": newest, "silent": silent,
                    # seconds since the newest waveform sample: what the page ages between
                    # status updates (None: no waveform, staleness by link state only)
                    "waveform_age_s": newest_wave,
                    "gaps": sum(s["gaps"] for s in streams), "streams": streams,
                    "numerics": numerics, "news2": news2})
    return {"time": time.time(), "stale_s": stale_s, "strip_s": config.web.strip_s,
            "sources": out, "outbox": outbox_status(outbox, bool(config.sync.url)),
            "pipeline": {"blocks": pipeline.stats.blocks, "queue_depth": pipeline.queue_depth(),
                         "processor_errors": sum(pipeline.stats.processor_errors.values())},
            "web": {"clients": len(live.subscribers), "dropped_slow_clients": live.dropped}}


def outbox_status(outbox: Outbox | None, sync_configured: bool) -> dict[str, Any]:
    """Waiting, oldest waiting, last successful sync and last backend error."""
    if outbox is None:
        return {"available": False}
    st = outbox.stats()
    meta = outbox.meta()
    oldest = st["oldest_pending_created"]
    return {"available": True, "sync_configured": sync_configured,
            "waiting": st["pending"], "failed": st["failed"], "total": st["total"],
            "oldest_waiting": oldest,
            "oldest_waiting_age_s": None if oldest is None else round(time.time() - oldest, 1),
            "last_success": meta.get("last_success"), "last_attempt": meta.get("last_attempt"),
            "last_error": meta.get("last_error"),
            "delivered_total": int(meta.get("delivered_total", 0))}


def episode_json(row: StoredEvent, has_evidence: bool | None = None) -> dict[str, Any]:
    """One stored episode for the API: the episode, its revision and sync state."""
    out = {**row.episode.to_dict(), "revision": row.revision, "synced": not row.pending,
           "stored": row.created, "updated": row.updated}
    if has_evidence is not None:
        out["has_evidence"] = has_evidence
    return out


def recent_episodes(outbox: Outbox, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` episodes, newest first (by onset), with their ids."""
    rows = outbox.recent(limit)
    with_evidence = outbox.evidence_ids([r.episode.id for r in rows])
    return [episode_json(r, r.episode.id in with_evidence) for r in rows]
