"""Text-to-semantic (T2S) masked generative transformer (Amphion ``MaskGCT_T2S`` + ``DiffLlamaPrefix``).

Input assembly (all at positions 0..P+Tp+T-1, bidirectional attention):

    [ cond_mlp(phone_emb(phones))  (P) | cond_emb(prompt semantic) (Tp) | target (T) ]

where a target row is ``mask_emb`` if masked, else ``cond_emb(token)``; the time t enters only through the
adaptive norms. ``logits = to_logit(hidden[target rows])`` over the semantic codebook.

Training (``mask_tokens`` / ``loss``) follows the released ``forward_diffusion``: t ~ U(0, 1) clamped to
[1e-5, 1], mask probability ``max(sin(pi t / 2), 0.2)``, and with probability ``1 - cfg_scale`` a random
prefix of the *target* sequence is kept unmasked as the prompt (otherwise none: the unconditional case used
for guidance). The loss is cross-entropy on masked, non-padding positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from maskgct.checkpoint import CheckpointError, load_strict
from maskgct.sampler import check_mode, decode_layer
from maskgct.transformer import DiffTransformer, TransformerConfig, init_weights

PHONE_VOCAB_SIZE = 1024
PHONE_PAD_ID = 1023
# Keys in the official JSON block that the network does not use.
UNUSED_AMPHION_KEYS = ("cond_dim",)


@dataclass
class T2SConfig:
    """Hyper-parameters; the field names are those of the official ``model.t2s_model`` block."""

    hidden_size: int = 1536
    num_layers: int = 16
    num_heads: int = 16
    cond_codebook_size: int = 8192
    # Training-time probability of dropping the prompt (the unconditional case), NOT the inference CFG weight.
    cfg_scale: float = 0.15

    @classmethod
    def from_amphion(cls, block: dict) -> T2SConfig:
        """Build from the official JSON block (``config["model"]["t2s_model"]``)."""
        return cls(**amphion_config_kwargs(cls, block, "t2s_model"))


def amphion_config_kwargs(cls, block: dict, name: str) -> dict:
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
    if ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{name} must be integer token ids, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"{name} must lie in [0, {vocab}), found [{int(ids.min())}, {int(ids.max())}]")


class T2S(nn.Module):
    """Text-to-semantic model. Parameter names equal the official checkpoint's."""

    config_class = T2SConfig

    def __init__(self, config: T2SConfig):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.mask_emb = nn.Embedding(1, c)
        self.to_logit = nn.Linear(c, config.cond_codebook_size)
        self.cond_emb = nn.Embedding(config.cond_codebook_size, c)
        self.phone_emb = nn.Embedding(PHONE_VOCAB_SIZE, c, padding_idx=PHONE_PAD_ID)
        self.diff_estimator = DiffTransformer(TransformerConfig(c, config.num_layers, config.num_heads))
        init_weights(self)

    @classmethod
    def from_amphion(cls, block: dict, state_dict: dict[str, torch.Tensor], source: str = "t2s") -> T2S:
        """Build from the official config block and load an official state dict strictly."""
        model = cls(T2SConfig.from_amphion(block))
        return load_strict(model, drop_empty_embed_tokens(state_dict, source), source).eval()

    # ----------------------------------------------------------------------------------------- network
    def hidden_states(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        x_mask: torch.Tensor | None,
        phone_ids: torch.Tensor,
        phone_mask: torch.Tensor | None,
        attention: str = "eager",
    ) -> torch.Tensor:
        """Training-style estimator call: phones prefixed to an already embedded sequence.

        x: Float(B, T, C) embedded tokens (mask_emb / cond_emb rows); t: Float(B,);
        x_mask: (B, T) 1 = valid or None; phone_ids: Long(B, P); phone_mask: (B, P) or None.
        Returns Float(B, T, C): the hidden states of the x rows.
        """
        phones = self.diff_estimator.cond_mlp(self.phone_emb(phone_ids))
        padding = None
        if x_mask is not None or phone_mask is not None:
            if phone_mask is None:
                phone_mask = torch.ones_like(phone_ids)
            if x_mask is None:
                x_mask = torch.ones(x.shape[:2], dtype=phone_mask.dtype, device=x.device)
            padding = torch.cat([phone_mask, x_mask], dim=1)
        out = self.diff_estimator(torch.cat([phones, x], dim=1), t, padding, attention)
        return out[:, phones.shape[1] :]

    def forward(self, x, t, x_mask, phone_ids, phone_mask, attention: str = "eager") -> torch.Tensor:
        """Same arguments as ``hidden_states``; returns logits Float(B, T, cond_codebook_size)."""
        return self.to_logit(self.hidden_states(x, t, x_mask, phone_ids, phone_mask, attention))

    # ---------------------------------------------------------------------------------------- training
    def mask_tokens(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None):
        """Corrupt semantic tokens for training, drawing random numbers in the reference's order.

        x0: Long(B, T); t: Float(B,). Draws: ``rand(1)`` (prompt branch if > cfg_scale), ``randint`` prompt
        lengths in [min(T//4, 5), int(0.4 T)), then ``bernoulli`` masks.
        Returns ``(xt Float(B, T, C), mask Float(B, T, 1) 1 = masked, prompt_len Long(B),
        mask_prob Float(B))``.
        """
        batch, length = x0.shape
        low, high = min(length // 4, 5), int(length * 0.4)
        if high <= low:
            raise ValueError(f"T2S training needs sequences of at least 3 tokens, got {length}")
        mask_prob = torch.sin(t * math.pi / 2)
        mask_prob = torch.where(mask_prob < 0.2, torch.ones_like(mask_prob) * 0.2, mask_prob)
        prompt_len = draw_prompt_lengths(batch, low, high, self.config.cfg_scale, x0.device, generator)
        mask = torch.bernoulli(torch.ones_like(x0) * mask_prob[..., None], generator=generator)
        mask = force_one_masked(mask, prompt_len)
        xt = mask * self.mask_emb.weight[:1][:, None, :] + (1 - mask) * self.cond_emb(x0)
        return xt, mask, prompt_len, mask_prob

    def loss(
        self,
        phone_ids: torch.Tensor,
        phone_mask: torch.Tensor,
        semantic: torch.Tensor,
        semantic_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        attention: str = "eager",
    ) -> dict[str, torch.Tensor]:
        """Masked-token cross-entropy on one batch.

        phone_ids/phone_mask: (B, P); semantic/semantic_mask: (B, T) (masks 1 = valid); attention: "eager"
        or "sdpa" (faster, not bit-exact; fine for training).
        Returns ``{"loss", "acc", "count"}``: mean CE and accuracy over the masked non-padding tokens, and
        their number.
        """
        t = torch.rand(semantic.shape[0], generator=generator).clamp(1e-5, 1.0).to(semantic.device)
        xt, mask, _, _ = self.mask_tokens(semantic, t, generator)
        logits = self(xt, t, semantic_mask, phone_ids, phone_mask, attention)
        return masked_ce(logits, semantic, mask[..., 0].bool() & semantic_mask.bool())

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(
        self,
        phone_ids: torch.Tensor,
        prompt_semantic: torch.Tensor,
        target_len: int,
        steps: int = 25,
        cfg: float = 2.5,
        rescale_cfg: float = 0.75,
        temp: float = 0.9,
        filter_thres: float = 0.98,
        mode: str = "reference",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate target semantic tokens (Amphion ``reverse_diffusion``).

        phone_ids: Long(B, P) prompt-text phones followed by target-text phones; prompt_semantic: Long(B, Tp)
        semantic tokens of the prompt audio; target_len: T. Defaults are the official pipeline's
        (25 steps, cfg 2.5, rescale 0.75, temp 0.9, top 2 %). ``mode`` "reference" reproduces the reference's
        tokens for a seed of ``generator`` (None = the global generator); "fast" batches the guidance passes
        and uses SDPA (see ``maskgct.sampler``). The unconditional pass sees the target alone (no phones, no
        prompt). Returns Long(B, T).
        """
        check_mode(mode)
        check_ids("phone_ids", phone_ids, PHONE_VOCAB_SIZE)
        check_ids("prompt_semantic", prompt_semantic, self.config.cond_codebook_size)
        if (
            phone_ids.dim() != 2
            or prompt_semantic.dim() != 2
            or phone_ids.shape[0] != prompt_semantic.shape[0]
        ):
            raise ValueError("phone_ids and prompt_semantic must be (B, P) and (B, Tp) with the same B")
        if target_len < 1:
            raise ValueError(f"target_len must be >= 1, got {target_len}")
        batch = phone_ids.shape[0]
        est = self.diff_estimator
        # Step-invariant inputs are computed once (same shapes as the reference's per-step calls: identical).
        phones = est.cond_mlp(self.phone_emb(phone_ids))
        prompt = self.cond_emb(prompt_semantic)
        mask_token = self.mask_emb.weight[:1][:, None, :]
        cum = torch.zeros(batch, target_len, self.config.hidden_size, device=phone_ids.device)
        skip = phones.shape[1] + prompt.shape[1]

        def hidden_fn(seq, mask, t):
            mask = mask[..., None]
            target = cum + mask * mask_token + (~mask) * self.cond_emb(seq)
            time_emb = est.time_embedding(t)
            cond_input = torch.cat([phones, prompt, target], dim=1)
            if mode == "reference":
                cond = est(cond_input, t, time_emb=time_emb)[:, skip:]
                return cond, (est(target, t, time_emb=time_emb) if cfg > 0 else None)
            if cfg <= 0:
                return est(cond_input, t, attention="sdpa", time_emb=time_emb)[:, skip:], None
            out = est.guidance_pass(cond_input, target, t, time_emb)
            return out[:batch, skip:], out[batch:, :target_len]

        return decode_layer(
            hidden_fn,
            self.to_logit,
            batch,
            target_len,
            steps,
            cfg=cfg,
            rescale_cfg=rescale_cfg,
            temp=temp,
            filter_thres=filter_thres,
            mode=mode,
            generator=generator,
            device=phone_ids.device,
        )


def draw_prompt_lengths(
    batch: int, low: int, high: int, cfg_scale: float, device, generator: torch.Generator | None
) -> torch.Tensor:
    """Training prompt lengths Long(B): with probability ``1 - cfg_scale`` uniform in [low, high), else 0.

    Draws ``rand(1)``, then (prompt branch) ``randint``: the reference's order.
    """
    if torch.rand(1, generator=generator) > cfg_scale:
        return torch.randint(low, high, (batch,), generator=generator).to(device)
    return torch.zeros(batch, dtype=torch.long, device=device)


def force_one_masked(mask: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
    """Zero the mask on prompt positions; rows left with no masked token get the one at ``prompt_len``.

    mask: Float(B, T) -> Float(B, T, 1).
    """
    positions = torch.arange(mask.shape[1], device=mask.device)[None, :]
    mask = mask.masked_fill(positions < prompt_len[:, None], 0)
    empty = (mask.sum(dim=1) == 0).nonzero()[:, 0]
    mask[empty, prompt_len[empty]] = 1
    return mask[..., None]


def masked_ce(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy and accuracy over the ``selected`` positions.

    logits: (B, T, V); targets, selected: (B, T).
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
