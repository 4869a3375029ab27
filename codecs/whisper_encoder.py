"""Whisper's audio encoder in torch, rebuilt from a CTranslate2 ``model.bin`` so that its intermediate
layers can be read and it runs wherever torch does.

``WhisperEncoder``: log-mel ``(B, n_mels, T)`` → two convolutions (the second with stride 2) →
``(B, ceil(T / 2), C)`` at 50 Hz, sinusoidal positions, pre-LN transformer blocks, final layer norm (or the
raw output of an earlier block).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from maskgct.checkpoint import CheckpointError, load_strict
from maskgct.codecs.ctranslate2 import MODEL_FILE, read_ctranslate2
from maskgct.constants import FRAME_RATE


@dataclass
class WhisperEncoderConfig:
    """Whisper encoder sizes (tiny.en: 80 mels, width 384, 6 heads, 4 layers, 1500 positions = 30 s)."""

    n_mels: int = 80
    width: int = 384
    heads: int = 6
    layers: int = 4
    n_positions: int = 1500
    # whisper's nn.LayerNorm default; CTranslate2 uses the same epsilon.
    layer_norm_eps: float = 1e-5


class WhisperBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))``, then ``x + FFN(LN(x))`` with a 4x GELU FFN."""

    def __init__(self, width: int, heads: int, eps: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of {heads} heads")
        self.heads = heads
        self.attn_norm = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)  # fused q, k, v (CTranslate2 stores them fused)
        self.out = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width, eps=eps)
        self.ffn_in = nn.Linear(width, 4 * width)
        self.ffn_out = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C)`` → ``(B, T, C)``; full (bidirectional) attention, no mask."""
        batch, frames, width = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(batch, frames, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, C / H)
        # whisper scales q and k by d^-0.25 each: the same as SDPA's 1 / sqrt(d) on the product.
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(attn.transpose(1, 2).reshape(batch, frames, width))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel ``(B, n_mels, T)`` → hidden states ``(B, ceil(T / 2), width)``.

    ``output_layer`` (1..layers, default ``layers``) builds only the first ``output_layer`` blocks. The
    output is the raw residual stream after that block, except for the last block, whose output goes
    through the final layer norm: that is the encoder output CTranslate2 (and whisper's decoder) sees.
    """

    def __init__(self, config: WhisperEncoderConfig, output_layer: int | None = None):
        super().__init__()
        output_layer = config.layers if output_layer is None else output_layer
        if not 1 <= output_layer <= config.layers:
            raise ValueError(f"output layer {output_layer} outside 1..{config.layers}")
        self.config = config
        self.output_layer = output_layer
        c = config
        self.conv1 = nn.Conv1d(c.n_mels, c.width, 3, padding=1)
        self.conv2 = nn.Conv1d(c.width, c.width, 3, stride=2, padding=1)
        # The stored sinusoids (whisper computes them; CTranslate2 stores them, fp16 here) - read, not
        # recomputed, so the sums match CTranslate2's.
        self.register_buffer("positions", torch.zeros(c.n_positions, c.width))
        self.blocks = nn.ModuleList(
            WhisperBlock(c.width, c.heads, c.layer_norm_eps) for _ in range(output_layer)
        )
        self.norm = nn.LayerNorm(c.width, eps=c.layer_norm_eps) if output_layer == c.layers else None

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T)`` → ``(B, ceil(T / 2), width)``; at most ``2 * n_positions`` mel frames."""
        if mel.dim() != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(
                f"expected a mel spectrogram (B, {self.config.n_mels}, T), got {tuple(mel.shape)}"
            )
        frames = math.ceil(mel.shape[-1] / 2)
        if not 1 <= frames <= self.config.n_positions:
            seconds = self.config.n_positions / FRAME_RATE
            raise ValueError(
                f"{mel.shape[-1]} mel frames give {frames} encoder frames; whisper has positions for "
                f"1..{self.config.n_positions} ({seconds:g} s)"
            )
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[:frames]
        for block in self.blocks:
            x = block(x)
        return x if self.norm is None else self.norm(x)

    @classmethod
    def from_ctranslate2(cls, path: str | Path, output_layer: int | None = None) -> WhisperEncoder:
        """Build from a CTranslate2 whisper folder (or its ``model.bin``); weights become float32.

        Only the ``encoder/`` variables are read, and only those of the blocks built are kept.
        """
        path = Path(path)
        file = path / MODEL_FILE if path.is_dir() else path
        spec, variables = read_ctranslate2(file, "encoder/")
        if spec != "WhisperSpec":
            raise CheckpointError(f"{file}: a {spec!r} model, not a whisper model")
        config = _config_from_variables(variables, file)
        encoder = cls(config, output_layer)
        state = _state_from_variables(variables, config, encoder.output_layer, file)
        return load_strict(encoder, state, str(file)).eval()


def _need(variables: dict[str, torch.Tensor], name: str, file: Path) -> torch.Tensor:
    if name not in variables:
        raise CheckpointError(f"{file}: missing variable {name!r}")
    return variables[name]


def _config_from_variables(variables: dict[str, torch.Tensor], file: Path) -> WhisperEncoderConfig:
    conv1 = _need(variables, "encoder/conv1/weight", file)  # (width, n_mels, 3)
    positions = _need(variables, "encoder/position_encodings/encodings", file)  # (n_positions, width)
    layers = 0
    while f"encoder/layer_{layers}/self_attention/linear_0/weight" in variables:
        layers += 1
    if layers == 0:
        raise CheckpointError(f"{file}: no encoder layers")
    heads = int(_need(variables, "encoder/num_heads", file))
    return WhisperEncoderConfig(
        n_mels=conv1.shape[1],
        width=conv1.shape[0],
        heads=heads,
        layers=layers,
        n_positions=positions.shape[0],
    )


# Our module names → CTranslate2's, per block; LayerNorm weight/bias are stored as gamma/beta.
_BLOCK_NAMES = {
    "attn_norm": "self_attention/layer_norm",
    "qkv": "self_attention/linear_0",
    "out": "self_attention/linear_1",
    "ffn_norm": "ffn/layer_norm",
    "ffn_in": "ffn/linear_0",
    "ffn_out": "ffn/linear_1",
}


def _linear_or_norm(variables: dict, ours: str, theirs: str, norm: bool, file: Path) -> dict:
    weight, bias = ("gamma", "beta") if norm else ("weight", "bias")
    out = {}
    for our_key, their_key in (("weight", weight), ("bias", bias)):
        tensor = _need(variables, f"{theirs}/{their_key}", file)
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{file}: {theirs}/{their_key} is {tensor.dtype} (a quantised model); convert whisper with "
                "a float16 or float32 quantization"
            )
        out[f"{ours}.{our_key}"] = tensor.float()
    return out


def _state_from_variables(
    variables: dict[str, torch.Tensor], config: WhisperEncoderConfig, output_layer: int, file: Path
) -> dict[str, torch.Tensor]:
    state = {}
    for conv in ("conv1", "conv2"):
        state.update(_linear_or_norm(variables, conv, f"encoder/{conv}", False, file))
    state["positions"] = _need(variables, "encoder/position_encodings/encodings", file).float()
    for i in range(output_layer):
        for ours, theirs in _BLOCK_NAMES.items():
            norm = ours.endswith("norm")
            state.update(
                _linear_or_norm(variables, f"blocks.{i}.{ours}", f"encoder/layer_{i}/{theirs}", norm, file)
            )
    if output_layer == config.layers:
        state.update(_linear_or_norm(variables, "norm", "encoder/layer_norm", True, file))
    return state
