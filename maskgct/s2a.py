"""Semantic-to-acoustic (S2A) masked generative transformer (Amphion ``MaskGCT_S2A`` + ``DiffLlama``).

The model predicts one acoustic RVQ layer l at a time, conditioned on the semantic tokens. Input of frame t:

    x[t] = sum_{q<l} token_emb[q](code_q)                       (layers already generated)
         + (mask_emb if masked else token_emb[l](code_l))         (the layer being predicted)
         + (Q-1-l) * mask_emb                                     (one per not-yet-generated layer)

prefixed (at inference) by the acoustic prompt rows ``sum_q token_emb[q](prompt_q)``; then
``h0 = x + cond_mlp(cond_emb(semantic) + layer_emb(l))`` (added once, at the input) and
``logits = to_logits[l](hidden[target rows])``.

Two models are used at inference (``s2a_generate``): a 1-layer model (``num_quantizer=1``,
``predict_layer_1=True``) generates layer 0, then the full 12-layer model generates layers 1..11 on top.

Training (``mask_tokens`` / ``loss``) follows the released ``forward_diffusion``: the layer is drawn with the
"linear" schedule (weights ``[Q-i]``, or ``[0, Q, Q-1, ..., 2]`` when ``predict_layer_1`` is false so the
full model never trains layer 0), mask probability ``sin(pi t / 2)`` (no floor), a random prefix prompt with
probability ``1 - cfg_scale`` (all layers visible there), cross-entropy on masked non-padding frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from maskgct.checkpoint import load_strict
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

LAYER_SCHEDULES = ("linear",)


@dataclass
class S2AConfig:
    """Hyper-parameters; the field names are those of the official ``model.s2a_model.*`` blocks and the
    defaults are the release's full model (``ONE_LAYER`` turns them into its 1-layer model)."""

    num_quantizer: int = 12
    hidden_size: int = 1024
    num_layers: int = 16
    num_heads: int = 16
    codebook_size: int = 1024
    cond_codebook_size: int = 8192
    # Training-time probability of dropping the prompt, NOT the inference CFG weight.
    cfg_scale: float = 0.15
    mask_layer_schedule: str = "linear"
    # True for the 1-layer model (layer 0 is trained); the full model never trains layer 0.
    predict_layer_1: bool = False

    def __post_init__(self):
        if self.mask_layer_schedule not in LAYER_SCHEDULES:
            raise ValueError(
                f"mask_layer_schedule must be one of {LAYER_SCHEDULES}, not {self.mask_layer_schedule!r}"
            )
        if self.num_quantizer < 1 or (self.num_quantizer == 1 and not self.predict_layer_1):
            raise ValueError("an S2A model needs num_quantizer >= 2, or predict_layer_1 with num_quantizer 1")

    @classmethod
    def from_amphion(cls, block: dict) -> S2AConfig:
        """Build from an official block (``config["model"]["s2a_model"]["s2a_1layer" | "s2a_full"]``)."""
        return cls(**amphion_config_kwargs(cls, block, "s2a_model"))


# The keys that make an ``S2AConfig`` the 1-layer model of a pair (it predicts acoustic layer 0 alone).
ONE_LAYER = {"num_quantizer": 1, "predict_layer_1": True}


class S2A(nn.Module):
    """Semantic-to-acoustic model. Parameter names equal the official checkpoint's."""

    config_class = S2AConfig

    def __init__(self, config: S2AConfig):
        super().__init__()
        self.config = config
        c, q, v = config.hidden_size, config.num_quantizer, config.codebook_size
        self.layer_emb = nn.Embedding(q, c)
        self.mask_emb = nn.Embedding(1, c)
        self.token_emb = nn.ModuleList(nn.Embedding(v, c) for _ in range(q))
        self.to_logits = nn.ModuleList(nn.Linear(c, v) for _ in range(q))
        self.cond_emb = nn.Embedding(config.cond_codebook_size, c)
        self.diff_estimator = DiffTransformer(TransformerConfig(c, config.num_layers, config.num_heads))
        init_weights(self)

    @classmethod
    def from_amphion(cls, block: dict, state_dict: dict[str, torch.Tensor], source: str = "s2a") -> S2A:
        """Build from the official config block and load an official state dict strictly (the zero-size
        ``diff_estimator.embed_tokens.weight`` is checked and dropped)."""
        model = cls(S2AConfig.from_amphion(block))
        return load_strict(model, drop_empty_embed_tokens(state_dict, source), source).eval()

    # ----------------------------------------------------------------------------------------- network
    def condition(self, semantic: torch.Tensor, layer: int) -> torch.Tensor:
        """Long(B, L) semantic tokens -> Float(B, L, C) ``cond_emb(semantic) + layer_emb(layer)``."""
        layer_row = self.layer_emb(torch.tensor([layer], device=semantic.device)).unsqueeze(1)
        return self.cond_emb(semantic) + layer_row

    def hidden_states(self, x, t, cond, x_mask=None, attention: str = "eager") -> torch.Tensor:
        """x: Float(B, L, C) summed token embeddings; t: Float(B,); cond: Float(B, L, C) from ``condition``;
        x_mask: (B, L) 1 = valid or None. Returns Float(B, L, C)."""
        return self.diff_estimator(x + self.diff_estimator.cond_mlp(cond), t, x_mask, attention)

    def forward(self, x, t, cond, layer: int, x_mask=None, attention: str = "eager") -> torch.Tensor:
        """Logits Float(B, L, codebook_size) of ``layer``; arguments as ``hidden_states``."""
        return self.to_logits[layer](self.hidden_states(x, t, cond, x_mask, attention))

    # ---------------------------------------------------------------------------------------- training
    def layer_weights(self) -> torch.Tensor:
        """The "linear" layer-choice distribution, Float(Q)."""
        q = self.config.num_quantizer
        weights = (
            [q - i for i in range(q)] if self.config.predict_layer_1 else [0] + [q - i for i in range(q - 1)]
        )
        weights = torch.tensor(weights)
        return weights / weights.sum()

    def mask_tokens(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
        infill_prob: float = 0.0,
    ):
        """Corrupt acoustic codes for training, drawing random numbers in the reference's order.

        x0: Long(B, T, Q); t: Float(B,). Draws: ``multinomial`` layer, ``rand(1)`` (prompt branch if >
        cfg_scale), ``randint`` prompt lengths in [min(T//4, 5), T//2), ``bernoulli`` masks. With
        ``infill_prob`` > 0, a right context is drawn before the masks (``draw_suffix_starts``); like the
        prompt it shows every layer, as ``generate``'s ``acoustic_suffix`` does.
        Returns ``(xt Float(B, T, C), mask Float(B, T, 1), prompt_len Long(B), mask_prob Float(B),
        layer Long(1))``.
        """
        batch, length, num_q = x0.shape
        if num_q != self.config.num_quantizer:
            raise ValueError(f"expected {self.config.num_quantizer} code layers, got {num_q}")
        low, high = min(length // 4, 5), length // 2
        if high <= low:
            raise ValueError(f"S2A training needs sequences of at least 2 frames, got {length}")
        layer = torch.multinomial(self.layer_weights(), 1, generator=generator).to(x0.device)
        mask_prob = torch.sin(t * math.pi / 2)
        prompt_len = draw_prompt_lengths(batch, low, high, self.config.cfg_scale, x0.device, generator)
        suffix_start = draw_suffix_starts(prompt_len, length, low, high, infill_prob, generator)
        positions = torch.arange(length, device=x0.device)[None, :]
        context = positions < prompt_len[:, None]
        if suffix_start is not None:
            context = context | (positions >= suffix_start[:, None])
        is_prompt = context.long()[..., None]
        mask = draw_mask(x0[:, :, 0], mask_prob, prompt_len, generator, suffix_start)
        mask_token = self.mask_emb.weight[:1]
        l = int(layer)
        xt = torch.zeros(batch, length, self.config.hidden_size, device=x0.device)
        for q, emb in enumerate(self.token_emb):
            if q < l:
                xt = xt + emb(x0[:, :, q])
            elif q == l:
                xt = xt + mask * mask_token[:, None, :] + (1 - mask) * emb(x0[:, :, q])
            else:
                # Layers above the target: visible in the prompt, one mask_emb each elsewhere.
                xt = xt + emb(x0[:, :, q]) * is_prompt + mask_token * (1 - is_prompt)
        return xt, mask, prompt_len, mask_prob, layer

    def loss(
        self,
        semantic: torch.Tensor,
        semantic_mask: torch.Tensor,
        acoustic: torch.Tensor,
        acoustic_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        attention: str = "eager",
        infill_prob: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Masked-token cross-entropy of one randomly chosen layer on one batch.

        semantic/semantic_mask: (B, T); acoustic: Long(B, Ta, >=Q), acoustic_mask: (B, Ta) (masks 1 = valid).
        Both streams run at 50 Hz and are aligned frame by frame over their common length; the model uses
        the first Q code layers; attention: "eager" or "sdpa" (faster, not bit-exact; fine for training);
        infill_prob: see ``mask_tokens``.
        Returns ``{"loss", "acc", "count", "layer"}``.
        """
        num_q = self.config.num_quantizer
        if acoustic.dim() != 3 or acoustic.shape[-1] < num_q:
            raise ValueError(f"acoustic codes must be (B, T, >= {num_q}), got {tuple(acoustic.shape)}")
        n = min(semantic.shape[1], acoustic.shape[1])
        x0, codes = acoustic[:, :n, :num_q], semantic[:, :n]
        valid = semantic_mask[:, :n].bool() & acoustic_mask[:, :n].bool()
        t = draw_times(x0.shape[0], x0.device, generator)
        xt, mask, _, _, layer = self.mask_tokens(x0, t, generator, infill_prob)
        l = int(layer)
        logits = self(xt, t, self.condition(codes, l), l, valid.long(), attention)
        return masked_ce(logits, x0[:, :, l], mask[..., 0].bool() & valid) | {"layer": layer}

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(
        self,
        semantic: torch.Tensor,
        acoustic_prompt: torch.Tensor,
        steps: Sequence[int],
        decoding: Decoding,
        first_layers: torch.Tensor | None = None,
        acoustic_suffix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate acoustic codes layer by layer (Amphion ``reverse_diffusion``).

        semantic: Long(B, L) semantic tokens of prompt ++ target; acoustic_prompt: Long(B, Ta, >=Q) prompt
        codes (only the first Q layers are used); the target has T = L - Ta frames (the reference's
        alignment: the semantic condition is shifted when Ta != the semantic prompt length).
        steps: one entry per layer of this model (entries for ``first_layers`` are ignored);
        first_layers: Long(B, T, g) layers 0..g-1 already generated (by the 1-layer model), or None.
        The unconditional pass drops only the acoustic prompt and keeps the semantic condition.
        Layers run one after another; each layer decodes with ``maskgct.sampler.decode_layer``.
        Returns Long(B, T, Q).

        Infilling (speech editing): ``acoustic_suffix`` Long(B, Ts, >=Q) are fixed codes after the target;
        ``semantic`` then covers prompt ++ target ++ suffix (T = L - Ta - Ts) and the input rows are
        ``[prompt | target | suffix]``, the suffix rows built like the prompt's (every layer visible). The
        unconditional pass still sees the target alone. Without a suffix the computation is unchanged.
        """
        num_q = self.config.num_quantizer
        if len(steps) != num_q:
            raise ValueError(f"steps needs one entry per layer ({num_q}), got {len(steps)}")
        if acoustic_suffix is None:
            acoustic_suffix = acoustic_prompt[:, :0]
        if (
            semantic.dim() != 2
            or acoustic_prompt.dim() != 3
            or acoustic_prompt.shape[-1] < num_q
            or acoustic_suffix.dim() != 3
            or acoustic_suffix.shape[-1] < num_q
        ):
            raise ValueError(
                f"semantic must be (B, L), acoustic_prompt (B, Ta, >= {num_q}) and acoustic_suffix "
                f"(B, Ts, >= {num_q})"
            )
        check_ids("semantic", semantic, self.config.cond_codebook_size)
        check_ids("acoustic_prompt", acoustic_prompt, self.config.codebook_size)
        check_ids("acoustic_suffix", acoustic_suffix, self.config.codebook_size)
        batch, prompt_len = semantic.shape[0], acoustic_prompt.shape[1]
        target_len = semantic.shape[1] - prompt_len - acoustic_suffix.shape[1]
        if target_len < 1:
            raise ValueError(
                f"semantic ({semantic.shape[1]}) must be longer than the acoustic prompt ({prompt_len}) "
                f"and suffix ({acoustic_suffix.shape[1]}) together"
            )
        est, device = self.diff_estimator, semantic.device
        codes = torch.zeros(batch, target_len, num_q, dtype=torch.long, device=device)
        cum = torch.zeros(batch, target_len, self.config.hidden_size, device=device)
        done = 0
        if first_layers is not None:
            done = first_layers.shape[-1]
            if first_layers.shape[:2] != (batch, target_len) or done >= num_q:
                raise ValueError(f"first_layers must be (B, {target_len}, g < {num_q})")
            codes[..., :done] = first_layers
            for q in range(done):
                cum = cum + self.token_emb[q](codes[:, :, q])
        cond = self.cond_emb(semantic)
        # The prompt rows are the same for every layer: sum over q in order from the int 0 (as the reference).
        prompt = sum(emb(acoustic_prompt[:, :, q]) for q, emb in enumerate(self.token_emb))
        suffix = sum(emb(acoustic_suffix[:, :, q]) for q, emb in enumerate(self.token_emb))
        mask_token = self.mask_emb.weight[:1][:, None, :]
        rows, uncond_rows = slice(prompt_len, prompt_len + target_len), slice(0, target_len)
        for layer in range(done, num_q):
            embedding = self.token_emb[layer]
            layer_cond = cond + self.layer_emb(torch.tensor([layer], device=device)).unsqueeze(1)
            # Constant within a layer; the unconditional pass feeds the sliced condition through the MLP.
            cond_h = est.cond_mlp(layer_cond)
            uncond_h = (
                est.cond_mlp(layer_cond[:, rows, :]) if decoding.mode == "reference" else cond_h[:, rows]
            )
            above = mask_token * float(num_q - 1 - layer)

            def hidden_fn(
                seq, mask, t, embedding=embedding, cond_h=cond_h, uncond_h=uncond_h, above=above, cum=cum
            ):
                mask = mask[..., None]
                target = cum + mask * mask_token + (~mask) * embedding(seq)
                target = target + above
                cond_input = torch.cat([prompt, target, suffix], dim=1) + cond_h
                return guided_passes(est, cond_input, target + uncond_h, t, rows, uncond_rows, decoding)

            seq = decode_layer(
                hidden_fn, self.to_logits[layer], batch, target_len, steps[layer], decoding, device
            )
            cum = cum + embedding(seq)
            codes[..., layer] = seq
        return codes


@torch.no_grad()
def s2a_generate(
    s2a_1layer: S2A,
    s2a_full: S2A,
    semantic: torch.Tensor,
    acoustic_prompt: torch.Tensor,
    steps: Sequence[int],
    decoding: Decoding,
    acoustic_suffix: torch.Tensor | None = None,
) -> torch.Tensor:
    """Coarse-to-fine acoustic generation (Amphion ``semantic2acoustic``).

    semantic: Long(B, L) = prompt semantic ++ generated semantic (++ the suffix's semantic when infilling);
    acoustic_prompt: Long(B, Ta, Q); acoustic_suffix: Long(B, Ts, Q) fixed codes after the target, or None.
    The 1-layer model decodes layer 0 with ``steps[0]`` steps; the full model then decodes layers 1..Q-1 with
    ``steps[1:]`` (single-step layers sample at tau = 0.2). The official pipeline's settings:
    ``SamplingOptions().s2a_steps`` and ``.s2a()``. Returns Long(B, L - Ta - Ts, Q) codes for the acoustic
    decoder.
    """
    layer0 = s2a_1layer.generate(
        semantic, acoustic_prompt, list(steps[:1]), decoding, acoustic_suffix=acoustic_suffix
    )
    return s2a_full.generate(semantic, acoustic_prompt, list(steps), decoding, layer0, acoustic_suffix)
