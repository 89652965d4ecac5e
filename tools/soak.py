"""Soak: many simulated hours through the real daemon path, with faults; leaks and losses.

The gateway runs in this process exactly as ``edge run`` runs it
(:class:`edge.daemon.Daemon`, one serial source, the SQLite outbox, sync with
bearer auth to the FHIR test backend in a subprocess, metrics off). A virtual
wearable in another process (``python -m edge.sim.soak``) streams a recording
at ``--speed`` x real time on a pty behind a stable symlink, run after run
until ``--hours`` of stream have been sent. Faults:

* corrupt SAMPLES frames (``--corrupt``, one byte changed) and dropped frames
  (``--drop``), injected and logged by the device;
* disconnects: every run end (the pty closes, the device boots again on a new
  pty behind the same link) and, on ``--disconnect-prob`` of the runs, an
  unplug in the middle of the run with a re-plug 10-120 stream seconds later;
* backend outages: the backend answers 503 for one simulated hour in every six
  (hours 3-4, 9-10, ...), and every two simulated hours (from hour 1, or half-way
  through a soak shorter than 2 hours) a burst of one 500,
  one 429 with Retry-After and one transaction committed whose response is
  lost (the gateway must resend it without making a duplicate).

Every ``--sample-s`` wall seconds it samples this process: RSS (VmRSS), open
file descriptors, asyncio tasks, blocks, samples, gaps, reconnects, decode
errors, outbox pending. At the end it stops the daemon gracefully (after
clearing the backend's faults, so the bounded final sync can succeed), then
delivers whatever is still pending and looks every outbox event up on the
backend: lost (stored, not on the backend) and duplicated events must be 0.
Samples: what the device sent (including frames it dropped "on the wire"),
minus what it dropped or corrupted, must equal what the pipeline processed.

    python tools/soak.py --hours 72 --speed 200 --json --out /tmp/soak72

The sync timers (retry backoff cap, circuit-breaker probe interval, idle
poll) are wall-clock settings; they are divided by ``--speed`` (with a floor)
so that an outage and its recovery keep their proportions in simulated time.
Everything listens on 127.0.0.1; the run stops by itself (``--max-wall-s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import EdgeConfig, load_config  # noqa: E402
from edge.daemon import Daemon  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from edge.sync.deliver import count_on_backend, deliver_all  # noqa: E402
from edge.sync.testserver import TestBackend, start_test_backend  # noqa: E402
from edge.trace.recordings import data_dir  # noqa: E402
from edge.types import Gap, GapReason  # noqa: E402

log = logging.getLogger("soak")
DATA_DIR = data_dir()
OUTAGE_EVERY_H, OUTAGE_AT_H, OUTAGE_LEN_H = 6.0, 3.0, 1.0
BURST_EVERY_H, BURST_AT_H = 2.0, 1.0
UNPACED_SCALE = 1000.0  # --speed 0 (as fast as the link takes it): scale timers as if 1000x
BURST = ({"status": 500}, {"status": 429, "retry_after": 1}, {"drop": "after"})


# ------------------------------------------------------------------------ measuring

def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> list[str]:
    """What each open descriptor points at (for telling a leak from a cache)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                target += " " + socket_kind(target[8:-1])
            out.append(target)
    return sorted(out)


def socket_kind(inode: str) -> str:
    """'tcp 127.0.0.1:A -> 127.0.0.1:B' or 'unix' for a socket inode (from /proc/self/net)."""
    for proto in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/self/net/{proto}") as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if f[9] == inode:
                    def addr(a: str) -> str:
                        host, port = a.split(":")
                        ip = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0)) \
                            if len(host) == 8 else host
                        return f"{ip}:{int(port, 16)}"
                    return f"{proto} {addr(f[1])} -> {addr(f[2])} state {f[3]}"
    return "unix"


class GapCounter:
    """A pipeline sink that counts gaps by reason and the samples the bounded ones span."""

    def __init__(self) -> None:
        self.by_reason: dict[str, int] = {}
        self.samples: dict[str, int] = {}

    async def handle(self, item: object) -> None:
        if isinstance(item, Gap):
            r = item.reason.value if isinstance(item.reason, GapReason) else str(item.reason)
            self.by_reason[r] = self.by_reason.get(r, 0) + 1
            if item.end_index is not None:
                self.samples[r] = self.samples.get(r, 0) + item.end_index - item.start_index

    async def close(self) -> None:
        pass


class Admin:
    """The test backend's admin endpoints, one connection per call: no idle keep-alive
    socket of the soak's own comes and goes in the descriptor counts of the gateway."""

    def __init__(self, backend: TestBackend) -> None:
        self.root = backend.root

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        with httpx.Client(base_url=self.root, timeout=30.0) as c:
            r = c.request(method, path, **kw)
            r.raise_for_status()
            return r.json()

    def faults(self, *faults: dict[str, Any], down: bool | None = None) -> None:
        body: dict[str, Any] = {"faults": list(faults)}
        if down is not None:
            body["down"] = down
        self._call("POST", "/_admin/faults", json=body)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_admin/faults")

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/_admin/stats")
        return out


class LogCounter(logging.Handler):
    """Counts WARNING and ERROR records by logger (a soak should not fill the journal)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname.lower()}:{record.name}"
        self.counts[key] = self.counts.get(key, 0) + 1


@dataclasses.dataclass
class DeviceState:
    sim_s: float = 0.0
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    done: dict[str, Any] | None = None
    exit_code: int | None = None


async def read_device(proc: asyncio.subprocess.Process, st: DeviceState) -> None:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if "sim_s" in msg:
            st.sim_s = max(st.sim_s, float(msg["sim_s"]))
        if msg.get("event") == "run":
            st.runs.append(msg)
        elif msg.get("event") == "done":
            st.done = msg
    st.exit_code = await proc.wait()


# ------------------------------------------------------------------------ the soak

def write_config(out: Path, link: Path, url: str, token: Path, speed: float) -> Path:
    d = EdgeConfig().sync
    cfg = out / "edge.toml"
    cfg.write_text(
        f'[store]\npath = "{out / "outbox.sqlite3"}"\n'
        f'[ops]\nmetrics_port = -1\n'
        f'[sync]\nurl = "{url}"\n'
        f'poll_interval_s = {max(0.2, d.poll_interval_s / speed * 10):.3f}\n'
        f'backoff_initial_s = {max(0.1, d.backoff_initial_s / speed * 10):.3f}\n'
        f'backoff_max_s = {max(1.0, d.backoff_max_s / speed):.3f}\n'
        f'breaker_reset_s = {max(1.0, d.breaker_reset_s / speed):.3f}\n'
        f'max_retry_after_s = 5.0\nrequest_timeout_s = 30.0\n'
        f'[auth]\nmode = "bearer"\ntoken_file = "{token}"\n'
        f'[[sources]]\ntype = "serial"\nport = "{link}"\ndevice = "soak-wearable"\n')
    return cfg


def backend_schedule(sim_h: float, hours: float) -> tuple[bool, int]:
    """(backend down now?, number of error bursts due by now)."""
    k = sim_h - OUTAGE_AT_H
    down = k >= 0 and (k % OUTAGE_EVERY_H) < OUTAGE_LEN_H and sim_h < hours
    first = min(BURST_AT_H, hours / 2)  # a short soak gets its burst too, mid-way
    bursts = 0 if sim_h < first else int((sim_h - first) // BURST_EVERY_H) + 1
    return down, bursts


async def soak(args: argparse.Namespace, out: Path, backend: TestBackend,
               cfg_path: Path, link: Path) -> dict[str, Any]:
    cfg = load_config(cfg_path)
    hours, speed = args.hours, args.speed
    admin = Admin(backend)
    fds_before = open_fds()
    targets_before = fd_targets()
    daemon = Daemon(cfg)
    gaps = GapCounter()
    daemon.pipeline.sinks.append(gaps)
    t0 = time.monotonic()
    daemon_task = asyncio.create_task(daemon.run(), name="soak:daemon")
    dev_err = open(out / "device.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.sim.soak", "--record", str(args.record), "--link", str(link),
        "--hours", str(hours), "--speed", str(speed), "--seed", str(args.seed),
        "--corrupt", str(args.corrupt), "--drop", str(args.drop),
        "--disconnect-prob", str(args.disconnect_prob),
        stdout=asyncio.subprocess.PIPE, stderr=dev_err, limit=1 << 20)
    dev = DeviceState()
    reader = asyncio.create_task(read_device(proc, dev), name="soak:device-reader")
    src = daemon.sources[0]
    timeline: list[dict[str, Any]] = []
    outages = bursts_sent = 0
    down = False
    timed_out = False
    max_wall = args.max_wall_s or (3.0 * hours * 3600.0 / (speed or UNPACED_SCALE) + 300.0)

    def sample() -> dict[str, Any]:
        st = daemon.pipeline.stats
        ob = daemon._outbox
        counts = ob.counts() if ob is not None else {"total": 0, "pending": 0}
        row = {"wall_s": round(time.monotonic() - t0, 2), "sim_h": round(dev.sim_s / 3600, 4),
               "rss_mb": round(rss_mb(), 2), "fds": open_fds(), "tasks": len(asyncio.all_tasks()),
               "blocks": st.blocks, "samples": st.samples, "gaps": st.gaps,
               "reconnects": src.stats.reconnects, "decode_errors": src.decoder.stats.errors,
               "outbox_total": counts["total"], "outbox_pending": counts["pending"],
               "backend_down": down, "runs": len(dev.runs)}
        timeline.append(row)
        if not args.json and not args.quiet:
            print(f"  {row['wall_s']:7.1f} s  sim {row['sim_h']:6.2f} h"
                  f"  rss {row['rss_mb']:6.1f} MB  fds {row['fds']:3d}  tasks {row['tasks']:2d}"
                  f"  blocks {row['blocks']:8d}"
                  f"  reconnects {row['reconnects']:3d}  pending {row['outbox_pending']:4d}"
                  f"{'  [backend down]' if down else ''}", flush=True)
        return row

    next_sample = time.monotonic() + args.sample_s
    try:
        while not reader.done():
            if daemon_task.done():
                daemon_task.result()  # the daemon must not end by itself: raise what it raised
                raise RuntimeError("the daemon stopped by itself")
            if time.monotonic() - t0 > max_wall:
                timed_out = True
                log.error("soak: wall-time limit of %.0f s reached; stopping", max_wall)
                break
            sim_h = dev.sim_s / 3600.0
            want_down, due = backend_schedule(sim_h, hours)
            if want_down != down:
                admin.faults(down=want_down)
                down = want_down
                outages += int(down)
                log.warning("soak: backend %s at %.2f simulated hours", "down" if down else "up",
                            sim_h)
            if due > bursts_sent and not down:
                admin.faults(*BURST)
                bursts_sent = due
            if time.monotonic() >= next_sample:
                sample()
                next_sample += args.sample_s
            await asyncio.sleep(0.2)
        end_row = sample()  # the device is done; the daemon still runs
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(reader, 10)
        dev_err.close()
        admin.clear_faults()
        down = False
        # wait until the pipeline has taken everything the source read (the device's last run
        # ended with an acknowledged barrier, so everything sent has been read)
        buffered = getattr(src, "_buffer", None)  # the serial source's hand-off queue
        for _ in range(200):
            if daemon.pipeline.queue_depth() == 0 and (buffered is None
                                                       or buffered.qsize() == 0):
                break
            await asyncio.sleep(0.05)
        daemon.stop()
        stop_t = time.monotonic()
        result = await asyncio.wait_for(daemon_task, cfg.sync.request_timeout_s + 60)
        stop_s = time.monotonic() - stop_t
    wall = time.monotonic() - t0
    fds_after = open_fds()
    targets_after = fd_targets()
    new_fds = list(targets_after)
    for t in targets_before:
        if t in new_fds:
            new_fds.remove(t)
    tasks_after = len(asyncio.all_tasks())

    # -- events: the outbox against the backend --------------------------------------------
    with Outbox(cfg.store.path) as ob:
        pending_after_stop = ob.counts()["pending"]
    delivered_after = 0
    if pending_after_stop:
        rep = await deliver_all(cfg.store.path, backend.url, cfg)
        delivered_after = rep.delivered
    with Outbox(cfg.store.path) as ob:
        events = ob.events()
        pending_final = ob.counts()["pending"]
    ids = [e.episode.id for e in events]
    counts = await count_on_backend(ids, cfg) if ids else {}
    lost = sorted(i for i, n in counts.items() if n == 0)
    dups = sorted(i for i, n in counts.items() if n > 1)
    bstats = admin.stats()

    # -- samples: the device's account against the pipeline's ------------------------------
    def fsum(kind: str, what: str) -> int:
        return sum(r["faults"].get(kind, {}).get(what, 0) for r in dev.runs)

    dropped, corrupted = fsum("drop", "samples"), fsum("corrupt", "samples")
    sent = sum(r["samples_sent"] for r in dev.runs) + dropped  # a dropped frame was "sent"
    processed = result.stats.samples
    mid = [r for r in dev.runs if r["disconnect_after"] is not None]
    replugs = len(dev.runs) - 1 + len(mid)  # run ends followed by a new run + mid-run re-plugs

    # -- memory, descriptors, tasks -------------------------------------------------------
    warm_at = 0.1 * (dev.sim_s / 3600.0)
    warm = next((r for r in timeline if r["sim_h"] >= warm_at), timeline[0])
    rss_growth = (end_row["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] * 100.0
    after_warm = [r for r in timeline if r["wall_s"] >= warm["wall_s"]]
    half = timeline[len(timeline) // 2]
    return {
        "simulated_hours": round(dev.sim_s / 3600.0, 3),
        "wall_seconds": round(wall, 1),
        "effective_speed": round(dev.sim_s / max(wall, 1e-9), 1),
        "command": " ".join(["python", "tools/soak.py", *sys.argv[1:]]),
        "timed_out": timed_out,
        "rss_mb": {"warmup": warm["rss_mb"], "end": end_row["rss_mb"],
                   "growth_pct": round(rss_growth, 2),
                   "max": max(r["rss_mb"] for r in timeline), "hwm": round(rss_mb("VmHWM"), 2),
                   "warmup_at_sim_h": warm["sim_h"],
                   "min_after_warmup": min(r["rss_mb"] for r in after_warm),
                   "max_after_warmup": max(r["rss_mb"] for r in after_warm)},
        "fds": {"min": min(r["fds"] for r in timeline), "max": max(r["fds"] for r in timeline),
                "end": end_row["fds"], "middle": half["fds"], "before_daemon": fds_before,
                "after_stop": fds_after, "opened_and_kept": new_fds},
        "tasks": {"min": min(r["tasks"] for r in timeline),
                  "max": max(r["tasks"] for r in timeline), "end": end_row["tasks"],
                  "middle": half["tasks"], "after_stop": tasks_after},
        "events": {"stored": len(ids), "delivered": sum(1 for n in counts.values() if n >= 1),
                   "lost": len(lost), "duplicated": len(dups), "lost_ids": lost[:20],
                   "duplicated_ids": dups[:20], "pending_after_stop": pending_after_stop,
                   "delivered_after_stop": delivered_after, "pending_final": pending_final,
                   "store_failures": result.store_failures,
                   "episodes_stored_by_sink": result.episodes_stored,
                   "backend_resources": bstats.get("resources", {}),
                   "backend_duplicates": len(bstats.get("duplicates", [])),
                   "backend_counters": bstats.get("counters", {})},
        "samples": {"sent": sent, "lost_injected": dropped + corrupted, "processed": processed,
                    "unaccounted": sent - dropped - corrupted - processed,
                    "not_sent_unplugged": fsum("disconnect", "samples"),
                    "unsent": fsum("unsent", "samples"),
                    "in_sequence_or_corrupt_gaps": gaps.samples.get("sequence", 0)
                    + gaps.samples.get("corrupt", 0)},
        "gaps": {"by_reason": gaps.by_reason, "samples_by_reason": gaps.samples,
                 "inserted_by_pipeline": result.stats.gaps_inserted},
        "faults": {"corrupt": fsum("corrupt", "n"), "dropped": fsum("drop", "n"),
                   "disconnects": replugs + 1, "disconnects_with_replug": replugs,
                   "mid_run_disconnects": len(mid), "backend_outages": outages,
                   "backend_error_bursts": bursts_sent,
                   "barriers_failed": sum(1 for r in mid if r["barrier_ok"] is False)},
        "runs": len(dev.runs),
        "runs_acknowledged": sum(1 for r in dev.runs if r["finished_ok"]),
        "device_exit_code": dev.exit_code,
        "reconnects": src.stats.reconnects,
        "decode_errors": src.decoder.stats.errors,
        "link": src.link.as_dict(),
        "stop_seconds": round(stop_s, 2),
        "processor_errors": result.stats.processor_errors,
        "episodes": {f"{k}/{p}": n for (k, p), n in result.stats.episodes.items()},
        "timeline": timeline,
    }


def summary(r: dict[str, Any]) -> str:
    rss, fds, tasks, ev, sm, ft = (r["rss_mb"], r["fds"], r["tasks"], r["events"], r["samples"],
                                   r["faults"])
    ok = (ev["lost"] == 0 and ev["duplicated"] == 0 and sm["unaccounted"] == 0
          and r["reconnects"] >= ft["disconnects_with_replug"] and not r["timed_out"])
    return "\n".join([
        f"soak: {r['simulated_hours']:.2f} simulated hours in {r['wall_seconds']:.0f} s "
        f"({r['effective_speed']:.0f} x real time), {r['runs']} device runs"
        + (" [TIMED OUT]" if r["timed_out"] else ""),
        f"RSS: {rss['warmup']:.1f} MB after warm-up ({rss['warmup_at_sim_h']:.1f} h), "
        f"{rss['end']:.1f} MB at the end: {rss['growth_pct']:+.2f} % (max {rss['max']:.1f} MB)",
        f"file descriptors: {fds['min']}-{fds['max']} (middle {fds['middle']}, end {fds['end']}; "
        f"{fds['before_daemon']} before the daemon, {fds['after_stop']} after it stopped)",
        f"asyncio tasks: {tasks['min']}-{tasks['max']} (middle {tasks['middle']}, "
        f"end {tasks['end']})",
        f"faults: {ft['corrupt']} corrupt + {ft['dropped']} dropped frames, {ft['disconnects']} "
        f"disconnects ({ft['mid_run_disconnects']} mid-run), {ft['backend_outages']} backend "
        f"outages, {ft['backend_error_bursts']} error bursts",
        f"gateway: {r['reconnects']} reconnects (re-plugs injected: "
        f"{ft['disconnects_with_replug']}), {r['decode_errors']} decode errors, "
        f"stop took {r['stop_seconds']:.1f} s",
        f"events: {ev['stored']} stored, {ev['delivered']} on the backend, {ev['lost']} lost, "
        f"{ev['duplicated']} duplicated ({ev['pending_after_stop']} pending after the stop)",
        f"samples: {sm['sent']} sent, {sm['lost_injected']} lost to injected faults, "
        f"{sm['processed']} processed: {sm['unaccounted']} unaccounted",
        "PASS" if ok else "FAIL",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=72.0, help="simulated hours (default 72)")
    ap.add_argument("--speed", type=float, default=200.0,
                    help="x real time (default 200; 0 = as fast as the gateway reads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", type=Path, default=DATA_DIR / "mitdb" / "208",
                    help="recording the wearable streams (default $EDGE_DATA_DIR/mitdb/208)")
    ap.add_argument("--out", type=Path, default=None,
                    help="directory for the outbox, logs and report (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--sample-s", type=float, default=5.0, help="wall seconds between samples")
    ap.add_argument("--corrupt", type=float, default=1e-3, help="P(corrupt SAMPLES frame)")
    ap.add_argument("--drop", type=float, default=5e-4, help="P(dropped SAMPLES frame)")
    ap.add_argument("--disconnect-prob", type=float, default=0.3,
                    help="fraction of device runs with a mid-run unplug")
    ap.add_argument("--max-wall-s", type=float, default=0.0,
                    help="stop after this many wall seconds (default 3x the expected + 300)")
    args = ap.parse_args(argv)
    if args.speed < 0 or args.hours <= 0:
        ap.error("--hours must be positive and --speed positive or 0")
    rec = args.record
    if not (rec.exists() or rec.with_suffix(".hea").exists()):
        ap.error(f"{rec}: recording not found (set EDGE_DATA_DIR or --record)")
    with contextlib.ExitStack() as stack:
        if args.out is None:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        else:
            out = args.out
            out.mkdir(parents=True, exist_ok=True)
            for name in ("outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm",
                         "backend.sqlite3", "backend.sqlite3-wal", "backend.sqlite3-shm"):
                (out / name).unlink(missing_ok=True)
        logging.basicConfig(filename=out / "soak.log", filemode="w", level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        counter = LogCounter()
        logging.getLogger().addHandler(counter)
        token = out / "token"
        token.write_text("soak-token-not-secret\n")
        token.chmod(0o600)
        link = out / "wearable"
        with start_test_backend(out / "backend.sqlite3", auth="bearer",
                                bearer_token_file=str(token)) as backend:
            cfg_path = write_config(out, link, backend.url, token, args.speed or UNPACED_SCALE)
            report = asyncio.run(soak(args, out, backend, cfg_path, link))
        report["log_warnings"] = counter.counts
        report["out"] = str(out) if args.out else None
        if args.out is not None:
            (out / "report.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(summary(report))
    ev, sm = report["events"], report["samples"]
    bad = ev["lost"] or ev["duplicated"] or sm["unaccounted"] or report["timed_out"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
