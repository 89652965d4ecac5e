"""Episodes and vitals map to valid FHIR R4 resources as the spec notes prescribe."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from fhir.resources.R4B.bundle import Bundle

from edge.config import FhirConfig
from edge.store.outbox import Evidence
from edge.sync.fhir import (
    episode_observation,
    full_url,
    news2_resources,
    to_json,
    transaction_bundle,
    vital_observation,
)
from edge.types import Episode, Priority, StreamKey, VitalKind, VitalSample, VitalSummary

CFG = FhirConfig(patient_identifier_system="urn:example:pseudonym",
                 patient_identifier_value="p-42", gateway_id="4C-4E-49-12-34-56-FF-FF")


def tachy(**kw) -> Episode:
    base = dict(kind="tachycardia", key=StreamKey("00-1C-05-04-00-00-78-25", "ecg"),
                onset=1_715_938_260.0, offset=1_715_938_560.0, onset_index=0,
                offset_index=108000, priority=Priority.WARNING, detector="rate_rules",
                detector_version="1.0.0",
                summary=VitalSummary(VitalKind.HEART_RATE, "/min", 121.0, 140.0, 131.0))
    return Episode(**{**base, **kw})


def test_an_episode_about_heart_rate_is_a_vital_signs_observation():
    o = to_json(episode_observation(tachy(), 1, CFG))
    assert "http://hl7.org/fhir/StructureDefinition/heartrate" in o["meta"]["profile"]
    assert o["category"][0]["coding"][0]["code"] == "vital-signs"
    codes = {(c["system"], c["code"]) for c in o["code"]["coding"]}
    assert ("http://loinc.org", "8867-4") in codes
    assert ("urn:iso:std:iso:11073:10101", "147842") in codes
    assert o["valueQuantity"] == {"value": 131, "unit": "/min",
                                  "system": "http://unitsofmeasure.org", "code": "/min"}
    assert o["effectivePeriod"] == {"start": "2024-05-17T09:31:00Z",
                                    "end": "2024-05-17T09:36:00Z"}
    assert o["subject"]["reference"] == full_url("Patient", "urn:example:pseudonym", "p-42")
    assert o["device"]["reference"].startswith("urn:uuid:")
    assert o["interpretation"][0]["coding"][0]["code"] == "H"
    ext = {e["url"]: e for e in o["extension"]}
    assert ext["urn:vitals-edge:fhir:alarm-priority"]["valueCode"] == "warning"
    assert "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice" in ext


def test_an_ongoing_urgent_alarm_is_preliminary_critical_and_open_ended():
    e = Episode(kind="asystole", key=StreamKey("w", "ecg"), onset=1e9, offset=1e9,
                onset_index=0, offset_index=0, priority=Priority.URGENT, detector="r",
                detector_version="1", status="ongoing")
    o = to_json(episode_observation(e, 1, CFG))
    assert o["status"] == "preliminary" and "end" not in o["effectivePeriod"]
    assert o["interpretation"][0]["coding"][0]["code"] == "AA"
    assert o["valueQuantity"]["code"] == "s"


def test_the_first_revision_is_a_conditional_create_and_later_ones_a_conditional_update():
    e = tachy()
    first = transaction_bundle([(e, 1)], CFG).bundle["entry"][-1]["request"]
    assert first == {"method": "POST", "url": "Observation",
                     "ifNoneExist": f"identifier=urn:vitals-edge:event|{e.id}"}
    second = transaction_bundle([(replace(e, offset=e.offset + 60), 2)], CFG)
    assert second.bundle["entry"][-1]["request"] == {
        "method": "PUT", "url": f"Observation?identifier=urn:vitals-edge:event|{e.id}"}


def test_devices_are_conditional_creates_on_their_system_id():
    b = transaction_bundle([(tachy(), 1)], CFG).bundle
    devices = [x for x in b["entry"] if x["resource"]["resourceType"] == "Device"]
    assert [d["request"]["ifNoneExist"] for d in devices] == [
        "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|4C-4E-49-12-34-56-FF-FF",
        "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|00-1C-05-04-00-00-78-25"]
    assert devices[0]["resource"]["type"]["coding"][0]["code"] == "531981"  # gateway
    assert devices[1]["resource"]["identifier"][0]["type"]["coding"][0]["code"] == "SYSID"


def test_a_resent_bundle_is_byte_identical_and_validates():
    events = [(tachy(), 1), (tachy(kind="bradycardia", priority=Priority.URGENT), 3)]
    a = json.dumps(transaction_bundle(events, CFG).bundle, sort_keys=True)
    b = json.dumps(transaction_bundle(events, CFG).bundle, sort_keys=True)
    assert a == b
    Bundle.model_validate(json.loads(a))


def test_evidence_goes_as_bounded_sampled_data_only_when_configured():
    e = tachy()
    ev = Evidence(e.id, 360.0, "mV", np.sin(np.arange(360 * 60) / 20).astype(np.float32))
    off = transaction_bundle([(e, 1)], CFG, {e.id: ev}).bundle
    assert all("valueSampledData" not in x["resource"] for x in off["entry"])
    cfg = replace(CFG, send_evidence=True, max_evidence_samples=2500)
    plan = transaction_bundle([(e, 1)], cfg, {e.id: ev})
    sd = [x for x in plan.bundle["entry"] if "valueSampledData" in x["resource"]]
    assert len(sd) == 1
    data = sd[0]["resource"]["valueSampledData"]
    assert len(data["data"].split()) <= 2500 and len(json.dumps(sd[0])) < 50_000
    assert data["period"] > 1000 / 360  # decimated, so the period grew
    obs = plan.bundle["entry"][-1]["resource"]
    assert obs["derivedFrom"][0]["reference"] == sd[0]["fullUrl"]


def test_news2_is_a_survey_observation_and_a_risk_assessment():
    e = tachy(kind="news2", summary=None, details={
        "score": 6, "risk": "medium", "components": {"pulse": 2, "resp_rate": 3, "temperature": 1}})
    obs, risk = news2_resources(e, 1, CFG)
    o, r = to_json(obs), to_json(risk)
    assert o["code"]["coding"][0]["code"] == "1104051000000101" and o["valueInteger"] == 6
    assert o["category"][0]["coding"][0]["code"] == "survey"
    assert {c["code"]["coding"][0]["code"] for c in o["component"]} >= {"1104351000000103"}
    assert r["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "moderate"
    partial = replace(e, details={**e.details, "partial": True})
    pobs, prisk = news2_resources(partial, 1, CFG)
    assert prisk is None and "not NEWS2" in to_json(pobs)["code"]["text"]


def test_vitals_use_ucum_codes_and_special_values_become_data_absent_reasons():
    s = VitalSample(StreamKey("w", "spo2"), VitalKind.SPO2, 88.0, "%", 0.0, 0.0)
    o = to_json(vital_observation(s, 1_715_938_260.0, CFG, period_s=5.0))
    assert [c["code"] for c in o["code"]["coding"]] == ["2708-6", "59408-5", "150456"]
    assert o["effectivePeriod"]["end"] == "2024-05-17T09:31:05Z"
    hr = VitalSample(StreamKey("w", "ecg"), VitalKind.HEART_RATE, 72.0, "bpm", 0.0, 0.0)
    assert to_json(vital_observation(hr, 0.0, CFG))["valueQuantity"]["code"] == "/min"
    nan = replace(hr, value=float("nan"))
    o = to_json(vital_observation(nan, 0.0, CFG))
    assert "valueQuantity" not in o
    assert o["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"


def test_a_news2_escalation_from_the_detector_maps_to_news2():
    from edge.detect.news2 import news2_score

    result = news2_score(respiration_rate=26, spo2=90, on_oxygen=True, systolic_bp=98,
                         pulse=125, consciousness="A", temperature=39.3)
    e = tachy(kind="news2_escalation", summary=None, priority=Priority.URGENT,
              details={"news2": result.to_dict(), "band": "high"})
    plan = transaction_bundle([(e, 1)], CFG)
    kinds = [x["resource"]["resourceType"] for x in plan.bundle["entry"]]
    assert kinds[-2:] == ["Observation", "RiskAssessment"]
    obs = plan.bundle["entry"][-2]["resource"]
    assert obs["valueInteger"] == 14 and obs["code"]["coding"][0]["code"] == "1104051000000101"
    risk = plan.bundle["entry"][-1]["resource"]
    assert risk["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "high"


def test_every_episode_carries_its_standard_codes_beside_the_local_code():
    af = to_json(episode_observation(tachy(kind="atrial_fibrillation", summary=None), 1, CFG))
    codes = [(c["system"], c["code"]) for c in af["code"]["coding"]]
    assert codes == [("http://snomed.info/sct", "49436004"),
                     ("urn:iso:std:iso:11073:10101", "199736"),  # MDC 3::3128
                     ("urn:vitals-edge:episode-kind", "atrial_fibrillation")]
    # a vital-sign episode keeps LOINC + MDC measurement codes and gains the finding
    t = to_json(episode_observation(tachy(), 1, CFG))
    assert [c["code"] for c in t["code"]["coding"]] == ["8867-4", "147842", "3424008",
                                                        "tachycardia"]


def test_the_patient_is_a_conditional_create_with_the_identifier_only_by_default():
    b = transaction_bundle([(tachy(), 1)], CFG).bundle
    first = b["entry"][0]
    assert first["resource"] == {"resourceType": "Patient", "identifier": [
        {"system": "urn:example:pseudonym", "value": "p-42"}]}
    assert first["request"] == {"method": "POST", "url": "Patient",
                                "ifNoneExist": "identifier=urn:example:pseudonym|p-42"}
    subjects = {x["resource"]["subject"]["reference"] for x in b["entry"]
                if "subject" in x["resource"]}
    assert subjects == {first["fullUrl"]}


def test_an_existing_patient_is_referenced_by_identifier_and_never_created():
    cfg = replace(CFG, patient_link="existing")
    b = transaction_bundle([(tachy(), 1)], cfg).bundle
    assert "Patient" not in {x["resource"]["resourceType"] for x in b["entry"]}
    assert b["entry"][-1]["resource"]["subject"] == {
        "reference": "Patient?identifier=urn:example:pseudonym|p-42"}
    literal = transaction_bundle([(tachy(), 1)], replace(CFG, patient_reference="Patient/9"))
    assert literal.bundle["entry"][-1]["resource"]["subject"] == {"reference": "Patient/9"}
    assert "Patient" not in {x["resource"]["resourceType"] for x in literal.bundle["entry"]}


def _component(o: dict, code: str) -> dict:
    found = [c for c in o["component"]
             if any(cd["code"] == code for cd in c["code"]["coding"])]
    assert len(found) == 1, f"one {code} component expected"
    return found[0]


def test_an_af_episode_carries_the_rr_intervals_beats_quality_and_model_it_was_decided_on():
    af = Episode(kind="af", key=StreamKey("w", "ecg"), onset=1e9, offset=1e9 + 60,
                 onset_index=0, offset_index=21600, priority=Priority.WARNING, detector="af",
                 detector_version="2.0.0",
                 details={"model": "af_rr", "model_version": "2.0.0", "rules": "2.0.0",
                          "format": "onnx", "precision": "int8",
                          "usable_signal_fraction": 0.93,
                          "evidence": {"rr_ms": [612, 845, 530], "rr_end_index": [1, 2, 3],
                                       "beat_labels": "NNNV", "rr_excluded_ectopic": 1}})
    o = to_json(episode_observation(af, 1, CFG))
    rr = _component(o, "rr-intervals")
    assert rr["valueString"] == "612 845 530"
    # MDC_ECG_TIME_PD_RR_GL, partition 2, term 16000 (DICOM CID 3689)
    assert {"system": "urn:iso:std:iso:11073:10101", "code": "147072",
            "display": "MDC_ECG_TIME_PD_RR_GL"} in rr["code"]["coding"]
    assert _component(o, "beat-classes")["valueString"] == "NNNV"
    assert _component(o, "rr-excluded")["valueInteger"] == 1
    assert _component(o, "usable-signal")["valueQuantity"]["value"] == 93
    assert _component(o, "usable-signal")["valueQuantity"]["code"] == "%"
    assert o["method"]["text"] == "af 2.0.0 (model af_rr 2.0.0, onnx int8; rules 2.0.0)"


def test_a_quality_downgraded_alarm_says_so_and_how_good_the_signal_was():
    e = tachy(priority=Priority.INFO,
              details={"mean_quality": 0.41, "downgraded_from": "warning"})
    o = to_json(episode_observation(e, 1, CFG))
    assert _component(o, "signal-quality")["valueQuantity"]["value"] == 0.41
    assert _component(o, "downgraded-from")["valueString"] == "warning"
    assert o["method"]["text"] == "rate_rules 1.0.0"


def test_an_episode_without_decision_evidence_gets_no_empty_components():
    o = to_json(episode_observation(tachy(), 1, CFG))
    codes = {cd["code"] for c in o["component"] for cd in c["code"]["coding"]}
    assert not codes & {"rr-intervals", "beat-classes", "usable-signal", "signal-quality"}
