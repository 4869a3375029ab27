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
from collections.abc import Callable, Sequence
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
    generator: torch.Generator | Sequence[torch.Generator] | None = None

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


def pick_rows(hidden: torch.Tensor, rows: slice | torch.Tensor) -> torch.Tensor:
    """The target rows of (B, L, C) hidden states: a slice of positions, or Long(B, T) positions per row."""
    if isinstance(rows, slice):
        return hidden[:, rows]
    return hidden.gather(1, rows[..., None].expand(-1, -1, hidden.shape[-1]))


def guided_passes(
    network: DiffTransformer,
    cond_input: torch.Tensor,
    uncond_input: torch.Tensor,
    t: torch.Tensor,
    rows: slice | torch.Tensor,
    uncond_rows: slice | torch.Tensor,
    decoding: Decoding,
    cond_padding: torch.Tensor | None = None,
    uncond_padding: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network passes of one step, the body of a ``hidden_fn``.

    cond_input: Float(B, Lc, C) the conditional input; uncond_input: Float(B, Lu <= Lc, C) the
    unconditional one (used when cfg > 0); t: Float(B,); rows / uncond_rows: the target positions of each
    (a slice, or Long(B, T) per row for padded batches, ``pick_rows``); cond_padding / uncond_padding:
    (B, L) 1 = valid, or None for no padding. Returns the target rows of the conditional and of the
    unconditional hidden states (or None), each (B, T, C).
    "reference": two separate eager passes; "fast": SDPA passes, on GPU batched into one padded pass
    (``guidance_pass``: one launch), on CPU two unpadded ones (no work on padding).
    """
    time_emb = network.time_embedding(t)
    attention = "eager" if decoding.mode == "reference" else "sdpa"
    cond = pick_rows(network(cond_input, t, cond_padding, attention, time_emb), rows)
    if decoding.cfg <= 0:
        return cond, None
    if decoding.mode == "reference" or cond_input.device.type == "cpu":
        # A CPU gains nothing from one batched pass, and the padding would cost the unconditional rows up
        # to the conditional length (T2S: 337 rows computed for 152 used); two unpadded passes do not.
        return cond, pick_rows(network(uncond_input, t, uncond_padding, attention, time_emb), uncond_rows)
    batch = cond_input.shape[0]
    out = network.guidance_pass(cond_input, uncond_input, t, time_emb, cond_padding, uncond_padding)
    return pick_rows(out[:batch], rows), pick_rows(out[batch:], uncond_rows)


def _step(cond, uncond, seq, mask, head, t_i, last, count, decoding, generator):
    """One decoding step of a block of rows that share a random stream.

    (B, T, C) hidden states, Long(B, T) tokens, Bool(B, T) mask -> (tokens, mask, done); ``done`` when
    ``count`` is 0 (nothing left to re-mask). ``last``: True at a greedy last step, None for a single step.
    """
    hidden = (
        cond
        if uncond is None
        else guide(cond, uncond, decoding.cfg, decoding.rescale_cfg, per_sample=decoding.mode == "fast")
    )
    # float32 even when the network runs under half-precision autocast (fast mode).
    filtered = top_k_filter(head(hidden).float(), decoding.filter_thres)
    if last:
        sampled = filtered.argmax(dim=-1)
    else:
        tau = 0.2 if last is None else decoding.temperature * t_i
        sampled = (filtered / max(tau, 1e-3) + gumbel_noise(filtered, generator)).argmax(dim=-1)
    seq = torch.where(mask, sampled, seq)
    confidence = filtered.softmax(dim=-1).gather(2, sampled[..., None])[..., 0]
    # "1 - score" ranks the least confident first; the Gumbel term (scale t_i) randomises early steps.
    scores = 1 - (t_i * gumbel_noise(confidence, generator) + confidence)
    if count == 0:
        return seq, mask, True
    scores = scores.masked_fill(~mask, -torch.finfo(scores.dtype).max)
    remask = scores.topk(count, dim=-1).indices
    mask = torch.zeros_like(mask).scatter(1, remask, True)
    return seq.masked_fill(mask, 0), mask, False


@torch.no_grad()
def decode_layer(
    hidden_fn: HiddenFn,
    head: HeadFn,
    batch_size: int,
    length: int,
    steps: int,
    decoding: Decoding,
    device,
    lengths: Sequence[int] | None = None,
) -> torch.Tensor:
    """Decode one token layer: returns Long(B, T).

    ``hidden_fn(seq, mask, t)`` runs the network on the current state and returns the conditional target
    hidden states (B, T, C) and, when cfg > 0, the unconditional ones; ``head`` maps hidden states to logits.

    Batched requests: ``lengths`` gives each row's length (<= ``length``; the rest is padding, never masked,
    returned as 0) and ``decoding.generator`` a sequence of one generator per row. Each row then takes its
    guidance statistics, random draws and re-mask counts from its own rows only, exactly as it would alone,
    so a row's tokens equal its unbatched ones wherever its hidden states do. With one generator (or None)
    the whole batch is one block that draws (B, T, V) at a time, as the reference does.
    """
    if steps < 1:
        raise ValueError(f"the number of decoding steps must be >= 1, not {steps}")
    generator = decoding.generator
    if isinstance(generator, Sequence):
        lengths = lengths or [length] * batch_size
        if len(generator) != batch_size or len(lengths) != batch_size or max(lengths) > length:
            raise ValueError("batched decoding needs one generator and one length <= T per row")
        blocks = [(slice(i, i + 1), n, g) for i, (n, g) in enumerate(zip(lengths, generator, strict=True))]
    elif lengths is not None:
        raise ValueError("rows of different lengths need one generator per row")
    else:
        blocks = [(slice(None), length, generator)]
    times = time_grid(steps)
    counts = [remask_counts(steps, n, len(range(batch_size)[rows]), device) for rows, n, _ in blocks]
    seq = torch.zeros(batch_size, length, dtype=torch.long, device=device)
    mask = torch.zeros(batch_size, length, dtype=torch.bool, device=device)
    for rows, n, _ in blocks:
        mask[rows, :n] = True
    done = [False] * len(blocks)
    for i in range(steps):
        t_i = times[i]
        cond, uncond = hidden_fn(seq, mask, t_i * torch.ones(batch_size, device=device))
        # The last step is greedy when there are several; a single-step layer samples at tau = 0.2.
        last = (i == steps - 1) if steps > 1 else None
        for b, (rows, n, g) in enumerate(blocks):
            if done[b]:
                continue
            block = (
                cond[rows, :n],
                None if uncond is None else uncond[rows, :n],
                seq[rows, :n],
                mask[rows, :n],
            )
            block_seq, block_mask, done[b] = _step(*block, head, t_i, last, counts[b][i], decoding, g)
            seq[rows, :n] = block_seq
            mask[rows, :n] = False if done[b] else block_mask
        if all(done):
            break
    return seq
