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
from dataclasses import dataclass

import torch
from torch import nn

from maskgct.checkpoint import load_strict
from maskgct.constants import PHONE_PAD_ID, PHONE_VOCAB_SIZE
from maskgct.masking import (
    amphion_config_kwargs,
    check_ids,
    draw_mask,
    draw_prompt_lengths,
    draw_suffix_starts,
    draw_times,
    drop_empty_embed_tokens,
    masked_ce,
)
from maskgct.sampler import Decoding, decode_layer, guided_passes
from maskgct.transformer import DiffTransformer, TransformerConfig, init_weights


@dataclass
class T2SConfig:
    """Hyper-parameters; the field names are those of the official ``model.t2s_model`` block and the
    defaults are the release's (the one home of its sizes: conf/model and the converter derive from them)."""

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
    def mask_tokens(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
        infill_prob: float = 0.0,
    ):
        """Corrupt semantic tokens for training, drawing random numbers in the reference's order.

        x0: Long(B, T); t: Float(B,). Draws: ``rand(1)`` (prompt branch if > cfg_scale), ``randint`` prompt
        lengths in [min(T//4, 5), int(0.4 T)), then ``bernoulli`` masks. With ``infill_prob`` > 0, a right
        context is drawn before the masks (``maskgct.masking.draw_suffix_starts``) and left unmasked.
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
        suffix_start = draw_suffix_starts(prompt_len, length, low, high, infill_prob, generator)
        mask = draw_mask(x0, mask_prob, prompt_len, generator, suffix_start)
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
        infill_prob: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Masked-token cross-entropy on one batch.

        phone_ids/phone_mask: (B, P); semantic/semantic_mask: (B, T) (masks 1 = valid); attention: "eager"
        or "sdpa" (faster, not bit-exact; fine for training); infill_prob: see ``mask_tokens``.
        Returns ``{"loss", "acc", "count"}``: mean CE and accuracy over the masked non-padding tokens, and
        their number.
        """
        t = draw_times(semantic.shape[0], semantic.device, generator)
        xt, mask, _, _ = self.mask_tokens(semantic, t, generator, infill_prob)
        logits = self(xt, t, semantic_mask, phone_ids, phone_mask, attention)
        return masked_ce(logits, semantic, mask[..., 0].bool() & semantic_mask.bool())

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(
        self,
        phone_ids: torch.Tensor,
        prompt_semantic: torch.Tensor,
        target_len: int,
        steps: int,
        decoding: Decoding,
        suffix_semantic: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate target semantic tokens (Amphion ``reverse_diffusion``).

        phone_ids: Long(B, P) prompt-text phones followed by target-text phones; prompt_semantic: Long(B, Tp)
        semantic tokens of the prompt audio; target_len: T; steps and ``decoding`` (the official pipeline's:
        ``SamplingOptions().t2s_steps`` and ``.t2s()``). Reference mode reproduces the reference's tokens for
        a seed of the generator; see ``maskgct.sampler``. The unconditional pass sees the target alone (no
        phones, no prompt). Returns Long(B, T).

        Infilling (speech editing): ``suffix_semantic`` Long(B, Ts) are fixed tokens after the target, so
        the input is ``[phones | prompt | target | suffix]`` and the phones are those of the whole text
        (prompt words, new words, suffix words); the target rows stay where they are, so without a suffix
        the computation is the prefix-only one exactly.
        """
        check_ids("phone_ids", phone_ids, PHONE_VOCAB_SIZE)
        check_ids("prompt_semantic", prompt_semantic, self.config.cond_codebook_size)
        if suffix_semantic is None:
            suffix_semantic = prompt_semantic[:, :0]
        check_ids("suffix_semantic", suffix_semantic, self.config.cond_codebook_size)
        if (
            phone_ids.dim() != 2
            or prompt_semantic.dim() != 2
            or suffix_semantic.dim() != 2
            or not phone_ids.shape[0] == prompt_semantic.shape[0] == suffix_semantic.shape[0]
        ):
            raise ValueError(
                "phone_ids, prompt_semantic and suffix_semantic must be (B, P), (B, Tp) and (B, Ts) "
                "with the same B"
            )
        if target_len < 1:
            raise ValueError(f"target_len must be >= 1, got {target_len}")
        batch = phone_ids.shape[0]
        # Step-invariant inputs are computed once (same shapes as the reference's per-step calls: identical).
        phones = self.diff_estimator.cond_mlp(self.phone_emb(phone_ids))
        prompt = self.cond_emb(prompt_semantic)
        suffix = self.cond_emb(suffix_semantic)
        mask_token = self.mask_emb.weight[:1][:, None, :]
        cum = torch.zeros(batch, target_len, self.config.hidden_size, device=phone_ids.device)
        skip = phones.shape[1] + prompt.shape[1]
        rows, uncond_rows = slice(skip, skip + target_len), slice(0, target_len)

        def hidden_fn(seq, mask, t):
            mask = mask[..., None]
            target = cum + mask * mask_token + (~mask) * self.cond_emb(seq)
            cond_input = torch.cat([phones, prompt, target, suffix], dim=1)
            return guided_passes(self.diff_estimator, cond_input, target, t, rows, uncond_rows, decoding)

        return decode_layer(hidden_fn, self.to_logit, batch, target_len, steps, decoding, phone_ids.device)
