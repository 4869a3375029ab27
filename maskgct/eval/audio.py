"""Speech input for the metrics: 16 kHz mono float32, refusing silence (no metric means anything there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskgct.audio import AudioError, load_audio, to_mono

# The rate of the metric models (whisper ASR, the speaker encoders, DNSMOS), not of any MaskGCT network.
SAMPLE_RATE = 16000
# A peak below -60 dBFS: nothing a listener or a model could hear as speech.
SILENCE_PEAK = 1e-3


def load_speech(
    source: str | Path | np.ndarray, sample_rate: int = SAMPLE_RATE, name: str | None = None
) -> np.ndarray:
    """A path (any rate) or Float(L,) audio at ``sample_rate`` → Float(L,) at 16 kHz; AudioError if silent."""
    if isinstance(source, (str, Path)):
        wav = load_audio(source, SAMPLE_RATE)
        name = name or str(source)
    else:
        name = name or "audio"
        wav = to_mono(source, sample_rate, SAMPLE_RATE, name)
    if float(np.abs(wav).max()) < SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak below -60 dBFS)")
    return wav
