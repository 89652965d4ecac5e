"""The patient's own normal beats, as a check on the beat model's V labels.

A ventricular beat starts in the ventricles and so has a QRS complex unlike
the patient's normally conducted beats; a beat whose QRS matches those beats
closely is conducted, whatever its timing. The beat model, trained on few
patients, labels V some beats of unseen patients whose QRS is their usual one
(irregular RR in atrial fibrillation, large P or T waves). This check keeps a
median template of the patient's recent beats labelled N and overrules a V
label when the beat's QRS correlates with that template at
``normal_match_corr`` or more and has about the same amplitude.

The same principle is the core of template-matching beat classifiers: Hamilton
P, *Open Source ECG Analysis*, Computers in Cardiology 2002;29:101-104
(OSEA: beats matching the dominant normal template are normal); Moody GB,
Mark RG, *Development and evaluation of a 2-lead ECG analysis program*,
Computers in Cardiology 1982:39-44.

Measured before and after on the same records: ``docs/detection-changes.md``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge.config import BeatClassifierConfig
from edge.inference import features as F

#: The QRS part of a ``beat_waveform`` (BEAT_FS Hz, beat at BEAT_PRE_S): +/- 150 ms
#: around the detected beat covers a normal QRS (< 120 ms) with the detector's jitter.
_CENTRE = int(round(F.BEAT_PRE_S * F.BEAT_FS))
_HALF = int(round(0.150 * F.BEAT_FS))
QRS_PART = slice(_CENTRE - _HALF, _CENTRE + _HALF)
#: N beats needed before their template is used; until then, all recent beats.
MIN_NORMAL_BEATS = 4


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length waveforms (0 when one is flat)."""
    x = a - a.mean()
    y = b - b.mean()
    den = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y)) / den if den > 0 else 0.0


class NormalBeatTemplate:
    """Running template of the patient's normal beats (per stream; reset at a gap)."""

    version = "normal-match-1.0"

    def __init__(self, config: BeatClassifierConfig) -> None:
        self.config = config
        n = max(1, config.normal_template_beats)
        self._normal: deque[np.ndarray] = deque(maxlen=n)
        self._recent: deque[np.ndarray] = deque(maxlen=n)

    def reset(self) -> None:
        self._normal.clear()
        self._recent.clear()

    def _template(self) -> np.ndarray | None:
        beats = self._normal if len(self._normal) >= MIN_NORMAL_BEATS else self._recent
        return np.median(np.stack(beats), axis=0) if beats else None

    def match(self, waveform: np.ndarray) -> float | None:
        """Correlation of the beat's QRS with the template's, or None when it does not match.

        A match needs the correlation at ``normal_match_corr`` or more and the
        QRS amplitude within ``normal_match_amplitude_ratio`` (either way) of
        the template's.
        """
        template = self._template()
        if template is None or self.config.normal_match_corr > 1.0:
            return None
        w, t = waveform[QRS_PART], template[QRS_PART]
        ratio = float(np.ptp(w)) / max(float(np.ptp(t)), 1e-9)
        limit = self.config.normal_match_amplitude_ratio
        if not 1.0 / limit <= ratio <= limit:
            return None
        r = correlation(w, t)
        return r if r >= self.config.normal_match_corr else None

    def add(self, waveform: np.ndarray, label: str) -> None:
        """Remember a classified beat (its final label decides whether it is normal)."""
        self._recent.append(waveform)
        if label == "N":
            self._normal.append(waveform)
