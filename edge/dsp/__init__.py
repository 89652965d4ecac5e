"""Signal processing for waveform channels (QRS detection, filtering)."""

from edge.dsp.qrs import QrsConfig, QrsDetector, ecg_peaks

__all__ = ["QrsConfig", "QrsDetector", "ecg_peaks"]
