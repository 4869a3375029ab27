"""Training a semantic-to-acoustic model (``task=s2a_1layer`` or ``task=s2a_full``; the model config decides).

Batches are token batches ``{"semantic": Long(B, T), "semantic_mask": (B, T), "acoustic": Long(B, Ta, 12),
"acoustic_mask": (B, Ta), ...}`` (masks 1 = valid; both at 50 Hz, aligned over their common length). Each step
draws one acoustic layer with the "linear" schedule (the full model never draws layer 0), t ~ U(0, 1), masks
that layer with probability ``sin(pi t / 2)`` after a random prefix prompt (dropped with probability
``cfg_scale``), and minimises cross-entropy on the masked non-padding frames (``S2A.loss``).
Logs ``train/loss`` and ``train/acc`` (masked-token accuracy).

``semantic_field="semantic_perturbed"`` conditions on the tokens of a timbre-perturbed copy of each utterance
instead (``maskgct.data.perturb``; extracted with ``--fields ...,semantic_perturbed``), while the targets
stay the original's acoustic codes: the tokens can no longer supply the speaker's timbre, so the model must
take it from the prompt (training against timbre leakage, for voice conversion). The default is the plain
tokens, as the official training.
"""

from __future__ import annotations

from maskgct.data.shards import SEMANTIC_PERTURBED
from maskgct.s2a import S2A, S2AConfig
from maskgct.train.masked_task import MaskedTokenTask


class S2ATask(MaskedTokenTask):
    """LightningModule for S2A; ``self.net`` is the ``maskgct.s2a.S2A`` network (1-layer or full)."""

    network, network_config = S2A, S2AConfig

    def __init__(self, model: dict, semantic_field: str = "semantic", **optimiser):
        if semantic_field not in ("semantic", SEMANTIC_PERTURBED):
            raise ValueError(f"semantic_field: semantic or {SEMANTIC_PERTURBED}, not {semantic_field!r}")
        super().__init__(model, **optimiser)
        self.batch_keys = (semantic_field, f"{semantic_field}_mask", "acoustic", "acoustic_mask")
