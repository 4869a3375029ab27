"""Losses for training the acoustic codec: multi-scale mel L1 and the least-squares GAN losses.

All take waveforms ``(B, 1, L)`` or the discriminators' outputs (a list of ``(logits, features)``).
"""

from __future__ import annotations

import librosa
import torch
import torch.nn.functional as F
from torch import nn

from maskgct.codecs.discriminators import DiscriminatorOutput


class MelSpectrogram(nn.Module):
    """Magnitude mel spectrogram (Slaney mel filterbank from librosa, ``torch.stft``, centred, hop = n_fft/4).

    ``(B, 1, L)`` → ``(B, n_mels, frames)``.
    """

    def __init__(self, sample_rate: int, n_fft: int, n_mels: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = n_fft // 4
        filterbank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("filterbank", torch.from_numpy(filterbank).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )
        return self.filterbank @ spec.abs()


class MultiScaleMelLoss(nn.Module):
    """Sum over scales of ``L1(log10(max(mel(pred), eps)), log10(max(mel(target), eps)))`` (DAC's mel loss).

    Short windows judge timing, long ones pitch and harmonics; each scale has its own mel resolution.
    """

    def __init__(
        self,
        sample_rate: int,
        window_lengths: list[int],
        n_mels: list[int],
        clamp_eps: float = 1e-5,
    ):
        super().__init__()
        if len(window_lengths) != len(n_mels):
            raise ValueError("mel loss: window_lengths and n_mels must have the same length")
        self.clamp_eps = clamp_eps
        self.mels = nn.ModuleList(
            MelSpectrogram(sample_rate, n_fft, n_bands)
            for n_fft, n_bands in zip(window_lengths, n_mels, strict=True)
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = pred.new_zeros(())
        for mel in self.mels:
            pred_log = mel(pred).clamp(min=self.clamp_eps).log10()
            target_log = mel(target).clamp(min=self.clamp_eps).log10()
            loss = loss + F.l1_loss(pred_log, target_log)
        return loss


def discriminator_loss(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput]) -> torch.Tensor:
    """Least-squares GAN: push real logits to 1 and fake ones to 0, summed over discriminators."""
    loss = 0.0
    for (real_logits, _), (fake_logits, _) in zip(real, fake, strict=True):
        loss = loss + (1 - real_logits).pow(2).mean() + fake_logits.pow(2).mean()
    return loss


def generator_adversarial_loss(fake: list[DiscriminatorOutput]) -> torch.Tensor:
    """Least-squares GAN, generator side: push fake logits to 1."""
    loss = 0.0
    for fake_logits, _ in fake:
        loss = loss + (1 - fake_logits).pow(2).mean()
    return loss


def feature_matching_loss(real: list[DiscriminatorOutput], fake: list[DiscriminatorOutput]) -> torch.Tensor:
    """L1 between the discriminators' hidden features of real and generated audio (real ones detached)."""
    loss = 0.0
    for (_, real_features), (_, fake_features) in zip(real, fake, strict=True):
        for real_feature, fake_feature in zip(real_features, fake_features, strict=True):
            loss = loss + F.l1_loss(fake_feature, real_feature.detach())
    return loss
