"""Iterative parallel (mask-predict) decoding, shared by T2S and by every S2A layer.

One call decodes one token layer of length T in S steps. Starting from all positions masked, each step:

1. runs the network on the current state (conditional pass, plus an unconditional pass when cfg > 0);
2. applies classifier-free guidance to the *hidden states* with a std rescale
   ``g = g_c + w (g_c - g_u)``, ``g = phi * g * std(g_c) / std(g) + (1 - phi) * g``;
3. keeps the top ``k = ceil((1 - filter_thres) V)`` logits of the head, samples a token per position with
   Gumbel noise at temperature ``temp * t_i`` (greedy at the last step; tau = 0.2 for single-step layers),
   and fixes it at positions that were masked;
4. scores each position by ``softmax(filtered)[token] + t_i * Gumbel`` and re-masks the
   ``int(sin(pi/2 * t_{i+1}) * T)`` lowest-scoring of the positions that were masked before the step.

``t_i = 1 - i/S``. The random draws are exactly the reference's: per step a uniform (B, T, V) tensor for the
token Gumbel noise (not at a greedy last step), then a uniform (B, T) tensor for the re-mask scores, all
from ``generator`` (the global CPU/CUDA generator when None). So a seed gives the reference's tokens.

Settings come as one ``Decoding`` (the pipeline's ``SamplingOptions`` builds one per model). A model's
``hidden_fn`` assembles its inputs and runs ``guided_passes``, which holds what each mode does:

* ``"reference"``: two separate unpadded passes with eager attention and the std over *all* elements of
  the (B, T, C) batch, as the reference does. Bitwise identical to Amphion on the same device.
* ``"fast"``: SDPA attention, the conditional and unconditional passes batched into one padded forward on
  GPU and run unpadded one after the other on CPU (hidden states differ by ~1e-6, which can flip near-tied
  tokens; the pipeline adds bfloat16 autocast where it is native, ``maskgct.precision``); the CFG rescale
  uses a per-sample std, so batching several requests does not couple them; S2A's unconditional rows reuse the
  conditional pass's ``cond_mlp`` output instead of a second, mathematically equal MLP call. The random
  draws, schedule, filtering and sampling arithmetic are the same as in reference mode, so tokens agree
  unless a decision margin is below the ~1e-6 float difference (none in the fixture cases).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from maskgct.transformer import DiffTransformer

MODES = ("reference", "fast")

# (seq Long(B, T), mask Bool(B, T) True = masked, t Float(B,))
#   -> (g_cond (B, T, C), g_uncond (B, T, C) or None)
HiddenFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
# Float(B, T, C) -> Float(B, T, V)
HeadFn = Callable[[torch.Tensor], torch.Tensor]


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


@dataclass(frozen=True)
class Decoding:
    """How one model decodes its token layers (the steps per layer are the caller's schedule).

    cfg: guidance weight w (0 = no unconditional pass); rescale_cfg: phi; temperature: the Gumbel
    temperature at t = 1; filter_thres: top-k keeps ``1 - filter_thres`` of the vocabulary; mode:
    "reference" or "fast"; generator: the random stream (None = the global generator of the device).
    """

    cfg: float
    rescale_cfg: float
    temperature: float
    filter_thres: float
    mode: str = "reference"
    generator: torch.Generator | None = None

    def __post_init__(self):
        check_mode(self.mode)


def s2a_schedule(num_layers: int) -> tuple[int, ...]:
    """The official S2A steps for ``num_layers`` acoustic layers: 25 for the first, 10 for the second, 1 for
    each finer one (layer 0 by the 1-layer model, layers 1.. by the full model)."""
    return (25, 10, *([1] * max(num_layers - 2, 0)))[:num_layers]


@dataclass(frozen=True)
class SamplingOptions:
    """The pipeline's decoding settings for both models; the defaults are the official pipeline's."""

    t2s_steps: int = 25
    t2s_cfg: float = 2.5
    t2s_rescale_cfg: float = 0.75
    t2s_temperature: float = 0.9
    # One entry per acoustic layer, for the release codec's 12 (``for_layers`` fits another codec).
    s2a_steps: tuple[int, ...] = s2a_schedule(12)
    s2a_cfg: float = 2.5
    s2a_rescale_cfg: float = 0.75
    s2a_temperature: float = 1.5
    filter_thres: float = 0.98

    def for_layers(self, num_layers: int) -> SamplingOptions:
        """These options with the official S2A schedule for ``num_layers`` acoustic layers."""
        return replace(self, s2a_steps=s2a_schedule(num_layers))

    def t2s(self, mode: str = "reference", generator: torch.Generator | None = None) -> Decoding:
        """T2S's ``Decoding`` (its steps: ``t2s_steps``)."""
        return Decoding(
            self.t2s_cfg, self.t2s_rescale_cfg, self.t2s_temperature, self.filter_thres, mode, generator
        )

    def s2a(self, mode: str = "reference", generator: torch.Generator | None = None) -> Decoding:
        """S2A's ``Decoding``, for both of its models (their steps: ``s2a_steps``)."""
        return Decoding(
            self.s2a_cfg, self.s2a_rescale_cfg, self.s2a_temperature, self.filter_thres, mode, generator
        )


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``like``: ``-log(-log(u + 1e-10) + 1e-10)``, u ~ U(0, 1)."""
    u = torch.zeros_like(like).uniform_(0, 1, generator=generator)
    return -torch.log(-torch.log(u + 1e-10) + 1e-10)


def top_k_filter(logits: torch.Tensor, filter_thres: float) -> torch.Tensor:
    """Keep the ``ceil((1 - filter_thres) V)`` largest logits per position, -inf elsewhere: (B, T, V)."""
    k = math.ceil((1 - filter_thres) * logits.shape[-1])
    values, indices = logits.topk(k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(2, indices, values)


def guide(cond: torch.Tensor, uncond: torch.Tensor, cfg: float, rescale_cfg: float, per_sample: bool):
    """Classifier-free guidance on hidden states (B, T, C) with std rescale (unbiased std).

    ``per_sample=False`` takes the std over the whole batch tensor, as the reference does.
    """
    if per_sample:
        cond_std = cond.flatten(1).std(dim=1)[:, None, None]
    else:
        cond_std = cond.std()
    guided = cond + cfg * (cond - uncond)
    guided_std = guided.flatten(1).std(dim=1)[:, None, None] if per_sample else guided.std()
    rescaled = guided * cond_std / guided_std
    return rescale_cfg * rescaled + (1 - rescale_cfg) * guided


def time_grid(steps: int) -> list[float]:
    """``[1, 1 - 1/S, ..., 1/S, 0]`` in Python float64, as the reference builds it."""
    h = 1.0 / steps
    return [1.0 - i * h for i in range(steps)] + [0.0]


def remask_counts(steps: int, length: int, batch_size: int, device) -> list[int]:
    """How many positions stay masked after each step: ``int(float32(sin(float32(t_{i+1}) * pi / 2)) * T)``.

    Computed with the same float32 torch ops (on a (B,) tensor on the sampling device) as the reference's
    per-step ``.item()``, but all up front so the loop never waits on the device.
    """
    counts = []
    for t_next in time_grid(steps)[1:]:
        t = t_next * torch.ones(batch_size, device=device)
        counts.append(int((torch.sin(t * math.pi / 2) * length).long()[0]))
    return counts


def guided_passes(
    network: DiffTransformer,
    cond_input: torch.Tensor,
    uncond_input: torch.Tensor,
    t: torch.Tensor,
    rows: slice,
    uncond_rows: slice,
    decoding: Decoding,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network passes of one step, the body of a ``hidden_fn``.

    cond_input: Float(B, Lc, C) the conditional input; uncond_input: Float(B, Lu <= Lc, C) the
    unconditional one (used when cfg > 0); t: Float(B,). Returns the target rows ``rows`` of the
    conditional hidden states and ``uncond_rows`` of the unconditional ones (or None), each (B, T, C).
    "reference": two separate eager passes; "fast": SDPA passes, on GPU batched into one padded pass
    (``guidance_pass``: one launch), on CPU two unpadded ones (no work on padding).
    """
    time_emb = network.time_embedding(t)
    if decoding.mode == "reference":
        cond = network(cond_input, t, time_emb=time_emb)[:, rows]
        guided = decoding.cfg > 0
        return cond, (network(uncond_input, t, time_emb=time_emb)[:, uncond_rows] if guided else None)
    if decoding.cfg <= 0:
        return network(cond_input, t, attention="sdpa", time_emb=time_emb)[:, rows], None
    if cond_input.device.type == "cpu":
        # A CPU gains nothing from one batched pass, and the padding would cost the unconditional rows up
        # to the conditional length (T2S: 337 rows computed for 152 used); two unpadded passes do not.
        cond = network(cond_input, t, attention="sdpa", time_emb=time_emb)[:, rows]
        return cond, network(uncond_input, t, attention="sdpa", time_emb=time_emb)[:, uncond_rows]
    batch = cond_input.shape[0]
    out = network.guidance_pass(cond_input, uncond_input, t, time_emb)
    return out[:batch, rows], out[batch:, uncond_rows]


@torch.no_grad()
def decode_layer(
    hidden_fn: HiddenFn, head: HeadFn, batch_size: int, length: int, steps: int, decoding: Decoding, device
) -> torch.Tensor:
    """Decode one token layer: returns Long(B, T).

    ``hidden_fn(seq, mask, t)`` runs the network on the current state and returns the conditional target
    hidden states (B, T, C) and, when cfg > 0, the unconditional ones; ``head`` maps hidden states to logits.
    """
    if steps < 1:
        raise ValueError(f"the number of decoding steps must be >= 1, not {steps}")
    generator = decoding.generator
    times = time_grid(steps)
    counts = remask_counts(steps, length, batch_size, device)
    mask = torch.ones(batch_size, length, dtype=torch.bool, device=device)
    seq = torch.zeros(batch_size, length, dtype=torch.long, device=device)
    for i in range(steps):
        t_i = times[i]
        cond, uncond = hidden_fn(seq, mask, t_i * torch.ones(batch_size, device=device))
        hidden = (
            cond
            if uncond is None
            else guide(cond, uncond, decoding.cfg, decoding.rescale_cfg, per_sample=decoding.mode == "fast")
        )
        # float32 even when the network runs under half-precision autocast (fast mode on GPU).
        filtered = top_k_filter(head(hidden).float(), decoding.filter_thres)
        if i == steps - 1 and steps > 1:
            sampled = filtered.argmax(dim=-1)
        else:
            tau = 0.2 if steps == 1 else decoding.temperature * t_i
            sampled = (filtered / max(tau, 1e-3) + gumbel_noise(filtered, generator)).argmax(dim=-1)
        seq = torch.where(mask, sampled, seq)
        confidence = filtered.softmax(dim=-1).gather(2, sampled[..., None])[..., 0]
        # "1 - score" ranks the least confident first; the Gumbel term (scale t_i) randomises early steps.
        scores = 1 - (t_i * gumbel_noise(confidence, generator) + confidence)
        if counts[i] == 0:
            break
        scores = scores.masked_fill(~mask, -torch.finfo(scores.dtype).max)
        remask = scores.topk(counts[i], dim=-1).indices
        mask = torch.zeros_like(mask).scatter(1, remask, True)
        seq = seq.masked_fill(mask, 0)
    return seq
