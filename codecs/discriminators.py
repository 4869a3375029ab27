"""Discriminators for training the acoustic codec as a GAN (the released code ships none).

* ``PeriodDiscriminator`` (HiFi-GAN's MPD): the waveform folded into ``(L / p, p)`` and judged by 2-D
  convolutions that only mix along time, so each one sees one periodic structure;
* ``ResolutionDiscriminator`` (multi-resolution STFT): 2-D convolutions over a magnitude spectrogram;
* ``Discriminators``: all of them; ``forward(wav (B, 1, L))`` returns one ``(logits, features)`` pair per
  sub-discriminator, features being every hidden activation (for the feature-matching loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LEAKY_SLOPE = 0.1

DiscriminatorOutput = tuple[torch.Tensor, list[torch.Tensor]]


@dataclass
class DiscriminatorConfig:
    """Sizes of the discriminators (defaults: HiFi-GAN's MPD and Vocos' multi-resolution discriminator)."""

    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    period_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    # (n_fft, hop) per resolution; the window is n_fft long.
    resolutions: list[list[int]] = field(default_factory=lambda: [[2048, 512], [1024, 256], [512, 128]])
    resolution_channels: int = 32


def judge(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> DiscriminatorOutput:
    """Run leaky-ReLU ``convs`` then ``post`` on x: ``(logits, every conv's output)``."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x, features


class PeriodDiscriminator(nn.Module):
    """``(B, 1, L)`` → logits ``(B, 1, L', period)`` and hidden features."""

    def __init__(self, period: int, channels: list[int]):
        super().__init__()
        self.period = period
        widths = [1, *channels]
        # Stride 3 along time in all but the last conv, as in HiFi-GAN; kernels (5, 1) never mix phases.
        strides = [3] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (stride, 1), padding=(2, 0)))
            for c_in, c_out, stride in zip(widths[:-1], widths[1:], strides, strict=True)
        )
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        length = wav.shape[-1]
        if length % self.period:
            wav = F.pad(wav, (0, self.period - length % self.period), mode="reflect")
        x = wav.view(wav.shape[0], 1, -1, self.period)
        return judge(self.convs, self.post, x)


class ResolutionDiscriminator(nn.Module):
    """Magnitude STFT ``(B, 1, frames, bins)`` of ``(B, 1, L)`` → logits and hidden features."""

    def __init__(self, n_fft: int, hop_length: int, channels: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Stride 2 along frequency only: time resolution is kept, the wide kernels see harmonics.
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
            ]
        )
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        spec = torch.stft(
            wav.squeeze(1), self.n_fft, self.hop_length, window=self.window, center=True, return_complex=True
        )
        x = spec.abs().transpose(1, 2).unsqueeze(1)
        return judge(self.convs, self.post, x)


class Discriminators(nn.Module):
    """All period and resolution discriminators. ``(B, 1, L)`` → list of ``(logits, features)``."""

    config_class = DiscriminatorConfig

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(period, config.period_channels) for period in config.periods]
            + [
                ResolutionDiscriminator(n_fft, hop, config.resolution_channels)
                for n_fft, hop in config.resolutions
            ]
        )

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        return [discriminator(wav) for discriminator in self.discriminators]
