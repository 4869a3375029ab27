"""What the two masked token models (T2S and S2A) share: reading their official config blocks and state
dicts, checking token ids, and the training corruption of the released ``forward_diffusion``.

Training draws its random numbers in the reference's order, which the parity fixtures pin:

1. ``draw_times``: t ~ U(0, 1) per row, clamped to [1e-5, 1] (the loss, before masking);
2. (S2A only: the acoustic layer to train);
3. ``draw_prompt_lengths``: ``rand(1)`` decides prompt or none (the unconditional case), then ``randint``;
4. ``draw_mask``: ``bernoulli`` per position, then every row is left with at least one masked token.

Infilling (our addition, for speech editing; ``infill_prob``, 0 in the official recipe): after step 3,
``draw_suffix_starts`` gives some prompted rows a right context as well, so the model learns to fill a
masked middle span between two fixed parts as it is used by ``maskgct.edit``. At 0 it draws nothing, so
the random stream, and every batch, is the official one.
"""

from __future__ import annotations

from dataclasses import fields

import torch
import torch.nn.functional as F

from maskgct.checkpoint import CheckpointError

# Keys in the official JSON blocks that the networks do not use.
UNUSED_AMPHION_KEYS = ("cond_dim",)


def amphion_config_kwargs(cls, block: dict, name: str) -> dict:
    """The keyword arguments of config dataclass ``cls`` in an official block; unknown keys are errors."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(block) - known - set(UNUSED_AMPHION_KEYS))
    if unknown:
        raise ValueError(f"{name}: unknown config key {unknown[0]!r}")
    return {k: v for k, v in block.items() if k in known}


def drop_empty_embed_tokens(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Remove the official files' zero-size ``diff_estimator.embed_tokens.weight`` leftover (S2A)."""
    state_dict = dict(state_dict)
    key = "diff_estimator.embed_tokens.weight"
    if key in state_dict:
        if state_dict[key].numel() != 0:
            raise CheckpointError(
                f"{source}: {key!r} should be empty, found shape {tuple(state_dict[key].shape)}"
            )
        del state_dict[key]
    return state_dict


def check_ids(name: str, ids: torch.Tensor, vocab: int) -> None:
    """Integer token ids in [0, vocab), else a ValueError naming ``name``."""
    if ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{name} must be integer token ids, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"{name} must lie in [0, {vocab}), found [{int(ids.min())}, {int(ids.max())}]")


def draw_times(batch: int, device, generator: torch.Generator | None) -> torch.Tensor:
    """Mask times Float(B,) ~ U(0, 1) clamped to [1e-5, 1], drawn on the CPU generator's stream."""
    return torch.rand(batch, generator=generator).clamp(1e-5, 1.0).to(device)


def draw_prompt_lengths(
    batch: int, low: int, high: int, cfg_scale: float, device, generator: torch.Generator | None
) -> torch.Tensor:
    """Training prompt lengths Long(B): with probability ``1 - cfg_scale`` uniform in [low, high), else 0.

    Draws ``rand(1)``, then (prompt branch) ``randint``: the reference's order.
    """
    if torch.rand(1, generator=generator) > cfg_scale:
        return torch.randint(low, high, (batch,), generator=generator).to(device)
    return torch.zeros(batch, dtype=torch.long, device=device)


def draw_suffix_starts(
    prompt_len: torch.Tensor,
    length: int,
    low: int,
    high: int,
    infill_prob: float,
    generator: torch.Generator | None,
) -> torch.Tensor | None:
    """Where each row's right context starts, Long(B) (``length``: none), or None when ``infill_prob`` is 0.

    A row with a prompt gets, with probability ``infill_prob``, a right context of ``randint(low, high)``
    tokens (the prompt's own range), shortened so that at least one token lies between the two contexts;
    rows without a prompt (the unconditional case of guidance) never get one. Draws ``rand(B)`` then
    ``randint(B)`` on the CPU generator's stream, and nothing at all when ``infill_prob`` is 0.
    """
    if not 0 <= infill_prob <= 1:
        raise ValueError(f"infill_prob must lie in [0, 1], not {infill_prob!r}")
    if infill_prob == 0:
        return None
    batch, device = prompt_len.shape[0], prompt_len.device
    chosen = (torch.rand(batch, generator=generator) < infill_prob).to(device) & (prompt_len > 0)
    suffix_len = torch.randint(low, high, (batch,), generator=generator).to(device)
    starts = torch.maximum(length - suffix_len, prompt_len + 1)
    return torch.where(chosen, starts, torch.full_like(starts, length))


def draw_mask(
    like: torch.Tensor,
    mask_prob: torch.Tensor,
    prompt_len: torch.Tensor,
    generator: torch.Generator | None,
    suffix_start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Which target positions are masked: Float(B, T, 1), 1 = masked.

    like: (B, T) any tensor of the sequence's shape; mask_prob: Float(B,); suffix_start: Long(B) where the
    right context starts (``draw_suffix_starts``) or None. Each position is masked with its row's
    probability, except context positions; a row left with no masked token gets the one at ``prompt_len``
    (every row must contribute to the loss).
    """
    mask = torch.bernoulli(torch.ones_like(like) * mask_prob[..., None], generator=generator)
    positions = torch.arange(mask.shape[1], device=mask.device)[None, :]
    mask = mask.masked_fill(positions < prompt_len[:, None], 0)
    if suffix_start is not None:
        mask = mask.masked_fill(positions >= suffix_start[:, None], 0)
    empty = (mask.sum(dim=1) == 0).nonzero()[:, 0]
    mask[empty, prompt_len[empty]] = 1
    return mask[..., None]


def masked_ce(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy over the ``selected`` positions.

    logits: (B, T, V); targets, selected: (B, T). Returns ``{"loss", "acc", "count"}``.
    """
    count = selected.sum()
    if int(count) == 0:
        # Keep the graph connected so every rank still calls backward.
        zero = logits.sum() * 0.0
        return {"loss": zero, "acc": zero.detach(), "count": count}
    picked, wanted = logits[selected], targets[selected]
    loss = F.cross_entropy(picked.float(), wanted)
    acc = (picked.argmax(dim=-1) == wanted).float().mean()
    return {"loss": loss, "acc": acc, "count": count}
