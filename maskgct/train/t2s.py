"""Training the text-to-semantic model (``task=t2s``).

Batches are token batches ``{"phone_ids": Long(B, P) padded 1023, "phone_mask": (B, P), "semantic": Long(B, T)
padded 0, "semantic_mask": (B, T), ...}`` (masks 1 = valid). Each step draws t ~ U(0, 1), masks the semantic
tokens with probability ``max(sin(pi t / 2), 0.2)`` after a random prefix prompt (dropped with probability
``cfg_scale``), and minimises cross-entropy on the masked non-padding tokens (``T2S.loss``). With
``task.infill_prob`` > 0 some prompted rows keep a right context too (speech editing; default 0).
Logs ``train/loss`` and ``train/acc`` (masked-token accuracy).

Validation also logs whether the model reads the text (``text_reading``): ``val/acc_text``, the accuracy of
the first decoding step (everything after a 30 % prompt masked) with each utterance's own phones, and
``val/acc_other_text`` with the next utterance's. Without the text the prompt alone predicts some tokens (the
voice's common ones); the gap between the two is what the model takes from the text, which it must learn to
align to the tokens by attention alone. A model whose gap stays small speaks in the voice but not the words.
"""

from __future__ import annotations

import torch

from maskgct.masking import masked_ce
from maskgct.t2s import T2S, T2SConfig
from maskgct.train.guided_attention import (
    capture_inputs,
    frame_to_phone_attention,
    guided_attention_loss,
    penalty,
)
from maskgct.train.masked_task import MaskedTokenTask

PROBE_PROMPT = 0.3  # the share of each utterance given as the prompt in ``text_reading``


@torch.no_grad()
def text_reading(net: T2S, batch: dict, attention: str = "sdpa") -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy on the tokens after a ``PROBE_PROMPT`` prompt, all masked (t = 1), with each row's own
    phones and with the next row's (``roll`` by one in the batch): ``(own, other)`` scalars."""
    semantic, valid = batch["semantic"], batch["semantic_mask"].bool()
    prompt = (PROBE_PROMPT * valid.sum(1)).long()
    target = (torch.arange(semantic.shape[1], device=semantic.device)[None] >= prompt[:, None]) & valid
    x = torch.where(target[..., None], net.mask_emb.weight[0], net.cond_emb(semantic))
    t = torch.ones(semantic.shape[0], device=semantic.device)
    accuracies = []
    for shift in (0, 1):
        phones, phone_mask = (batch[key].roll(shift, 0) for key in ("phone_ids", "phone_mask"))
        logits = net(x, t, batch["semantic_mask"], phones, phone_mask, attention)
        accuracies.append(masked_ce(logits, semantic, target)["acc"])
    return accuracies[0], accuracies[1]


class T2STask(MaskedTokenTask):
    """LightningModule for T2S; ``self.net`` is the ``maskgct.t2s.T2S`` network."""

    network, network_config = T2S, T2SConfig
    batch_keys = ("phone_ids", "phone_mask", "semantic", "semantic_mask")

    def __init__(
        self,
        model: dict,
        guided_attention: float = 0.0,
        guided_layer: int = 1,
        guided_heads: int = 1,
        guided_sigma: float = 0.2,
        guided_width: float = 1.5,
        **optimiser,
    ):
        super().__init__(model, **optimiser)
        if guided_attention < 0 or not 0 <= guided_layer < self.net.config.num_layers:
            raise ValueError("guided_attention must be >= 0 and guided_layer one of the network's layers")
        if not 1 <= guided_heads <= self.net.config.num_heads or guided_sigma <= 0 or guided_width <= 0:
            raise ValueError("guided_heads must lie in [1, num_heads], guided_sigma and guided_width be > 0")

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The masked-token loss, plus in training ``guided_attention`` × the guided-attention penalty (logged
        as ``guide``; ``maskgct.train.guided_attention``) when that weight is above 0 (validation losses stay
        the masked-token loss alone, comparable across runs)."""
        hp = self.hparams
        if not hp.guided_attention or not self.training:
            return super().losses(batch)
        attn = self.net.diff_estimator.layers[hp.guided_layer].self_attn
        with capture_inputs(attn) as captured:
            losses = super().losses(batch)
        attention = frame_to_phone_attention(attn, captured["args"], batch["phone_mask"], hp.guided_heads)
        w = penalty(batch, hp.guided_sigma, hp.guided_width)
        guide = guided_attention_loss(attention, w, batch["semantic_mask"])
        return dict(losses, loss=losses["loss"] + hp.guided_attention * guide, guide=guide)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        if batch["semantic"].shape[0] > 1:  # another row's text to compare with
            own, other = text_reading(self.net, batch, self.hparams.attention)
            values = {"val/acc_text": own.float(), "val/acc_other_text": other.float()}
            self.log_dict(values, batch_size=batch["semantic"].shape[0], sync_dist=True)
