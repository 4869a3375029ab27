"""Training a semantic-to-acoustic model (``task=s2a_1layer`` or ``task=s2a_full``; the model config decides).

Batches are token batches ``{"semantic": Long(B, T), "semantic_mask": (B, T), "acoustic": Long(B, Ta, 12),
"acoustic_mask": (B, Ta), ...}`` (masks 1 = valid; both at 50 Hz, aligned over their common length). Each step
draws one acoustic layer with the "linear" schedule (the full model never draws layer 0), t ~ U(0, 1), masks
that layer with probability ``sin(pi t / 2)`` after a random prefix prompt (dropped with probability
``cfg_scale``), and minimises cross-entropy on the masked non-padding frames (``S2A.loss``).
Logs ``train/loss`` and ``train/acc`` (masked-token accuracy).
"""

from __future__ import annotations

from maskgct.s2a import S2A, S2AConfig
from maskgct.train.masked_task import MaskedTokenTask


class S2ATask(MaskedTokenTask):
    """LightningModule for S2A; ``self.net`` is the ``maskgct.s2a.S2A`` network (1-layer or full)."""

    network, network_config = S2A, S2AConfig
    batch_keys = ("semantic", "semantic_mask", "acoustic", "acoustic_mask")
