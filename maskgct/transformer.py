"""The bidirectional transformer shared by T2S and S2A (Amphion's ``DiffLlama`` / ``DiffLlamaPrefix`` stack).

Every block is a pre-norm residual pair ``h + Attn(AdaRMS(h, c))`` then ``h + SwiGLU(AdaRMS(h, c))`` where
``c`` is the embedding of the mask "time" t (the same for every layer and for the final norm). Attention is
non-causal with rotary position embeddings over the whole (concatenated) input; padding is handled with an
additive key mask. The arithmetic mirrors transformers 4.41.2's eager Llama operation by operation, so the
official checkpoints give bit-identical hidden states on the same device ("eager" attention); "sdpa" swaps
in ``scaled_dot_product_attention`` for speed (not bit-exact, ~1e-6).

Parameter names equal the official ones (``layers.{l}.self_attn.q_proj`` ...), so an official state dict loads
with a plain strict load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROPE_BASE = 10000.0
NORM_EPS = 1e-6


@dataclass
class TransformerConfig:
    """Size of the stack; the FFN is always 4x wide, as in the official models."""

    hidden_size: int
    num_layers: int
    num_heads: int

    def __post_init__(self):
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"hidden_size {self.hidden_size} must split into {self.num_heads} heads of even size"
            )


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the mask time t in [0, 1] (not scaled by 1000): Float(B,) -> Float(B, dim).

    ``[sin(t f_j), cos(t f_j)]`` with ``f_j = exp(-j ln(1e4) / (dim/2 - 1))``, written as the reference
    writes it so the float32 rounding is the same.
    """
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device) * -scale)
    angles = t[:, None] * freqs[None, :] * 1.0
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def rotary_cos_sin(length: int, head_dim: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for positions 0..length-1: two Float(1, length, head_dim), computed in fp32.

    The frequency table is ``1/1e4^(2i/d)``, duplicated as ``cat(f, f)`` for the rotate-half form.
    """
    inv_freq = 1.0 / (
        ROPE_BASE ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float().to(device) / head_dim)
    )
    positions = torch.arange(length, device=device)[None, :]
    # An outer product written as the reference's (1, d/2, 1) @ (1, 1, L) matmul.
    freqs = (inv_freq[None, :, None].float() @ positions[:, None, :].float()).transpose(1, 2)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def additive_key_mask(padding_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Int/bool/float (B, L) with 1 = valid -> Float(B, 1, 1, L): 0 where valid, the dtype's min elsewhere."""
    inverted = 1.0 - padding_mask[:, None, None, :].to(dtype)
    return inverted.masked_fill(inverted.to(torch.bool), torch.finfo(dtype).min)


class AdaptiveRMSNorm(nn.Module):
    """RMSNorm whose gain is predicted from the time embedding: ``(W c + b) * x / rms(x)``.

    The variance is taken in fp32 but ``x`` itself is not upcast (as in the reference). No shift, no gate.
    Initialised to W = 0, b = 1, i.e. a plain RMSNorm.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.to_weight = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.to_weight.weight)
        nn.init.ones_(self.to_weight.bias)

    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C); gain: ``to_weight(c)`` as (B, 1, C) -> (B, L, C)."""
        input_dtype = x.dtype
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + NORM_EPS)
        return (gain * x).to(input_dtype)

    def gain(self, time_emb: torch.Tensor) -> torch.Tensor:
        """Float(B, C) time embedding -> Float(B, 1, C) gain."""
        return self.to_weight(time_emb).unsqueeze(1)


class Attention(nn.Module):
    """Multi-head non-causal self-attention with rotary embeddings and bias-free projections."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        c = config.hidden_size
        self.q_proj = nn.Linear(c, c, bias=False)
        self.k_proj = nn.Linear(c, c, bias=False)
        self.v_proj = nn.Linear(c, c, bias=False)
        self.o_proj = nn.Linear(c, c, bias=False)

    def queries_keys(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """x: (B, L, C); cos/sin: (1, L, D) -> rotary-embedded queries and keys, each (B, H, L, D)."""
        batch, length, _ = x.shape
        shape = (batch, length, self.num_heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        key_mask: torch.Tensor | None,
        attention: str,
    ) -> torch.Tensor:
        """x: (B, L, C); cos/sin: (1, L, D); key_mask: additive (B, 1, 1, L) for "eager", bool
        (B, 1, 1, L) (True = attend) for "sdpa", or None -> (B, L, C)."""
        batch, length, width = x.shape
        q, k = self.queries_keys(x, cos, sin)
        v = self.v_proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        if attention == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        else:
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
            if key_mask is not None:
                scores = scores + key_mask
            weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(weights, v)
        out = out.transpose(1, 2).contiguous().reshape(batch, length, width)
        return self.o_proj(out)


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` with a 4x hidden width and no biases."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.down_proj = nn.Linear(4 * hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class TransformerBlock(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = SwiGLU(config.hidden_size)
        self.input_layernorm = AdaptiveRMSNorm(config.hidden_size)
        self.post_attention_layernorm = AdaptiveRMSNorm(config.hidden_size)

    def forward(self, h, time_emb, cos, sin, key_mask, attention):
        """h: (B, L, C); time_emb: (B, C) -> (B, L, C)."""
        a = self.input_layernorm(h, self.input_layernorm.gain(time_emb))
        h = h + self.self_attn(a, cos, sin, key_mask, attention)
        m = self.post_attention_layernorm(h, self.post_attention_layernorm.gain(time_emb))
        return h + self.mlp(m)


class DiffTransformer(nn.Module):
    """The time-conditioned stack (the official ``diff_estimator``).

    ``cond_mlp`` is owned here (for the official key names) but applied by the model that assembles the
    input: T2S feeds it phone embeddings, S2A the semantic condition.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.norm = AdaptiveRMSNorm(c)
        self.diff_step_mlp = nn.Sequential(nn.Linear(c, 4 * c), nn.SiLU(), nn.Linear(4 * c, c))
        self.cond_mlp = nn.Sequential(nn.Linear(c, 4 * c), nn.SiLU(), nn.Linear(4 * c, c))

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """Float(B,) mask time in [0, 1] -> Float(B, C) condition of every AdaRMS norm."""
        return self.diff_step_mlp(timestep_embedding(t, self.config.hidden_size))

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        attention: str = "eager",
        time_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the stack.

        x: Float(B, L, C) assembled input (positions 0..L-1); t: Float(B,) mask time;
        padding_mask: (B, L) with 1 = valid, or None for no padding; attention: "eager" (bit-exact with the
        reference) or "sdpa"; time_emb: a precomputed ``time_embedding(t)`` to skip recomputing it.
        Returns Float(B, L, C), the hidden states after the final adaptive norm.
        """
        if attention not in ("eager", "sdpa"):
            raise ValueError(f"attention must be 'eager' or 'sdpa', not {attention!r}")
        if time_emb is None:
            time_emb = self.time_embedding(t)
        cos, sin = rotary_cos_sin(x.shape[1], x.shape[2] // self.config.num_heads, x.device, x.dtype)
        key_mask = None
        if padding_mask is not None:
            if attention == "sdpa":
                key_mask = padding_mask[:, None, None, :].to(torch.bool)
            else:
                key_mask = additive_key_mask(padding_mask, x.dtype)
        h = x
        for layer in self.layers:
            h = layer(h, time_emb, cos, sin, key_mask, attention)
        return self.norm(h, self.norm.gain(time_emb))

    def guidance_pass(
        self, cond_input, uncond_input, t, time_emb, cond_padding=None, uncond_padding=None
    ) -> torch.Tensor:
        """Fast mode on GPU: the conditional (B, Lc, C) and the right-padded unconditional (B, Lu <= Lc, C)
        inputs of one guidance step as a single (2B, Lc, C) SDPA forward (their (B, L) padding masks, 1 =
        valid, or None). Returns (2B, Lc, C), conditional rows first; each row keeps positions 0.. so its
        valid part sees the same rotary phases as alone."""
        batch, length, _ = cond_input.shape
        pad = length - uncond_input.shape[1]
        x = torch.cat([cond_input, F.pad(uncond_input, (0, 0, 0, pad))], dim=0)
        padding = torch.ones(2 * batch, length, dtype=torch.bool, device=x.device)
        padding[batch:, length - pad :] = False
        if cond_padding is not None:
            padding[:batch] = cond_padding.bool()
        if uncond_padding is not None:
            padding[batch:, : length - pad] = uncond_padding.bool()
        return self(x, t.repeat(2), padding, "sdpa", time_emb.repeat(2, 1))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for every Linear/Embedding, zero biases, then W = 0 / b = 1 for the adaptive norms."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, std=0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, std=0.02)
            if sub.padding_idx is not None:
                nn.init.zeros_(sub.weight[sub.padding_idx])
    for sub in module.modules():
        if isinstance(sub, AdaptiveRMSNorm):
            nn.init.zeros_(sub.to_weight.weight)
            nn.init.ones_(sub.to_weight.bias)
