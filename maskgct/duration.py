"""Flow-matching total-duration model: how many 50 Hz frames the target speech should last.

MaskGCT decodes non-autoregressively, so the target length T must be fixed before T2S runs. The paper
predicts it with a flow-matching model of the total duration given the text and the prompt; the official
release never shipped it and uses the phone-count rule ``T = prompt_frames · n_target / n_prompt`` instead
(``rule_frames``). This module ships the model. Design choices:

* **What is predicted.** One scalar per utterance, the log-correction to the rule::

      x1 = (log T - log rule) / log_scale,      rule = prompt_frames · n_target_phones / n_prompt_phones

  A log target makes errors relative (10 % too long is as bad on 2 s as on 20 s); measuring it from the
  rule centres the data near 0 with a spread of a few tenths, so ``log_scale`` brings it to about unit
  variance, matching the N(0, 1) noise, and an untrained network (velocity ≈ 0 from noise ≈ 0 on average)
  starts close to the rule. Phone counts include punctuation and word boundaries, as in the official rule.
* **Conditioning.** A small bidirectional transformer (``maskgct.transformer.DiffTransformer``: RoPE
  attention, SwiGLU, the flow time t through the adaptive RMSNorms) reads one packed sequence per row::

      [ summary token | prompt phones (n_p) | target phones (n_t) | padding ]

  Phones are ``cond_mlp(phone_emb(id)) + segment_emb(prompt/target)``. The summary token is
  ``segment_emb(summary) + duration_mlp(log prompt frames, log n_prompt, log n_target) + state_mlp(x_t)``;
  its output row, through ``to_velocity``, is the velocity. Packing the valid phones of each row together
  (rather than ``[prompt padded | target padded]``) keeps the rotary positions of a row independent of
  the other rows in its batch. The prompt's semantic tokens are not used: its duration and phones already
  give the speaking rate, and leaving them out keeps the model independent of the semantic codec.
* **Training** is conditional rectified flow: ``x_t = (1 - t)·noise + t·x1``, t ~ U(0, 1), loss
  ``|v(x_t, t) - (x1 - noise)|²``. Pairs come from a corpus with speaker labels: the target is an
  utterance, the prompt another utterance of the same speaker (``maskgct.data.duration``), so no aligner
  is needed, only utterance lengths.
* **Sampling** integrates the ODE from t = 0 to t = 1 with a few Euler steps (8 by default). By default it
  starts from the noise's median, 0: in one dimension ODE trajectories cannot cross, so the flow is a
  monotone map and carries the noise's median to the median of the predicted distribution, the estimate
  with the least expected absolute error of log-duration, deterministically and in one solve. With
  ``num_samples`` it instead draws that many noises and returns the geometric mean of their frame counts.

Inference (``maskgct.api``): ``duration="auto"`` calls ``predict_utterance``, ``"rule"`` is the official
ratio (``rule_frames``), and a number of seconds or a speed factor overrides either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from maskgct.constants import PHONE_PAD_ID, PHONE_VOCAB_SIZE, SEMANTIC_HOP
from maskgct.constants import rule_frames as official_rule_frames
from maskgct.transformer import DiffTransformer, TransformerConfig, init_weights

SUMMARY, PROMPT, TARGET = 0, 1, 2  # segment ids


@dataclass
class DurationConfig:
    hidden_size: int = 512
    num_layers: int = 8
    num_heads: int = 8
    # Unit of the predicted log-correction to the phone-ratio rule (about the data's standard deviation).
    log_scale: float = 0.25


def rule_frames(prompt_frames: float, n_prompt_phones: int, n_target_phones: int) -> int:
    """The official phone-ratio rule (``maskgct.constants.rule_frames``) for a prompt measured in frames:
    ``int(prompt_frames · n_target / n_prompt)``, at least 1.

    ``prompt_frames`` may be fractional: the official pipeline uses ``len(prompt_wav_16k) / 320``.
    """
    if prompt_frames <= 0 or n_prompt_phones < 1 or n_target_phones < 1:
        raise ValueError(
            "the duration rule needs a prompt with audio and phones, and target phones; got "
            f"{prompt_frames} prompt frames, {n_prompt_phones} prompt phones, {n_target_phones} target phones"
        )
    return max(1, int(official_rule_frames(prompt_frames * SEMANTIC_HOP, n_prompt_phones, n_target_phones)))


class DurationModel(nn.Module):
    """Conditional rectified flow over the log-correction of the rule (see the module docstring)."""

    config_class = DurationConfig

    def __init__(self, config: DurationConfig):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.phone_emb = nn.Embedding(PHONE_VOCAB_SIZE, c, padding_idx=PHONE_PAD_ID)
        self.segment_emb = nn.Embedding(3, c)
        self.duration_mlp = nn.Sequential(nn.Linear(3, c), nn.SiLU(), nn.Linear(c, c))
        self.state_mlp = nn.Sequential(nn.Linear(1, c), nn.SiLU(), nn.Linear(c, c))
        self.diff_estimator = DiffTransformer(TransformerConfig(c, config.num_layers, config.num_heads))
        self.to_velocity = nn.Linear(c, 1)
        init_weights(self)

    # ----------------------------------------------------------------------------------------- inputs
    @staticmethod
    def check_inputs(prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask) -> None:
        """Raise ValueError unless shapes agree and every row has prompt audio, prompt and target phones."""
        batch = prompt_ids.shape[0]
        if prompt_ids.dim() != 2 or target_ids.dim() != 2 or target_ids.shape[0] != batch:
            raise ValueError("prompt_ids and target_ids must be (B, P) with the same B")
        if prompt_mask.shape != prompt_ids.shape or target_mask.shape != target_ids.shape:
            raise ValueError("each phone mask must have the shape of its phone ids")
        if prompt_frames.shape != (batch,):
            raise ValueError(f"prompt_frames must be ({batch},), got {tuple(prompt_frames.shape)}")
        for name, ids, mask in (("prompt", prompt_ids, prompt_mask), ("target", target_ids, target_mask)):
            valid = ids[mask.bool()]
            if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= PHONE_VOCAB_SIZE):
                raise ValueError(f"{name} phone ids must lie in [0, {PHONE_VOCAB_SIZE})")
            if bool((mask.sum(dim=1) == 0).any()):
                raise ValueError(f"every row needs at least one {name} phone")
        if bool((prompt_frames <= 0).any()):
            raise ValueError("every prompt needs a positive duration")

    @staticmethod
    def log_rule(prompt_frames, prompt_mask, target_mask) -> torch.Tensor:
        """log of the rule's (unrounded) frame count, Float(B,)."""
        n_prompt, n_target = prompt_mask.sum(dim=1).float(), target_mask.sum(dim=1).float()
        return prompt_frames.float().log() + n_target.log() - n_prompt.log()

    def encode_inputs(self, prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask):
        """The step-invariant part of the input: packed phones and the summary token's duration part.

        prompt_ids/prompt_mask: (B, Pp), target_ids/target_mask: (B, Pt), valid phones first in each row;
        prompt_frames: Float(B,). Returns ``(phones Float(B, L, C), summary Float(B, C), padding (B, 1 + L))``
        where L = max(n_p + n_t) and padding is 1 for the summary token and the valid phones.
        """
        n_prompt, n_target = prompt_mask.sum(dim=1), target_mask.sum(dim=1)
        length = int((n_prompt + n_target).max())
        position = torch.arange(length, device=prompt_ids.device)[None, :]
        is_prompt = position < n_prompt[:, None]
        is_target = ~is_prompt & (position < (n_prompt + n_target)[:, None])
        from_prompt = prompt_ids.gather(
            1, position.clamp(max=prompt_ids.shape[1] - 1).expand(len(n_prompt), -1)
        )
        target_position = (position - n_prompt[:, None]).clamp(0, target_ids.shape[1] - 1)
        from_target = target_ids.gather(1, target_position)
        ids = torch.where(is_prompt, from_prompt, torch.where(is_target, from_target, PHONE_PAD_ID))
        segment = torch.where(is_prompt, PROMPT, TARGET)
        phones = self.diff_estimator.cond_mlp(self.phone_emb(ids)) + self.segment_emb(segment)
        features = torch.stack(
            [prompt_frames.float().log(), n_prompt.float().log(), n_target.float().log()], dim=1
        )
        # Logs of frame and phone counts are ~2-8: scaled down to order one for the first linear layer.
        summary = self.segment_emb.weight[SUMMARY] + self.duration_mlp(features / 4)
        valid = torch.ones(len(n_prompt), 1, dtype=torch.bool, device=ids.device)
        return phones, summary, torch.cat([valid, is_prompt | is_target], dim=1)

    # ---------------------------------------------------------------------------------------- network
    def velocity(self, x_t, t, phones, summary, padding, attention: str = "sdpa") -> torch.Tensor:
        """x_t, t: Float(B,); phones, summary, padding from ``encode_inputs`` -> velocity Float(B,)."""
        token = summary + self.state_mlp(x_t[:, None])
        hidden = self.diff_estimator(torch.cat([token[:, None], phones], dim=1), t, padding, attention)
        return self.to_velocity(hidden[:, 0])[:, 0]

    def loss(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        prompt_frames: torch.Tensor,
        target_ids: torch.Tensor,
        target_mask: torch.Tensor,
        target_frames: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Rectified-flow loss of one batch of prompt/target pairs.

        prompt_ids/prompt_mask: Long(B, Pp); target_ids/target_mask: Long(B, Pt) (1 = valid, valid first);
        prompt_frames, target_frames: (B,) 50 Hz lengths. Noise and t are drawn on the CPU (``generator``
        or the global generator), so a seed gives the same draws on every device.
        Returns ``{"loss"}``: the mean squared velocity error.
        """
        self.check_inputs(prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask)
        if bool((target_frames <= 0).any()):
            raise ValueError("every target needs a positive duration")
        x1 = (target_frames.float().log() - self.log_rule(prompt_frames, prompt_mask, target_mask)) / (
            self.config.log_scale
        )
        batch = x1.shape[0]
        noise = torch.randn(batch, generator=generator).to(x1.device)
        t = torch.rand(batch, generator=generator).to(x1.device)
        x_t = (1 - t) * noise + t * x1
        inputs = self.encode_inputs(prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask)
        velocity = self.velocity(x_t, t, *inputs)
        return {"loss": F.mse_loss(velocity.float(), x1 - noise)}

    # --------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_frames(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        prompt_frames: torch.Tensor,
        target_ids: torch.Tensor,
        target_mask: torch.Tensor,
        steps: int = 8,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Predict the target durations: Float(B,) frames (50 Hz, >= 1, not rounded).

        Same inputs as ``loss`` without ``target_frames``; ``steps`` Euler steps from t = 0 to 1.
        num_samples: None (default) for the median of the predicted distribution (the ODE from noise 0,
        deterministic); else the geometric mean of that many samples drawn with ``generator`` (CPU, or the
        global one).
        """
        if steps < 1 or (num_samples is not None and num_samples < 1):
            raise ValueError(f"steps and num_samples must be >= 1, got {steps} and {num_samples}")
        self.check_inputs(prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask)
        batch = prompt_ids.shape[0]
        prompt_frames = prompt_frames.float()
        log_rule = self.log_rule(prompt_frames, prompt_mask, target_mask)
        per_row = num_samples or 1

        def repeat(x):
            return x.repeat_interleave(per_row, dim=0)

        inputs = self.encode_inputs(
            *(repeat(x) for x in (prompt_ids, prompt_mask, prompt_frames, target_ids, target_mask))
        )
        if num_samples is None:
            x = torch.zeros(batch, device=prompt_ids.device)
        else:
            x = torch.randn(batch * num_samples, generator=generator).to(prompt_ids.device)
        for step in range(steps):
            t = torch.full_like(x, step / steps)
            x = x + self.velocity(x, t, *inputs) / steps
        log_frames = log_rule + x.view(batch, per_row).mean(dim=1) * self.config.log_scale
        return log_frames.exp().clamp(min=1.0)

    def predict_utterance(
        self,
        prompt_frames: float,
        prompt_ids: Sequence[int],
        target_ids: Sequence[int],
        steps: int = 8,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> float:
        """One pair as plain values: prompt length in frames (``len(wav16k) / 320``), the prompt's and the
        target's phone ids -> the predicted target frames (float, >= 1); options as ``predict_frames``."""
        if len(prompt_ids) == 0 or len(target_ids) == 0:
            raise ValueError("the duration model needs prompt phones and target phones")
        device = self.to_velocity.weight.device
        prompt = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
        target = torch.tensor([list(target_ids)], dtype=torch.long, device=device)
        frames = torch.tensor([float(prompt_frames)], device=device)
        predicted = self.predict_frames(
            prompt,
            torch.ones_like(prompt),
            frames,
            target,
            torch.ones_like(target),
            steps,
            num_samples,
            generator,
        )
        return float(predicted[0])
