"""Building blocks shared by the semantic and the acoustic codec.

* ``Snake1d``: the periodic activation of DAC, ``x + 1/(α+1e-9)·sin²(αx)`` per channel.
* ``WNConv1d``: a plain ``nn.Conv1d`` that is weight-normalised while training (``apply_weight_norm``) and
  holds the folded weight at inference. The official checkpoints store ``weight_g``/``weight_v`` pairs;
  ``fold_weight_norm`` turns them into ``weight`` with exactly the runtime arithmetic of the reference.
* ``ConvNeXtBlock`` / ``VocosBackbone``: the Vocos backbone used as the semantic codec's encoder/decoder and
  as the acoustic decoder.
* ``FactorizedVectorQuantize`` / ``ResidualVQ``: DAC-style factorised VQ (project to a small code space,
  L2-normalised nearest code, straight-through, project back) and its residual stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize


class Snake1d(nn.Module):
    """Snake activation with a learnt per-channel frequency. ``(B, C, T) -> (B, C, T)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same operation order as the reference (reciprocal first) so results match to the last bits.
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class WNConv1d(nn.Conv1d):
    """A Conv1d that the codecs weight-normalise for training (see ``apply_weight_norm``)."""


def apply_weight_norm(module: nn.Module) -> nn.Module:
    """Weight-normalise every ``WNConv1d`` in ``module`` (norm over all dims but 0), in place.

    The parametrisation starts from the current weight (g = ‖v‖), so the function computed is unchanged.
    """
    for sub in module.modules():
        if isinstance(sub, WNConv1d) and not parametrize.is_parametrized(sub, "weight"):
            parametrizations.weight_norm(sub, name="weight", dim=0)
    return module


def fold_weight_norm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``<name>.weight_g`` / ``<name>.weight_v`` pair by ``<name>.weight``.

    ``torch._weight_norm(v, g, 0)`` is bit-identical to what the reference computes at run time;
    writing ``g * v / ‖v‖`` by hand differs by a few ulp.
    """
    folded = {}
    for key, value in state_dict.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            stem = key[: -len(".weight_v")]
            g_key = stem + ".weight_g"
            if g_key not in state_dict:
                raise KeyError(f"{key} has no matching {g_key}")
            folded[stem + ".weight"] = torch._weight_norm(value, state_dict[g_key], 0)
        else:
            folded[key] = value
    orphans = [k for k in state_dict if k.endswith(".weight_g") and k[:-1] + "v" not in state_dict]
    if orphans:
        raise KeyError(f"{orphans[0]} has no matching weight_v")
    return folded


class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block: depthwise conv k7 → LayerNorm → Linear → GELU → Linear → layer scale → residual.

    ``(B, C, T) -> (B, C, T)``.
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.dwconv(x).transpose(1, 2)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = (self.gamma * x).transpose(1, 2)
        return residual + x


class VocosBackbone(nn.Module):
    """Conv embedding, LayerNorm, ``num_layers`` ConvNeXt blocks, final LayerNorm.

    ``(B, input_channels, T) -> (B, T, dim)`` (channels last, ready for a Linear head).
    """

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(dim, intermediate_dim, layer_scale_init_value=1.0 / num_layers)
            for _ in range(num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class FactorizedVectorQuantize(nn.Module):
    """One factorised VQ stage. ``forward(z: (B, input_dim, T))`` returns ``(z_q (B, input_dim, T),
    commit_loss (B,), codebook_loss (B,), indices (B, T), z_e (B, codebook_dim, T))``.

    Codes are chosen on L2-normalised vectors, but ``z_q`` uses the raw codebook row, passed straight
    through as ``z_e + (z_q - z_e).detach()`` (the reference computes this form even in eval, and its
    rounding reaches the residuals of the next stages).
    """

    def __init__(
        self,
        input_dim: int,
        codebook_size: int,
        codebook_dim: int,
        commitment: float = 0.25,
        codebook_loss_weight: float = 1.0,
        use_l2_normlize: bool = True,
    ):
        super().__init__()
        self.in_project = WNConv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_project = WNConv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        self.commitment = commitment
        self.codebook_loss_weight = codebook_loss_weight
        self.use_l2_normlize = use_l2_normlize

    def forward(self, z: torch.Tensor):
        z_e = self.in_project(z)
        indices = self.nearest_code(z_e)
        z_q = self.codebook(indices).transpose(1, 2)
        if self.training:
            commit_loss = F.mse_loss(z_e, z_q.detach(), reduction="none").mean([1, 2]) * self.commitment
            codebook_loss = F.mse_loss(z_q, z_e.detach(), reduction="none").mean([1, 2])
            codebook_loss = codebook_loss * self.codebook_loss_weight
        else:
            commit_loss = codebook_loss = torch.zeros(z.shape[0], device=z.device)
        z_q = z_e + (z_q - z_e).detach()
        return self.out_project(z_q), commit_loss, codebook_loss, indices, z_e

    def nearest_code(self, z_e: torch.Tensor) -> torch.Tensor:
        """``(B, D, T) -> (B, T)`` indices of the nearest codebook rows."""
        encodings = z_e.transpose(1, 2).reshape(-1, z_e.shape[1])
        codebook = self.codebook.weight
        if self.use_l2_normlize:
            encodings = F.normalize(encodings)
            codebook = F.normalize(codebook)
        dist = (
            encodings.pow(2).sum(1, keepdim=True)
            - 2 * encodings @ codebook.t()
            + codebook.pow(2).sum(1, keepdim=True).t()
        )
        return (-dist).max(1)[1].view(z_e.shape[0], -1)

    def embed_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, input_dim, T)``: the projected raw codebook rows."""
        return self.out_project(self.codebook(indices).transpose(1, 2))


class ResidualVQ(nn.Module):
    """A stack of factorised VQ stages, each quantising what the previous ones left.

    ``forward(z: (B, C, T))`` returns ``(quantized (B, C, T), codes (N, B, T), commit_loss (B,),
    codebook_loss (B,), all_quantized (N, B, C, T))``. In training, ``quantizer_dropout`` of the batch
    uses only a random number of leading stages (1..N), so the codec learns to decode coarse codes too.
    """

    def __init__(
        self,
        input_dim: int,
        num_quantizers: int,
        codebook_size: int,
        codebook_dim: int,
        quantizer_dropout: float = 0.0,
        commitment: float = 0.25,
        codebook_loss_weight: float = 1.0,
        use_l2_normlize: bool = True,
    ):
        super().__init__()
        self.num_quantizers = num_quantizers
        self.quantizer_dropout = quantizer_dropout
        self.quantizers = nn.ModuleList(
            FactorizedVectorQuantize(
                input_dim, codebook_size, codebook_dim, commitment, codebook_loss_weight, use_l2_normlize
            )
            for _ in range(num_quantizers)
        )

    def forward(self, z: torch.Tensor, n_quantizers: int | None = None):
        batch = z.shape[0]
        if self.training:
            # Per item: all stages, or (for a `quantizer_dropout` share of the batch) a random 1..N of them.
            n_used = torch.full((batch,), self.num_quantizers + 1, device=z.device)
            n_dropout = int(batch * self.quantizer_dropout)
            n_used[:n_dropout] = torch.randint(1, self.num_quantizers + 1, (n_dropout,), device=z.device)
        else:
            n_used = torch.full((batch,), n_quantizers or self.num_quantizers, device=z.device)
        quantized = 0.0
        residual = z
        codes, commit_losses, codebook_losses, all_quantized = [], [], [], []
        for i, quantizer in enumerate(self.quantizers):
            if not self.training and i >= n_used[0]:
                break
            z_q, commit_loss, codebook_loss, indices, _ = quantizer(residual)
            keep = (i < n_used).to(z_q.dtype)
            quantized = quantized + z_q * keep[:, None, None]
            residual = residual - z_q
            codes.append(indices)
            commit_losses.append(commit_loss * keep)
            codebook_losses.append(codebook_loss * keep)
            all_quantized.append(z_q)
        return (
            quantized,
            torch.stack(codes),
            torch.stack(commit_losses).sum(0),
            torch.stack(codebook_losses).sum(0),
            torch.stack(all_quantized),
        )

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes (N, B, T) -> (B, C, T)``: the sum of the first N stages' projected codebook rows."""
        embedding = 0.0
        for quantizer, indices in zip(self.quantizers, codes, strict=False):
            embedding = embedding + quantizer.embed_codes(indices)
        return embedding
