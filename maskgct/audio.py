"""Audio input: any file or array → float32 mono at the rate a model needs, with clear errors.

Resampling uses librosa's default (soxr_hq), as the reference does, so features match it.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """Audio that cannot be used: missing, unreadable, empty or not finite."""


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read ``path`` as mono float32 ``(L,)`` at ``sample_rate`` (channels averaged, then resampled)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        wav, _ = librosa.load(path, sr=sample_rate, mono=True)
    except Exception as err:  # soundfile/audioread raise many types for corrupt input
        raise AudioError(f"cannot read audio file {path}: {type(err).__name__}: {err}") from None
    return check_audio(wav, str(path))


def to_mono(wav: np.ndarray, orig_sample_rate: int, sample_rate: int, name: str = "audio") -> np.ndarray:
    """An array ``(L,)``, ``(C, L)`` or ``(L, C)`` (C ≤ 8) → mono float32 ``(L',)`` at ``sample_rate``."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        channel_axis = 0 if wav.shape[0] <= 8 and wav.shape[0] < wav.shape[1] else 1
        wav = wav.mean(axis=channel_axis)
    elif wav.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D or 2-D array, got shape {wav.shape}")
    wav = check_audio(wav, name)
    if orig_sample_rate != sample_rate:
        wav = librosa.resample(wav, orig_sr=orig_sample_rate, target_sr=sample_rate).astype(np.float32)
    return wav


def check_audio(wav: np.ndarray, name: str) -> np.ndarray:
    if wav.size == 0:
        raise AudioError(f"{name}: audio is empty")
    if not np.isfinite(wav).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return wav.astype(np.float32, copy=False)


def audio_info(path: str | Path) -> tuple[int, int, float]:
    """``(sample_rate, channels, seconds)`` of a file without decoding it."""
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioError(f"cannot read audio file {path}: {err}") from None
    return info.samplerate, info.channels, info.duration
