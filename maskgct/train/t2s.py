"""Training the text-to-semantic model (``task=t2s``).

Batches are token batches ``{"phone_ids": Long(B, P) padded 1023, "phone_mask": (B, P), "semantic": Long(B, T)
padded 0, "semantic_mask": (B, T), ...}`` (masks 1 = valid). Each step draws t ~ U(0, 1), masks the semantic
tokens with probability ``max(sin(pi t / 2), 0.2)`` after a random prefix prompt (dropped with probability
``cfg_scale``), and minimises cross-entropy on the masked non-padding tokens (``T2S.loss``). With
``task.infill_prob`` > 0 some prompted rows keep a right context too (speech editing; default 0).
Logs ``train/loss`` and ``train/acc`` (masked-token accuracy).
"""

from __future__ import annotations

from maskgct.t2s import T2S, T2SConfig
from maskgct.train.masked_task import MaskedTokenTask


class T2STask(MaskedTokenTask):
    """LightningModule for T2S; ``self.net`` is the ``maskgct.t2s.T2S`` network."""

    network, network_config = T2S, T2SConfig
    batch_keys = ("phone_ids", "phone_mask", "semantic", "semantic_mask")
