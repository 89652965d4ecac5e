"""``edge sync check URL``: does this FHIR backend accept what the gateway sends?

Sends a synthetic test bundle, never patient data: a Patient holding only a random
test identifier (system ``urn:vitals-edge:sync-check``), two test Devices and one
episode Observation per coded episode kind (their SNOMED CT / MDC codes beside the
local code), mapped exactly as sync maps real episodes. Then:

1. accepted? the transaction's HTTP answer; when refused, each Observation is sent
   alone to find which kinds (and so which codes) the server rejects;
2. conditional create? the same bundle again must match every resource (no 201);
3. patient link? an Observation read back must refer to ``Patient/<id>`` of the
   bundle's Patient (resolved), not to a search URL or a ``urn:uuid``;
4. request compression: whether the server accepts a gzip body (415 = no);
5. the configured patient link (``existing`` or a literal reference): whether the
   server holds that Patient (a read-only search);
6. cleanup: the test resources are deleted again where the server allows DELETE.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from edge.config import EdgeConfig
from edge.errors import BundleRejectedError, SyncError
from edge.sync.codes import EPISODE_CODES, VITAL_CODED_KINDS, standard_codings
from edge.sync.fhir import patient_reference, transaction_bundle
from edge.sync.transport import Uploader
from edge.types import Episode, Priority, StreamKey

CHECK_SYSTEM = "urn:vitals-edge:sync-check"
_T0 = 1_700_000_000.0


@dataclass
class CheckReport:
    url: str
    server: str = ""
    accepted: bool = False
    status: str = ""
    entries: int = 0
    conditional_create: bool | None = None
    patient_link: str = ""
    patient_resolved: bool = False
    rejected_codes: dict[str, list[str]] = field(default_factory=dict)
    gzip: str = ""
    configured_patient: str = ""
    configured_patient_ok: bool = False
    cleanup: str = ""

    @property
    def ok(self) -> bool:
        return (self.accepted and bool(self.conditional_create) and self.patient_resolved
                and self.configured_patient_ok)


def check_kinds() -> list[str]:
    """The episode kinds with standard codes (one test Observation each)."""
    return [k for k in EPISODE_CODES
            if k not in VITAL_CODED_KINDS and k != "news2_escalation"]


def _episodes(run: str) -> list[Episode]:
    return [Episode(kind=k, key=StreamKey("vitals-edge-sync-check", "ecg"), onset=_T0 + 60 * i,
                    offset=_T0 + 60 * i + 30, onset_index=0, offset_index=1,
                    priority=Priority.INFO, detector="edge sync check", detector_version="1",
                    id=f"{run}.{k}")
            for i, k in enumerate(check_kinds())]


def _check_config(cfg: EdgeConfig, url: str, run: str) -> EdgeConfig:
    fhir = replace(cfg.fhir, patient_identifier_system=CHECK_SYSTEM,
                   patient_identifier_value=f"test-{run}", patient_link="create",
                   patient_reference="", gateway_id="vitals-edge-sync-check-gateway",
                   event_identifier_system=f"{CHECK_SYSTEM}:event", send_evidence=False)
    return replace(cfg, fhir=fhir, sync=replace(cfg.sync, url=url, gzip=False))


async def sync_check(url: str, cfg: EdgeConfig) -> CheckReport:
    run = uuid.uuid4().hex[:12]
    ccfg = _check_config(cfg, url, run)
    episodes = _episodes(run)
    bundle = transaction_bundle([(e, 1) for e in episodes], ccfg.fhir).bundle
    rep = CheckReport(url=url, entries=len(bundle["entry"]))
    async with Uploader(ccfg) as up, httpx.AsyncClient(
            auth=up._auth, verify=up._verify, timeout=30.0,
            headers={"Accept": "application/fhir+json"}) as client:
        rep.server = await _server_name(client, up.url)
        bundles = [bundle]
        try:
            responses = [await up.send(bundle)]
            rep.status = "HTTP 200, every entry 200/201"
        except BundleRejectedError as exc:
            # one Observation per bundle: which kinds (codes) does the server refuse?
            bundles = [transaction_bundle([(e, 1)], ccfg.fhir).bundle for e in episodes]
            responses, rep.rejected_codes = await _one_by_one(up, episodes, bundles)
            if rep.rejected_codes or not responses:
                rep.status = str(exc)
                rep.configured_patient, rep.configured_patient_ok = \
                    await _configured_patient(client, up.url, cfg)
                await _cleanup(client, up.url, _locations(responses))
                return rep
            rep.status = (f"refused as one bundle of {rep.entries} entries ({exc}) but "
                          f"accepted with one episode per bundle: the server limits "
                          f"transaction size; the gateway learns the limit by itself, "
                          f"or lower [sync] batch_events")
        rep.accepted = True
        locations = _locations(responses)
        try:
            again = await _send_gzip_probe(ccfg, bundles, rep)
            statuses = [str(e.get("response", {}).get("status", "")) for r in again
                        for e in r.get("entry", [])]
            rep.conditional_create = not any(s.startswith("201") for s in statuses)
        except SyncError as exc:
            rep.conditional_create = False
            rep.status += f"; the resend failed ({exc})"
        await _patient_link(client, up.url, locations, rep)
        rep.configured_patient, rep.configured_patient_ok = \
            await _configured_patient(client, up.url, cfg)
        rep.cleanup = await _cleanup(client, up.url, locations)
    return rep


def _locations(responses: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in responses:
        for e in r.get("entry", []):
            loc = "/".join(str(e.get("response", {}).get("location", "")).split("/")[:2])
            if loc and loc not in out:
                out.append(loc)
    return out


async def _server_name(client: httpx.AsyncClient, base: str) -> str:
    try:
        r = await client.get(f"{base}/metadata")
        cap = r.json() if r.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return "(no CapabilityStatement)"
    sw = cap.get("software", {}) if isinstance(cap, dict) else {}
    name = " ".join(str(x) for x in (sw.get("name"), sw.get("version")) if x)
    return f"FHIR {cap.get('fhirVersion', '?')}" + (f", {name}" if name else "")


async def _send_gzip_probe(ccfg: EdgeConfig, bundles: list[dict[str, Any]],
                           rep: CheckReport) -> list[dict[str, Any]]:
    """Resend the bundles gzip-compressed (the Uploader falls back to plain JSON on 415)."""
    gz = replace(ccfg, sync=replace(ccfg.sync, gzip=True))
    async with Uploader(gz) as up:
        out = [await up.send(b) for b in bundles]
        rep.gzip = ("accepted: [sync] gzip = true saves bandwidth" if up.gzip else
                    "refused (HTTP 415): keep [sync] gzip = false")
    return out


async def _one_by_one(up: Uploader, episodes: list[Episode], bundles: list[dict[str, Any]]
                      ) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Send each test Observation alone: which kinds, and so which codes, are refused."""
    responses: list[dict[str, Any]] = []
    rejected: dict[str, list[str]] = {}
    for e, b in zip(episodes, bundles, strict=True):
        try:
            responses.append(await up.send(b))
        except BundleRejectedError as exc:
            codes = [f"{c['system']}|{c['code']}" for c in standard_codings(e.kind)]
            rejected[e.kind] = codes + [f"({exc})"]
    return responses, rejected


async def _patient_link(client: httpx.AsyncClient, base: str, locations: list[str],
                        rep: CheckReport) -> None:
    patient_id = next((loc for loc in locations if loc.startswith("Patient/")), "")
    obs = next((loc for loc in locations if loc.startswith("Observation/")), "")
    if not obs:
        rep.patient_link = "no Observation location in the transaction-response"
        return
    try:
        r = await client.get(f"{base}/{obs}")
        subject = str(r.json().get("subject", {}).get("reference", "")) if r.status_code == 200 \
            else ""
    except (httpx.HTTPError, ValueError):
        subject = ""
    if not subject:
        rep.patient_link = "could not read the Observation back"
        return
    tail = subject.split("/_history")[0]
    rep.patient_resolved = bool(patient_id) and tail.endswith(patient_id)
    rep.patient_link = (f"resolved: Observation.subject -> {patient_id} (the bundle's Patient)"
                        if rep.patient_resolved else
                        f"NOT resolved: Observation.subject is {subject!r}")


async def _configured_patient(client: httpx.AsyncClient, base: str, cfg: EdgeConfig
                              ) -> tuple[str, bool]:
    """What the configured patient link will meet on this server, and whether it will work."""
    f = cfg.fhir
    if not f.patient_reference and f.patient_link == "create":
        return ("patient_link = create: each bundle creates the identifier-only Patient "
                "if the server has none (checked above)", True)
    ref = patient_reference(f)["reference"]
    try:
        if f.patient_reference:
            r = await client.get(f"{base}/{ref}")
            return ((f"{ref}: found", True) if r.status_code == 200 else
                    (f"{ref}: NOT found (HTTP {r.status_code}); every bundle would fail", False))
        r = await client.get(f"{base}/Patient", params={
            "identifier": f"{f.patient_identifier_system}|{f.patient_identifier_value}",
            "_summary": "count"})
        total = int(r.json().get("total", -1)) if r.status_code == 200 else -1
    except (httpx.HTTPError, ValueError):
        return "patient_link = existing: could not search Patient", False
    if total == 1:
        return "patient_link = existing: the server holds exactly one such Patient", True
    what = "no" if total == 0 else ("several" if total > 1 else "an unknown number of")
    return (f"patient_link = existing: the server holds {what} Patient with the configured "
            f"identifier; a strict server refuses every bundle (use patient_link = create "
            f"or register the Patient)", False)


async def _cleanup(client: httpx.AsyncClient, base: str, locations: list[str]) -> str:
    # Observations first, then the devices and the Patient they refer to
    refs = sorted(locations, key=lambda r: 0 if r.startswith("Observation/") else 1)
    removed = 0
    for ref in refs:
        try:
            r = await client.delete(f"{base}/{ref}")
            removed += r.status_code in (200, 202, 204)
        except httpx.HTTPError:
            pass
    if removed == len(refs):
        return f"removed the {removed} test resources"
    return (f"removed {removed} of {len(refs)} test resources; the rest carry identifier "
            f"system {CHECK_SYSTEM}[:event] and no patient data")


def report_lines(rep: CheckReport) -> list[str]:
    """The report in plain words, one line per question."""
    lines = [f"backend             {rep.url} ({rep.server})"]
    if not rep.accepted:
        lines.append(f"accepted            NO: {rep.status}")
        if rep.rejected_codes:
            for kind, codes in rep.rejected_codes.items():
                lines.append(f"rejected codes      {kind}: {' '.join(codes)}")
        else:
            lines.append("rejected codes      none singled out: every kind was accepted alone "
                         "(the refusal is about the bundle, the Patient or the Devices)")
        lines.append(f"configured patient  {rep.configured_patient}")
        return lines
    lines += [
        f"accepted            yes: a transaction of {rep.entries} entries (synthetic Patient, "
        f"2 Devices, {rep.entries - 3} coded episode Observations), {rep.status}",
        "conditional create  " + ("yes: the resend matched every resource, nothing created "
                                  "twice" if rep.conditional_create else
                                  "NO: the resend created resources again (duplicates)"),
        f"patient link        {rep.patient_link}",
        "rejected codes      none (the server accepted every SNOMED CT and MDC coding)",
        f"gzip requests       {rep.gzip}",
        f"configured patient  {rep.configured_patient}",
        f"cleanup             {rep.cleanup}",
    ]
    return lines
