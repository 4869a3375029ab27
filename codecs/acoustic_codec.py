"""The acoustic codec: 24 kHz mono waveform ⇄ ``N`` layers of 50 Hz tokens (12 × 1024 codes in the release).

``AcousticCodec(encoder, decoder)`` joins ``AcousticEncoder`` and ``AcousticDecoder``:

* ``encode(wav (B, 1, L)) -> codes (B, T, N)`` (``T ≈ L / 480``);
* ``decode(codes (B, T, N')) -> wav (B, 1, T · 480)``, with ``N' ≤ N`` (fewer stages give coarser audio);
* ``save_pretrained(dir)`` / ``from_pretrained(dir)``: ``acoustic_encoder.{json,safetensors}`` and
  ``acoustic_decoder.{json,safetensors}`` in the ``maskgct.checkpoint`` format (``maskgct.convert`` writes
  them from the official ``acoustic_codec/model.safetensors`` and ``model_1.safetensors``).

``load_acoustic_codec(dir)`` loads whichever acoustic codec a folder holds: this one, or the mel codec
(``maskgct.codecs.mel_codec.MelCodec``, same contract) that the CPU recipes train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from maskgct.checkpoint import CheckpointError, load_network, save_network
from maskgct.codecs.acoustic_decoder import AcousticDecoder, AcousticDecoderConfig
from maskgct.codecs.acoustic_encoder import AcousticEncoder, AcousticEncoderConfig
from maskgct.constants import SAMPLE_RATE

if TYPE_CHECKING:  # mel_codec imports this module
    from maskgct.codecs.mel_codec import MelCodec

ENCODER_NAME = "acoustic_encoder"
DECODER_NAME = "acoustic_decoder"


@dataclass
class AcousticCodecConfig:
    """Both halves' configs (dicts are accepted, as read back from a checkpoint JSON)."""

    encoder: AcousticEncoderConfig = field(default_factory=AcousticEncoderConfig)
    decoder: AcousticDecoderConfig = field(default_factory=AcousticDecoderConfig)

    def __post_init__(self):
        if isinstance(self.encoder, dict):
            self.encoder = AcousticEncoderConfig(**self.encoder)
        if isinstance(self.decoder, dict):
            self.decoder = AcousticDecoderConfig(**self.decoder)
        if self.encoder.out_channels != self.decoder.in_channels:
            raise ValueError(
                f"acoustic codec: encoder out_channels {self.encoder.out_channels} != "
                f"decoder in_channels {self.decoder.in_channels}"
            )
        if self.encoder.hop_length != self.decoder.hop_size:
            raise ValueError(
                f"acoustic codec: encoder hop {self.encoder.hop_length} != "
                f"decoder hop_size {self.decoder.hop_size}"
            )


class AcousticCodec(nn.Module):
    """Encoder + residual VQ + vocoder.

    Built from its two networks, ``AcousticCodec(encoder, decoder)``, or from an ``AcousticCodecConfig``
    alone (fresh weights), which is how ``maskgct.checkpoint.load_network`` rebuilds one saved whole.
    """

    config_class = AcousticCodecConfig
    sample_rate = SAMPLE_RATE
    reads_semantic = False  # its decoder reads codes only (``MelCodec`` may read semantic tokens too)

    def __init__(
        self, encoder: AcousticEncoder | AcousticCodecConfig, decoder: AcousticDecoder | None = None
    ):
        super().__init__()
        if isinstance(encoder, AcousticCodecConfig):
            if decoder is not None:
                raise TypeError("AcousticCodec(config) takes no decoder")
            encoder, decoder = AcousticEncoder(encoder.encoder), AcousticDecoder(encoder.decoder)
        self.encoder = encoder
        self.decoder = decoder
        self.config = AcousticCodecConfig(encoder.config, decoder.config)

    @property
    def hop_length(self) -> int:
        return self.encoder.hop_length

    @property
    def num_quantizers(self) -> int:
        return self.decoder.config.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.decoder.config.codebook_size

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav (B, 1, L)`` at 24 kHz, raw amplitude → codes ``(B, T, N)`` (int64)."""
        check_waveform(wav, self.hop_length)
        _, codes, _, _, _ = self.decoder.quantize(self.encoder(wav))
        return codes

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes (B, T, N')``, ``N' ≤ N`` → waveform ``(B, 1, T · hop)`` at 24 kHz."""
        check_codes(codes, self.num_quantizers, self.codebook_size)
        return self.decoder(self.decoder.embed_codes(codes))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``acoustic_encoder.*`` and ``acoustic_decoder.*`` into ``directory``."""
        save_network(self.encoder, directory, ENCODER_NAME)
        save_network(self.decoder, directory, DECODER_NAME)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> AcousticCodec:
        """Load a folder written by ``save_pretrained`` (eval mode)."""
        encoder = load_network(directory, ENCODER_NAME, device)
        decoder = load_network(directory, DECODER_NAME, device)
        if not isinstance(encoder, AcousticEncoder) or not isinstance(decoder, AcousticDecoder):
            raise CheckpointError(f"{directory}: {ENCODER_NAME}/{DECODER_NAME} are not an acoustic codec")
        return cls(encoder, decoder).eval()


def codec_networks(directory: str | Path) -> tuple[str, ...]:
    """The names of the codec networks saved in ``directory``: ``("acoustic_encoder", "acoustic_decoder")``
    for an ``AcousticCodec``, ``("mel_codec",)`` for a ``MelCodec``; ``CheckpointError`` if it holds
    neither or both (a folder must say unambiguously which codec made its tokens)."""
    from maskgct.codecs.mel_codec import NAME as MEL_NAME

    directory = Path(directory)
    kinds = [
        names
        for names in ((ENCODER_NAME, DECODER_NAME), (MEL_NAME,))
        if (directory / f"{names[0]}.json").is_file()
    ]
    if not kinds:
        raise CheckpointError(
            f"{directory}: acoustic codec not found: expected acoustic_encoder.json + acoustic_decoder.json "
            "(AcousticCodec) or mel_codec.json (MelCodec), each with its .safetensors"
        )
    if len(kinds) > 1:
        raise CheckpointError(
            f"{directory}: holds both an AcousticCodec (acoustic_encoder.json) and a MelCodec "
            "(mel_codec.json); keep only the one that made its tokens"
        )
    return kinds[0]


def load_acoustic_codec(
    directory: str | Path, device: str | torch.device = "cpu"
) -> AcousticCodec | MelCodec:
    """The acoustic codec saved in ``directory``, an ``AcousticCodec`` or a ``MelCodec`` (see
    ``codec_networks``), in eval mode on ``device``. Both have the same ``encode``/``decode`` contract."""
    from maskgct.codecs.mel_codec import MelCodec

    if codec_networks(directory) == (ENCODER_NAME, DECODER_NAME):
        return AcousticCodec.from_pretrained(directory, device)
    return MelCodec.from_pretrained(directory, device)


def check_waveform(wav: torch.Tensor, hop_length: int) -> None:
    """Raise ``ValueError`` unless ``wav`` is a finite ``(B, 1, L)`` float batch with ``L ≥ hop_length``."""
    if wav.ndim != 3 or wav.shape[1] != 1:
        raise ValueError(f"expected a waveform batch (B, 1, L), got shape {tuple(wav.shape)}")
    if not wav.is_floating_point():
        raise ValueError(f"expected a float waveform, got {wav.dtype}")
    if wav.shape[-1] < hop_length:
        raise ValueError(
            f"audio too short: {wav.shape[-1]} samples, the codec needs at least one frame "
            f"({hop_length} samples at {SAMPLE_RATE} Hz)"
        )
    if not torch.isfinite(wav).all():
        raise ValueError("audio contains NaN or infinite samples")


def check_codes(codes: torch.Tensor, num_quantizers: int, codebook_size: int) -> None:
    """Raise ``ValueError`` unless ``codes`` is an integer ``(B, T, N')`` batch of valid code ids."""
    if codes.ndim != 3 or codes.shape[1] == 0 or not 1 <= codes.shape[2] <= num_quantizers:
        raise ValueError(
            f"expected codes (B, T, N) with T ≥ 1 and 1 ≤ N ≤ {num_quantizers}, got {tuple(codes.shape)}"
        )
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"expected integer codes, got {codes.dtype}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes out of range: ids must lie in [0, {codebook_size})")
