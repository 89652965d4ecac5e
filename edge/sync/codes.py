"""Standard codes for every episode kind the gateway emits (pure data, no I/O).

Each episode Observation carries, beside its local kind code
(``FhirConfig.code_system``), a SNOMED CT clinical finding and, where one can be
cited, an IEEE 11073-10101 (MDC) event code, so a backend can search for "all AF
episodes" with a standard code (``Observation?code=http://snomed.info/sct|49436004``).

MDC codes are written as the PHD IG does: the 32-bit code in decimal,
``partition * 65536 + term`` (``3::3128`` -> ``199736``); the table in
``docs/fhir-episode-codes.md`` shows both forms. Sources:

* ``DICOM-3230``: DICOM PS3.16 CID 3230 "ECG Finding" (SNOMED CT concepts), as
  published in FHIR form by the DICOM terminology IG (``dicom-cid-3230-ECGFinding``);
* ``DICOM-3038``: DICOM PS3.16 CID 3038 "Pattern Event" (IEEE 11073-10101 event
  codes, partition 3, reprinted from the IEEE table);
* ``DICOM-3039``: DICOM PS3.16 CID 3039 "Device-related and Environment-related
  Event" (IEEE 11073-10101 technical event codes);
* ``DICOM-3689``: DICOM PS3.16 CID 3689 "ECG Global Waveform Duration" (IEEE
  11073-10102 ECG measurement codes);
* ``IVR``: the Swiss IVR emergency-medicine FHIR IG (respiration findings value set,
  vital-sign interpretation examples);
* ``SNOMED``: SNOMED CT International, the concept's fully specified name.

A kind with no code that could be cited is listed with the reason; the test
``tests/test_fhir_codes.py`` checks this module against the docs table and against
the kinds the detectors emit.
"""

from __future__ import annotations

from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
MDC = "urn:iso:std:iso:11073:10101"


def mdc_code(partition: int, term: int) -> str:
    """An MDC ``partition::term`` code as the decimal 32-bit code FHIR uses (PHD IG)."""
    return str(partition * 65536 + term)


@dataclass(frozen=True)
class Concept:
    code: str
    display: str
    source: str


@dataclass(frozen=True)
class EpisodeCodes:
    """The standard codings of one episode kind (None = none cited; ``note`` says why)."""

    snomed: Concept | None
    mdc: Concept | None
    mdc_ref: str = ""  # the MDC reference id / partition::term form, for the docs table
    note: str = ""


#: the RR intervals an episode was decided on: MDC_ECG_TIME_PD_RR_GL, 2::16000
#: ("RR time period, global", DICOM PS3.16 CID 3689 "ECG Global Waveform Duration",
#: from the IEEE 11073-10102 table)
RR_INTERVAL = Concept(mdc_code(2, 16000), "MDC_ECG_TIME_PD_RR_GL", "DICOM-3689")

_AF = Concept("49436004", "Atrial fibrillation", "DICOM-3230")
_VT = Concept("25569003", "Ventricular tachycardia", "DICOM-3230")
_VPC = Concept("251175005", "Ventricular premature contraction", "DICOM-3230")
_ASYSTOLE = Concept("397829000", "Asystole", "SNOMED")
_ARRHYTHMIA = Concept("698247007", "Cardiac arrhythmia", "SNOMED")
_TACHY = Concept("3424008", "Tachycardia", "IVR")
_BRADY = Concept("48867003", "Bradycardia", "IVR")
_TACHYPNEA = Concept("271823003", "Tachypnea", "IVR")
_BRADYPNEA = Concept("86684002", "Bradypnea", "IVR")
_HYPOXEMIA = Concept("389087006", "Hypoxemia", "SNOMED")
_FEVER = Concept("386661006", "Fever", "SNOMED")
_HYPOTHERMIA = Concept("386689009", "Hypothermia", "SNOMED")
_NEWS2 = Concept("1104051000000101", "Royal College of Physicians NEWS2 (National Early "
                 "Warning Score 2) total score", "SNOMED")

_EVT_ASYSTOLE = Concept(mdc_code(3, 3076), "MDC_EVT_ECG_ASYSTOLE", "DICOM-3038")
_EVT_AF = Concept(mdc_code(3, 3128), "MDC_EVT_ECG_ATR_FIB", "DICOM-3038")
_EVT_ARRHY = Concept(mdc_code(3, 3266), "MDC_EVT_ECG_ARRHY", "DICOM-3038")
_EVT_DESAT = Concept(mdc_code(3, 3246), "MDC_EVT_DESAT", "DICOM-3038")
_EVT_ARTIFACT = Concept(mdc_code(3, 432), "MDC_EVT_WAVE_ARTIF_ERR", "DICOM-3039")

_NO_SINUS = ("MDC has only sinus brady/tachycardia event codes (MDC_EVT_ECG_SINUS_*); the "
             "rate rule does not establish sinus rhythm, so no MDC code")
_DEVIATION = ("no finding concept for 'outside the personal baseline'; the Observation "
              "carries the vital sign's LOINC + MDC measurement codes (vital-signs profile)")

#: every episode kind the detectors emit -> its standard codes
EPISODE_CODES: dict[str, EpisodeCodes] = {
    "atrial_fibrillation": EpisodeCodes(_AF, _EVT_AF, "3::3128"),
    "asystole": EpisodeCodes(_ASYSTOLE, _EVT_ASYSTOLE, "3::3076"),
    "pause": EpisodeCodes(_ARRHYTHMIA, _EVT_ARRHY, "3::3266", note=(
        "no cited concept for a pause as such: coded as the general arrhythmia finding and "
        "arrhythmia event")),
    "tachycardia": EpisodeCodes(_TACHY, None, note=_NO_SINUS),
    "bradycardia": EpisodeCodes(_BRADY, None, note=_NO_SINUS),
    "ventricular_run": EpisodeCodes(_VT, None, note=(
        ">= 3 ventricular beats at >= 100 bpm is ventricular tachycardia (non-sustained "
        "below 30 s); no MDC event code for it could be cited")),
    "frequent_pvcs": EpisodeCodes(_VPC, None, note="no MDC event code could be cited"),
    "desaturation": EpisodeCodes(_HYPOXEMIA, _EVT_DESAT, "3::3246"),
    "desaturation_relative": EpisodeCodes(None, _EVT_DESAT, "3::3246", note=(
        "a drop from the personal baseline need not be hypoxemia: MDC desaturation event "
        "only")),
    "fever": EpisodeCodes(_FEVER, None, note="no MDC event code could be cited"),
    "hypothermia": EpisodeCodes(_HYPOTHERMIA, None, note="no MDC event code could be cited"),
    "tachypnoea": EpisodeCodes(_TACHYPNEA, None, note="no MDC event code could be cited"),
    "bradypnoea": EpisodeCodes(_BRADYPNEA, None, note="no MDC event code could be cited"),
    "hr_deviation": EpisodeCodes(None, None, note=_DEVIATION),
    "spo2_deviation": EpisodeCodes(None, None, note=_DEVIATION),
    "resp_deviation": EpisodeCodes(None, None, note=_DEVIATION),
    "temperature_deviation": EpisodeCodes(None, None, note=_DEVIATION),
    "news2_escalation": EpisodeCodes(_NEWS2, None, note=(
        "sent as the NEWS2 survey Observation + RiskAssessment; a partial, sensor-only score "
        "keeps the local code only (it must not be presented as NEWS2)")),
    "ecg_signal_inadequate": EpisodeCodes(None, _EVT_ARTIFACT, "3::432", note=(
        "a technical event (the signal could not support a pause/asystole call), not a "
        "clinical finding: the MDC waveform-artifact event, no SNOMED CT concept")),
}

#: kinds whose standard code comes from the vital sign they summarise (LOINC + MDC)
VITAL_CODED_KINDS = frozenset({"hr_deviation", "spo2_deviation", "resp_deviation",
                               "temperature_deviation"})


def standard_codings(kind: str) -> list[dict[str, str]]:
    """The SNOMED CT and MDC codings of an episode kind (empty for an unknown kind)."""
    codes = EPISODE_CODES.get(kind)
    if codes is None:
        return []
    out = []
    if codes.snomed is not None:
        out.append({"system": SNOMED, "code": codes.snomed.code,
                    "display": codes.snomed.display})
    if codes.mdc is not None:
        out.append({"system": MDC, "code": codes.mdc.code, "display": codes.mdc.display})
    return out
