"""The semantic codec (RepCodec with downsample_scale 1): normalised features ``(B, T, C)`` → Vocos ConvNeXt
encoder → one factorised, L2-normalised VQ stage → code ids ``(B, T)``.

The decoder (Vocos, the encoder's mirror) only exists to train the codec; tokenising builds the codec
without it (``with_decoder=False``), and its tensors are then never read from disk.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from maskgct.checkpoint import CheckpointError, load_strict, network_config, read_safetensors
from maskgct.codecs.modules import ResidualVQ, VocosBackbone

CODEC_NAME = "semantic_codec"


@dataclass
class SemanticCodecConfig:
    """Semantic codec hyper-parameters; the first six are the official ``model.semantic_codec`` block."""

    codebook_size: int = 8192
    hidden_size: int = 1024
    codebook_dim: int = 8
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12
    commitment: float = 0.15
    codebook_loss_weight: float = 1.0
    # Tokenising needs only the encoder and the quantizer; the decoder (half the weights) is for training.
    with_decoder: bool = True

    @classmethod
    def from_amphion(cls, block: dict, with_decoder: bool = True) -> SemanticCodecConfig:
        """Build from the official JSON block ``model.semantic_codec`` (extra keys are ignored)."""
        names = ("codebook_size", "hidden_size", "codebook_dim", "vocos_dim", "vocos_intermediate_dim")
        missing = [n for n in (*names, "vocos_num_layers") if n not in block]
        if missing:
            raise ValueError(f"semantic_codec config lacks {missing[0]!r}")
        return cls(**{n: int(block[n]) for n in (*names, "vocos_num_layers")}, with_decoder=with_decoder)


@dataclass
class SemanticCodecOutput:
    reconstruction: torch.Tensor  # (B, T, C) decoded features
    codes: torch.Tensor  # (B, T) code ids
    commit_loss: torch.Tensor  # (B,) commitment loss (already weighted)
    codebook_loss: torch.Tensor  # (B,) codebook loss (already weighted)


class SemanticCodec(nn.Module):
    """RepCodec: features ``(B, T, C)`` → Vocos encoder → one factorised VQ stage → Vocos decoder.

    Module names follow the official checkpoint (``encoder.0`` backbone, ``encoder.1`` projection,
    ``quantizer.quantizers.0``, ``decoder.*``) so its state dict loads after folding the weight norm.
    """

    config_class = SemanticCodecConfig

    def __init__(self, config: SemanticCodecConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = nn.Sequential(
            VocosBackbone(c.hidden_size, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_num_layers),
            nn.Linear(c.vocos_dim, c.hidden_size),
        )
        self.quantizer = ResidualVQ(
            c.hidden_size, 1, c.codebook_size, c.codebook_dim, 0.0, c.commitment, c.codebook_loss_weight, True
        )
        self.decoder = None
        if c.with_decoder:
            self.decoder = nn.Sequential(
                VocosBackbone(c.hidden_size, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_num_layers),
                nn.Linear(c.vocos_dim, c.hidden_size),
            )

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, C)`` normalised w2v-BERT features → ``(B, C, T)`` latent before the VQ."""
        return self.encoder(features.transpose(1, 2)).transpose(1, 2)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C)`` → ``(codes (B, T), quantized (B, C, T))`` as the official ``quantize``."""
        quantized, codes, _, _, _ = self.quantizer(self.encode(features))
        return codes[0], quantized

    def forward(self, features: torch.Tensor) -> SemanticCodecOutput:
        """Encode, quantise and decode ``(B, T, C)`` features (training)."""
        if self.decoder is None:
            raise RuntimeError("this semantic codec was built without its decoder (with_decoder=False)")
        quantized, codes, commit_loss, codebook_loss, _ = self.quantizer(self.encode(features))
        return SemanticCodecOutput(self.decoder(quantized), codes[0], commit_loss, codebook_loss)

    @classmethod
    def load(cls, directory: str | Path, name: str = CODEC_NAME, with_decoder: bool = False) -> SemanticCodec:
        """Load a codec saved with ``maskgct.checkpoint.save_network`` (optionally without its decoder)."""
        directory = Path(directory)
        meta_path = directory / f"{name}.json"
        if not meta_path.is_file():
            raise CheckpointError(f"{meta_path} not found")
        try:
            config = network_config(
                SemanticCodecConfig, json.loads(meta_path.read_text())["config"], str(meta_path)
            )
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{meta_path}: not a semantic codec description ({err})") from None
        if with_decoder and not config.with_decoder:
            raise CheckpointError(f"{meta_path}: this codec was saved without its decoder")
        codec = cls(dataclasses.replace(config, with_decoder=with_decoder))
        weights = directory / f"{name}.safetensors"
        state = read_safetensors(weights, None if with_decoder else lambda k: not k.startswith("decoder."))
        return load_strict(codec, state, str(weights)).eval()
