"""The acoustic codec's encoder: DAC-style strided convolutions from a 24 kHz waveform to 50 Hz latents.

``AcousticEncoder(wav: (B, 1, L)) -> latent (B, out_channels, T)`` with ``T ≈ L / hop`` and
``hop = prod(up_ratios)`` (3·4·5·8 = 480 in the release). Module names follow the official checkpoint
(``block.{n}.block.{m}.block.{k}...``), so the released ``acoustic_codec/model.safetensors`` loads after
folding its weight-norm pairs (``maskgct.codecs.modules.fold_weight_norm``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from maskgct.codecs.modules import Snake1d, WNConv1d


@dataclass
class AcousticEncoderConfig:
    """Hyper-parameters of ``AcousticEncoder`` (defaults: the released model)."""

    d_model: int = 96  # channels after the input convolution; each block doubles them
    up_ratios: list[int] = field(default_factory=lambda: [3, 4, 5, 8])  # block strides, product = hop
    out_channels: int = 256  # latent width, the residual VQ's input
    use_tanh: bool = False  # the release has no tanh on the latent

    @classmethod
    def from_amphion(cls, block: dict) -> AcousticEncoderConfig:
        """Build from the official ``model.acoustic_codec.encoder`` block (missing keys: release values)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in block.items() if key in known})

    @property
    def hop_length(self) -> int:
        return math.prod(self.up_ratios)


class ResidualUnit(nn.Module):
    """``x + conv1x1(snake(conv7_dilated(snake(x))))``, length kept. ``(B, C, T) -> (B, C, T)``."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(channels),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Snake1d(channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), Snake, then a strided conv that doubles the channels.

    ``(B, channels // 2, T) -> (B, channels, ⌊(T + 2⌈s/2⌉ − 2s) / s⌋ + 1)``.
    """

    def __init__(self, channels: int, stride: int):
        super().__init__()
        half = channels // 2
        self.block = nn.Sequential(
            ResidualUnit(half, dilation=1),
            ResidualUnit(half, dilation=3),
            ResidualUnit(half, dilation=9),
            Snake1d(half),
            WNConv1d(half, channels, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class AcousticEncoder(nn.Module):
    """Waveform ``(B, 1, L)`` → latent ``(B, out_channels, T)`` (``sample_rate / hop_length`` frames/s)."""

    config_class = AcousticEncoderConfig

    def __init__(self, config: AcousticEncoderConfig):
        super().__init__()
        self.config = config
        channels = config.d_model
        layers: list[nn.Module] = [WNConv1d(1, channels, kernel_size=7, padding=3)]
        for stride in config.up_ratios:
            channels *= 2
            layers.append(EncoderBlock(channels, stride))
        layers += [Snake1d(channels), WNConv1d(channels, config.out_channels, kernel_size=3, padding=1)]
        if config.use_tanh:
            layers.append(nn.Tanh())
        self.block = nn.Sequential(*layers)
        self.apply(_init_conv)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.block(wav)


def _init_conv(module: nn.Module) -> None:
    # The reference initialises every conv with a truncated normal (std 0.02) and zero bias.
    if isinstance(module, nn.Conv1d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
