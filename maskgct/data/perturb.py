"""Timbre perturbation: the same words and timing in a different-sounding voice, for S2A training against
timbre leakage (voice conversion, issue 17).

S2A learns to put the prompt's voice on semantic tokens. If those tokens also carry some of the utterance's
own timbre, a model trained on them copies it through, and a converted voice keeps a trace of the source
speaker. Training on the tokens of a timbre-perturbed copy (targets still the original's acoustic codes)
makes the speaker's timbre something the tokens cannot provide, so S2A has to take it from the prompt.

The perturbation changes the three cues a speaker is recognised by, and keeps what the tokens should keep
(the phones and their timing, so the perturbed copy has exactly the original's samples and token frames):

1. **pitch**: shifted by 3-5 semitones (``librosa.effects.pitch_shift``: a phase-vocoder stretch, then a
   resampling back to the original length), which moves the formants by the same ratio;
2. **formants** (vocal-tract length): each frame's spectral envelope is warped along frequency so that
   the formants end up shifted by a ratio of 1.15-1.3, while the harmonics stay where step 1 put them.
   The envelope is the "true envelope", cepstral smoothing iterated until it runs over the harmonic peaks:
   plain smoothing runs through the valleys between them too and hardly moved a 200 Hz voice's formants;
3. **spectral colour**: a random equaliser of peaking biquads (±9 dB), as recording channels and voice
   quality differ.

Pitch and formants move in the same direction, drawn by a coin: a higher voice with a shorter vocal tract
or a lower one with a longer tract, as between speakers. Resampling alone would do both at once but change
the duration, which the tokens must not; drawing the two directions independently made unnatural voices
that whisper tiny.en misheard twice as often (WER 0.20 against 0.11 on 12 synthetic utterances, wider
ranges). With these ranges a resemblyzer embedding moves about halfway to another speaker's (cosine to
the original 0.65, range 0.55-0.76, where other utterances of the same voice give 0.91 and other voices
0.51) while tiny.en still gets most words (WER 0.13, the originals 0.06), on 6 sentences of piper_joe,
kokoro_alpha and kokoro_kumo. A minimum magnitude keeps every utterance away from an identity
transform. The draw is deterministic per utterance: the generator is seeded from ``(seed, crc32(utterance
id))``, so a resumed or parallel extraction writes the same tokens.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import librosa
import numpy as np
from scipy.signal import sosfilt

N_FFT = 1024  # 64 ms at 16 kHz: resolves harmonics of voices down to ~60 Hz
HOP = 256
# The pitch shifter's phase vocoder: librosa's default 2048-sample window (128 ms at 16 kHz) smears speech
# so much that whisper tiny.en lost a third of the words (WER 0.37); 32 ms windows gave 0.09 (originals 0.02).
PITCH_N_FFT = 512
PITCH_HOP = 128
# Cepstral coefficients kept for the envelope: below the pitch period of a 400 Hz voice at 16 kHz (40
# samples), so the envelope follows formants, not harmonics.
LIFTER = 30
# True-envelope iterations: 50 put a single formant within 5% of its target for voices of 90-250 Hz.
ENVELOPE_ITERATIONS = 50
MAX_GAIN_DB = 24.0  # the envelope ratio is clipped: near-silent bins must not be boosted into noise


@dataclass
class PerturbConfig:
    """Ranges of the random draw: magnitudes uniform in each range, one coin for the direction of both."""

    semitones: tuple[float, float] = (3.0, 5.0)
    formant_ratio: tuple[float, float] = (1.15, 1.3)
    eq_bands: int = 6
    eq_gain_db: float = 9.0
    eq_hz: tuple[float, float] = (100.0, 6000.0)  # band centres, log-uniform
    eq_q: tuple[float, float] = (0.7, 2.0)


@dataclass(frozen=True)
class PerturbParams:
    """One utterance's draw: pitch shift, formant ratio and the equaliser's ``(centre Hz, gain dB, Q)``."""

    semitones: float
    formant_ratio: float
    eq: tuple[tuple[float, float, float], ...]


def utterance_rng(utt: str, seed: int = 0) -> np.random.Generator:
    """The generator of utterance ``utt``: crc32, not ``hash()``, which differs between processes."""
    return np.random.default_rng([seed, zlib.crc32(utt.encode("utf-8"))])


def draw(rng: np.random.Generator, config: PerturbConfig | None = None) -> PerturbParams:
    config = config or PerturbConfig()
    sign = 1.0 if rng.random() < 0.5 else -1.0
    semitones = sign * rng.uniform(*config.semitones)
    formant_ratio = float(rng.uniform(*config.formant_ratio) ** sign)
    centres = np.exp(rng.uniform(*np.log(config.eq_hz), config.eq_bands))
    gains = rng.uniform(-config.eq_gain_db, config.eq_gain_db, config.eq_bands)
    qs = rng.uniform(*config.eq_q, config.eq_bands)
    eq = tuple((float(f), float(g), float(q)) for f, g, q in zip(centres, gains, qs, strict=True))
    return PerturbParams(float(semitones), formant_ratio, eq)


def _smooth(log_mag: np.ndarray) -> np.ndarray:
    """Cepstral smoothing of log magnitudes (F, N) along frequency: the first LIFTER coefficients kept."""
    cepstrum = np.fft.irfft(log_mag, axis=0)  # (N_FFT, N), real and even
    cepstrum[LIFTER : N_FFT - LIFTER + 1] = 0.0
    return np.fft.rfft(cepstrum, axis=0).real


def true_envelope(log_mag: np.ndarray) -> np.ndarray:
    """The envelope (F, N) over the harmonic peaks of log magnitudes (F, N): each pass lifts the spectrum to
    at least the previous envelope and smooths it again (Röbel and Rodet's true envelope)."""
    envelope = _smooth(log_mag)
    for _ in range(ENVELOPE_ITERATIONS):
        envelope = _smooth(np.maximum(log_mag, envelope))
    return envelope


def warp_formants(wav: np.ndarray, ratio: float) -> np.ndarray:
    """Move the spectral envelope of Float(L,) by ``ratio`` along frequency, keeping the harmonics."""
    spec = librosa.stft(wav, n_fft=N_FFT, hop_length=HOP)  # (F, N)
    envelope = true_envelope(np.log(np.abs(spec) + 1e-7))
    # The warped envelope at bin k is the original's at k / ratio: a formant at f moves to f * ratio.
    source = np.arange(envelope.shape[0]) / ratio
    low = np.clip(np.floor(source).astype(int), 0, envelope.shape[0] - 1)
    high = np.clip(low + 1, 0, envelope.shape[0] - 1)
    frac = np.clip(source - low, 0.0, 1.0)[:, None]
    warped = envelope[low] * (1.0 - frac) + envelope[high] * frac
    limit = MAX_GAIN_DB / 20.0 * np.log(10.0)
    gain = np.exp(np.clip(warped - envelope, -limit, limit))
    return librosa.istft(spec * gain, hop_length=HOP, n_fft=N_FFT, length=wav.shape[0])


def peaking_sos(centre: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One peaking-EQ biquad (the Audio EQ Cookbook's formulas) as a second-order section (1, 6)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * centre / sample_rate
    alpha = np.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * amp, -2.0 * np.cos(w0), 1.0 - alpha * amp])
    a = np.array([1.0 + alpha / amp, -2.0 * np.cos(w0), 1.0 - alpha / amp])
    return np.concatenate([b / a[0], a / a[0]])[None]


def apply(wav: np.ndarray, sample_rate: int, params: PerturbParams) -> np.ndarray:
    """Perturb mono Float(L,) with ``params`` → Float32(L,), same length and peak level."""
    wav = np.asarray(wav, dtype=np.float32)
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak == 0.0:
        return wav.copy()
    out = librosa.effects.pitch_shift(
        wav,
        sr=sample_rate,
        n_steps=params.semitones,
        res_type="soxr_hq",
        n_fft=PITCH_N_FFT,
        hop_length=PITCH_HOP,
    )
    # pitch_shift moved the formants by the pitch ratio; warp them on to the drawn formant ratio.
    out = warp_formants(out, params.formant_ratio / 2.0 ** (params.semitones / 12.0))
    usable = [band for band in params.eq if band[0] < 0.45 * sample_rate]  # centres below Nyquist
    if usable:
        out = sosfilt(np.concatenate([peaking_sos(f, g, q, sample_rate) for f, g, q in usable]), out)
    # Same peak as the original: the equaliser's boosts must not clip, nor its cuts change the level much.
    out = out * (peak / max(float(np.abs(out).max()), 1e-9))
    return out.astype(np.float32)


def perturb_timbre(
    wav: np.ndarray, sample_rate: int, utt: str, seed: int = 0, config: PerturbConfig | None = None
) -> np.ndarray:
    """``utt``'s perturbed copy of Float(L,) → Float32(L,), the same for the same ``(utt, seed)``."""
    return apply(wav, sample_rate, draw(utterance_rng(utt, seed), config))
