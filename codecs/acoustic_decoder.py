"""The acoustic codec's decoder: 12-stage residual VQ and a Vocos vocoder (ConvNeXt backbone + ISTFT head).

* ``quantize(latent (B, C, T))`` → the residual VQ's outputs, codes ``(B, T, N)``;
* ``embed_codes(codes (B, T, N))`` → the embedding ``(B, C, T)`` (sum of the N stages' projected code rows);
* ``forward(embedding (B, C, T))`` → waveform ``(B, 1, T · hop)``.

Module names follow the official ``acoustic_codec/model_1.safetensors`` (``quantizer.quantizers.{q}...``,
``model.backbone...``, ``model.head.out``). The ISTFT window is a non-persistent buffer rebuilt from
``torch.hann_window``: the official file's ``model.head.istft.window`` is checked against it and dropped by
``amphion_state_dict``. (The reference registers the window as a persistent view of a longer storage, which is
why its decoder fails to load on CPU; ours owns its storage and never reads the window from a file.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from maskgct.checkpoint import CheckpointError
from maskgct.codecs.modules import ResidualVQ, VocosBackbone, fold_weight_norm

WINDOW_KEY = "model.head.istft.window"


@dataclass
class AcousticDecoderConfig:
    """Hyper-parameters of ``AcousticDecoder`` (defaults: the released model)."""

    in_channels: int = 256  # latent width (the encoder's out_channels)
    num_quantizers: int = 12
    codebook_size: int = 1024
    codebook_dim: int = 8
    quantizer_dropout: float = 0.5  # training: share of a batch that uses a random 1..N of the stages
    commitment: float = 0.25  # training: weight of the commitment loss
    codebook_loss_weight: float = 1.0  # training: weight of the codebook loss
    use_l2_normlize: bool = True  # nearest code on L2-normalised vectors (official spelling)
    vocos_dim: int = 512
    vocos_intermediate_dim: int = 4096
    vocos_num_layers: int = 30
    n_fft: int = 1920
    hop_size: int = 480

    @classmethod
    def from_amphion(cls, block: dict) -> AcousticDecoderConfig:
        """Build from the official ``model.acoustic_codec.decoder`` JSON block.

        The reference reads ``in_channels`` (plural, default 256); the released JSON spells it ``in_channel``,
        which the reference ignores, and so do we. Only the released variant (factorised VQ, Vocos, "same"
        padding) exists here; any other choice is refused rather than silently built differently.
        """
        required = {"quantizer_type": "fvq", "use_vocos": True, "padding": "same"}
        for key, value in required.items():
            if block.get(key, value) != value:
                raise ValueError(f"acoustic decoder: {key}={block[key]!r} is not supported (only {value!r})")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in block.items() if key in known})


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: ``(B, n_fft/2 + 1, T)`` complex → ``(B, T · hop)`` real.

    ``torch.istft`` only offers centre padding; "same" trims ``(n_fft − hop) / 2`` samples on each side of
    the overlap-added signal, so ``T`` frames give exactly ``T · hop`` samples.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        # clone(): hann_window returns a view of an (n_fft + 1)-long storage, which serialises badly.
        self.register_buffer("window", torch.hann_window(n_fft).clone(), persistent=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop_length) // 2
        frames = spec.shape[-1]
        frames_time = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        length = (frames - 1) * self.hop_length + self.n_fft
        fold = {"output_size": (1, length), "kernel_size": (1, self.n_fft), "stride": (1, self.hop_length)}
        signal = F.fold(frames_time, **fold)[:, 0, 0, pad:-pad]
        # Normalise by the overlap-added squared window (the COLA envelope), as torch.istft does.
        window_sq = self.window.square().expand(1, frames, -1).transpose(1, 2)
        envelope = F.fold(window_sq, **fold).squeeze()[pad:-pad]
        return signal / envelope


class ISTFTHead(nn.Module):
    """Linear to log-magnitude and phase, then ISTFT. ``(B, T, dim) -> (B, T · hop)``."""

    def __init__(self, dim: int, n_fft: int, hop_length: int):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        # The clip keeps an untrained or diverging model from producing inf.
        mag = torch.exp(log_mag).clip(max=1e2)
        spec = mag * (torch.cos(phase) + 1j * torch.sin(phase))
        return self.istft(spec)


class Vocos(nn.Module):
    """ConvNeXt backbone + ISTFT head. ``(B, C, T) -> (B, T · hop)``."""

    def __init__(self, config: AcousticDecoderConfig):
        super().__init__()
        self.backbone = VocosBackbone(
            config.in_channels, config.vocos_dim, config.vocos_intermediate_dim, config.vocos_num_layers
        )
        self.head = ISTFTHead(config.vocos_dim, config.n_fft, config.hop_size)
        nn.init.trunc_normal_(self.head.out.weight, std=0.02)
        nn.init.zeros_(self.head.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class AcousticDecoder(nn.Module):
    """Residual VQ of the encoder latent and the vocoder from its embedding back to a 24 kHz waveform."""

    config_class = AcousticDecoderConfig

    def __init__(self, config: AcousticDecoderConfig):
        super().__init__()
        self.config = config
        self.quantizer = ResidualVQ(
            input_dim=config.in_channels,
            num_quantizers=config.num_quantizers,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            quantizer_dropout=config.quantizer_dropout,
            commitment=config.commitment,
            codebook_loss_weight=config.codebook_loss_weight,
            use_l2_normlize=config.use_l2_normlize,
        )
        self.model = Vocos(config)

    @property
    def hop_length(self) -> int:
        return self.config.hop_size

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → waveform ``(B, 1, T · hop)``."""
        return self.model(embedding).unsqueeze(1)

    def quantize(self, latent: torch.Tensor):
        """``latent (B, C, T)`` → ``(quantized (B, C, T), codes (B, T, N), commit_loss (B,),
        codebook_loss (B,), all_quantized (N, B, C, T))``; in training, with quantizer dropout."""
        quantized, codes, commit_loss, codebook_loss, all_quantized = self.quantizer(latent)
        return quantized, codes.permute(1, 2, 0), commit_loss, codebook_loss, all_quantized

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes (B, T, N)`` with N ≤ num_quantizers → embedding ``(B, C, T)`` from the first N stages."""
        return self.quantizer.embed_codes(codes.permute(2, 0, 1))


def amphion_state_dict(state: dict[str, torch.Tensor], n_fft: int, source: str) -> dict[str, torch.Tensor]:
    """The official decoder state dict → ours: fold weight norm, check the stored ISTFT window, drop it."""
    state = dict(state)
    window = state.pop(WINDOW_KEY, None)
    if window is None:
        raise CheckpointError(f"{source}: missing tensor {WINDOW_KEY!r}")
    hann = torch.hann_window(n_fft)
    if window.shape != hann.shape or not torch.equal(window.to(device="cpu", dtype=hann.dtype), hann):
        raise CheckpointError(f"{source}: {WINDOW_KEY} is not a periodic Hann window of length {n_fft}")
    return fold_weight_norm(state)
